"""A throwaway PostgreSQL server for the tests and the bench (see the recipe
postgres-in-tests.md): initdb in a temporary directory, pg_ctl on a free loopback port, run as
the ``postgres`` user when we are root (PostgreSQL refuses to run as root), removed at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

# Speed over durability against a machine crash (never simulated here); commits still reach the
# WAL before they return, so an immediate stop (a server crash) loses nothing committed. The bench
# passes its own options.
FAST_OPTIONS = "-c fsync=off -c full_page_writes=off"


def bin_directory() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError(
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed: run scripts/test, "
        "which installs Debian's postgresql package, or apt-get install postgresql"
    )


def _version(path: str) -> int:
    part = path.split("/")[4]
    return int(part) if part.isdigit() else 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One cluster in its own temporary directory, on 127.0.0.1."""

    def __init__(self, *, options: str = FAST_OPTIONS) -> None:
        self.bin = bin_directory()
        self.root = Path(tempfile.mkdtemp(prefix="trigger-nb-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.options = options
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_user, str(self.bin / program), *args]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}{tail}")

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root}"
        )
        options += " " + self.options
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-w", "-t", "60",
            "-l", str(self.root / "log"), "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        """An abrupt restart: every connection is cut, as when a server crashes and comes back."""
        self.stop()
        self.start()

    def url(self, schema: str | None = None, database: str = "postgres") -> str:
        url = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        return url if schema is None else f"{url}?schema={schema}"

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
