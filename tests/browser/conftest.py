"""Fixtures for browser tests: a JupyterLab server, a headless Chromium, a fresh page per test.

Recipe: /work/shared/recipes/browser-widget-tests.md (Debian chromium at /usr/bin/chromium;
never ``playwright install``). Every test in this directory gets the ``browser`` marker. When
``/usr/bin/chromium`` is missing the tests are skipped, unless ``CI`` is set: then they fail.

``jupyter_server`` and ``browser`` are shared by all tests of this package and torn down after
its last test (package scope; pytest keeps the package's tests together). Not session scope on
purpose: while a Playwright sync session lives, the main thread reports a *running* asyncio
loop (``asyncio.run()`` then raises), and the server and Chromium would use the CPU of the
rest of the suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from .lab import CHROMIUM, CHROMIUM_ARGS, JupyterServer, save_screenshot

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
SERVER_START_TIMEOUT = 60.0
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}
NO_CHROMIUM_REASON = f"{CHROMIUM} not found (install Debian's chromium: apt-get install chromium)"

# User settings written before the server starts: no news toast over screenshots, and every
# cell attached to the DOM (no windowing) so locators find cells outside the viewport too.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def _in_this_dir(item: pytest.Item) -> bool:
    return HERE in Path(item.path).resolve().parents


def _chromium_missing() -> bool:
    return not os.access(CHROMIUM, os.X_OK)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = _chromium_missing() and not os.environ.get("CI")
    for item in items:
        if not _in_this_dir(item):
            continue
        item.add_marker(pytest.mark.browser)
        if skip:
            item.add_marker(pytest.mark.skip(reason=NO_CHROMIUM_REASON))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keep each phase's report on the item so the ``page`` fixture can screenshot failures.
    report = yield
    if _in_this_dir(item):
        item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_server(base: Path) -> JupyterServer:
    root_dir = base / "root"
    store_dir = root_dir / ".trigger_nb"
    settings_dir = base / "settings"
    dirs = {name: base / name for name in ("workspaces", "config", "data", "runtime", "ipython")}
    for d in (root_dir, store_dir, settings_dir, *dirs.values()):
        d.mkdir(parents=True, exist_ok=True)
    for rel, value in LAB_SETTINGS.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))

    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_PLATFORM_DIRS="1",
        IPYTHONDIR=str(dirs["ipython"]),
        TRIGGER_NB_DIR=str(store_dir),
        # Kernels run the tests' python and import the package from this checkout.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
    )
    env.pop("JUPYTER_TOKEN", None)
    token = secrets.token_hex(24)
    log_path = base / "jupyter.log"

    last_error = ""
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = _free_port()
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.root_dir={root_dir}",
            f"--LabApp.user_settings_dir={settings_dir}",
            f"--LabApp.workspaces_dir={dirs['workspaces']}",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                cmd,
                cwd=root_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = JupyterServer(
            url=f"http://127.0.0.1:{port}",
            token=token,
            root_dir=root_dir,
            store_dir=store_dir,
            log_path=log_path,
            process=process,
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                server.api("GET", "/api/status", timeout=5)
                return server
            except (OSError, ValueError) as exc:  # URLError is an OSError
                last_error = repr(exc)
                time.sleep(0.25)
        if process.poll() is None:  # still running but never answered: give up
            server.stop()
            break
        process.wait()
    raise RuntimeError(
        f"JupyterLab did not become ready (last error: {last_error}); log tail:\n"
        + log_path.read_text(errors="replace")[-4000:]
    )


@pytest.fixture(scope="package")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A JupyterLab server on 127.0.0.1 (``.url``, ``.token``, ``.root_dir``, ``.store_dir``)."""
    server = _start_server(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def browser() -> Generator[Browser, None, None]:
    """Headless Debian Chromium driven by Playwright (skipped/failed per the module docstring)."""
    if _chromium_missing():
        if os.environ.get("CI"):
            pytest.fail(f"{NO_CHROMIUM_REASON}; CI is set, so browser tests must run")
        pytest.skip(NO_CHROMIUM_REASON)
    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        pw.stop()


@pytest.fixture
def page(
    browser: Browser, jupyter_server: JupyterServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh page (own context, 1400x1000). On failure a screenshot goes to tests/artifacts/;
    afterwards every kernel on the server is shut down so they do not pile up."""
    context = browser.new_context(viewport=VIEWPORT)
    new_page = context.new_page()
    new_page.set_default_timeout(30_000)
    try:
        yield new_page
    finally:
        reports = request.node.stash.get(_REPORTS, {})
        if any(r.failed for r in reports.values()):
            with contextlib.suppress(Exception):  # best effort: keep the original failure
                save_screenshot(new_page, f"FAILED-{request.node.name}")
        context.close()
        jupyter_server.shutdown_all_kernels()
