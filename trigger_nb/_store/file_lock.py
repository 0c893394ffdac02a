"""The OS file lock that holds a run for one execution across processes (``fcntl.flock``).

The kernel releases it if its holder dies, even by SIGKILL, so a crashed kernel never leaves a
run locked. Only ``backend.DiskBackend.lock`` uses it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.02


@contextlib.contextmanager
def file_lock(path: Path, *, remove: bool = False) -> Iterator[None]:
    """An OS file lock: released by the kernel if the holder dies, even by SIGKILL.

    ``remove``: delete the lock file before releasing it (its run is gone: without this, the
    locks directory kept one file per run ever executed). A waiter may then hold a lock on the
    deleted file while a newcomer locks a new one, so every acquirer checks that the file it
    locked is still the one at ``path``, and starts over if not.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one process per store is assumed
        yield
        return
    handle = _acquire(path, fcntl)
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        yield
    finally:
        try:
            if remove:
                path.unlink(missing_ok=True)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def _acquire(path: Path, fcntl: Any) -> Any:
    """An open handle of ``path`` holding its lock (see ``file_lock``)."""
    told = False
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - closed by file_lock or just below
        try:
            # Poll instead of blocking so Ctrl-C (KeyboardInterrupt) still stops a waiting kernel.
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not told:
                        handle.seek(0)
                        holder = handle.read().strip() or "another process"
                        print(
                            f"trigger_nb: {path.stem} is executing in {holder}; waiting for it "
                            "to finish",
                            file=sys.stderr,
                        )
                        told = True
                    time.sleep(POLL_SECONDS)
            if _is_file_at(handle, path):
                return handle
        except BaseException:
            handle.close()
            raise
        handle.close()  # its holder deleted the run and its lock file meanwhile: lock the new one


def _is_file_at(handle: Any, path: Path) -> bool:
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(handle.fileno())
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)
