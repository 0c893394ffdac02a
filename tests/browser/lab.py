"""Helpers for browser tests: a JupyterLab server handle and notebook-driving functions.

Recipe: /work/shared/recipes/browser-widget-tests.md. Fixtures live in ``conftest.py``; tests
import these helpers with ``from .lab import open_and_run_notebook, save_screenshot, ...``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic"]
ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "artifacts"

# "Python 3 (ipykernel) | Idle" in the status bar: a kernel exists and is idle. Do NOT use
# `.jp-Notebook-ExecutionIndicator[data-status='idle']`: it reads idle before a kernel exists.
KERNEL_IDLE_RE = re.compile(r"^(?!No Kernel).+ \| Idle$")
# The notebook panel in the current main-area tab (other tabs carry lm-mod-hidden).
VISIBLE_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
# Counts the code-cell prompts of the visible notebook: done ("[3]:"), busy/queued ("[*]:").
_PROMPTS_JS = r"""
() => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')]
    .find((p) => !p.classList.contains('lm-mod-hidden'));
  if (!panel) return null;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .map((p) => p.textContent.trim());
  return {
    done: prompts.filter((t) => /^\[\d+\]:$/.test(t)).length,
    busy: prompts.filter((t) => t.includes('*')).length,
    total: prompts.length,
  };
}
"""


@dataclass
class JupyterServer:
    """A running JupyterLab server (see the session fixture ``jupyter_server``)."""

    url: str  # "http://127.0.0.1:<port>", no trailing slash
    token: str
    root_dir: Path  # the server's root: write notebooks here (see ``write_notebook``)
    store_dir: Path  # TRIGGER_NB_DIR of every kernel the server starts
    log_path: Path  # server stdout+stderr
    process: subprocess.Popen[bytes] = field(repr=False)

    def api(self, method: str, path: str, timeout: float = 10.0) -> Any:
        """Call the REST API (``path`` like "/api/sessions"); returns the decoded JSON or None."""
        req = urllib.request.Request(
            self.url + path,
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method in ("POST", "PUT", "PATCH") else None,
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def lab_url(self, path: str, workspace: str | None = None) -> str:
        """The JupyterLab URL opening ``path`` (relative to root_dir), token included.

        Each call uses a new workspace (unless ``workspace`` is given): with the default
        workspace, JupyterLab would restore the notebooks earlier tests opened, as hidden tabs.
        """
        quoted = urllib.parse.quote(path.replace(os.sep, "/"))
        workspace = workspace or f"test-{secrets.token_hex(6)}"
        return f"{self.url}/lab/workspaces/{workspace}/tree/{quoted}?token={self.token}"

    def shutdown_all_kernels(self) -> None:
        """Delete every session and kernel, so kernels don't pile up between tests."""
        try:
            for session in self.api("GET", "/api/sessions") or []:
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
            for kernel in self.api("GET", "/api/kernels") or []:
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)
        except OSError:  # URLError included; best effort: the server may be going down
            pass

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no server log>"

    def stop(self) -> None:
        """POST /api/shutdown, then kill the process group as a fallback."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):  # URLError is an OSError
                self.api("POST", "/api/shutdown", timeout=10)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(self.process.pid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        self.process.wait(timeout=5)
                        break
                    except subprocess.TimeoutExpired:
                        continue
        if self.process.poll() is None:  # pragma: no cover - SIGKILL always works
            self.process.wait()


def write_notebook(server: JupyterServer, name: str, cells: list[str]) -> str:
    """Write a notebook of code ``cells`` under ``server.root_dir``; return its relative path.

    ``name`` may contain sub-folders; ".ipynb" is appended when missing.
    """
    if not name.endswith(".ipynb"):
        name += ".ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    path = server.root_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path.relative_to(server.root_dir).as_posix()


def _expected_executed_cells(server: JupyterServer, nb_path: str) -> int:
    """Code cells that get an execution count when run (JupyterLab skips blank ones)."""
    nb = nbformat.read(str(server.root_dir / nb_path), as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" and str(c.source).strip())


def wait_for_kernel_idle(page: Page, timeout: float = 90.0) -> None:
    """Wait until the status bar shows "<kernel> | Idle"; accept a "Select Kernel" dialog."""
    status = page.locator(".jp-StatusBar-TextItem").filter(has_text=KERNEL_IDLE_RE)
    dialog_accept = page.locator(".jp-Dialog .jp-mod-accept")
    deadline = time.monotonic() + timeout
    while True:
        if dialog_accept.count() and dialog_accept.first.is_visible():
            dialog_accept.first.click()
        if status.count() and status.first.is_visible():
            return
        if time.monotonic() > deadline:
            texts = page.locator(".jp-StatusBar-TextItem").all_inner_texts()
            raise AssertionError(f"kernel not idle after {timeout:.0f}s; status bar: {texts!r}")
        page.wait_for_timeout(250)


def run_all_cells(page: Page) -> None:
    """Run > Run All Cells through the menu bar (``runmenu:run-all``)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    item = page.locator(".lm-Menu-item[data-command='runmenu:run-all']")
    item.wait_for(state="visible")
    item.click()


def wait_for_execution(page: Page, expected: int, timeout: float = 120.0) -> None:
    """Wait until ``expected`` code cells show "[n]:", none shows "[*]:", and the kernel idles."""
    deadline = time.monotonic() + timeout
    status = page.locator(".jp-StatusBar-TextItem").filter(has_text=KERNEL_IDLE_RE)
    stuck_since: float | None = None
    counts: dict[str, int] | None = None
    while True:
        counts = page.evaluate(_PROMPTS_JS)
        idle = status.count() > 0
        if counts is not None and idle and counts["busy"] == 0:
            if counts["done"] >= expected:
                return
            # Idle, nothing queued, yet cells unexecuted: Run All stopped on an error.
            stuck_since = stuck_since or time.monotonic()
            if time.monotonic() - stuck_since > 3.0:
                break
        else:
            stuck_since = None
        if time.monotonic() > deadline:
            break
        page.wait_for_timeout(250)
    outputs = page.locator(f"{VISIBLE_NOTEBOOK} .jp-OutputArea-output")
    text = "\n---\n".join(outputs.all_inner_texts())[-4000:]
    raise AssertionError(
        f"notebook did not finish: expected {expected} executed code cells, prompts {counts}; "
        f"outputs:\n{text}"
    )


def open_and_run_notebook(
    page: Page, server: JupyterServer, nb_path_relative: str, timeout: float = 180.0
) -> None:
    """Open a notebook in JupyterLab, wait for its kernel, run all cells, wait until done.

    ``timeout`` (seconds) bounds the whole sequence. Raises AssertionError with the notebook's
    outputs when the cells do not all execute (for instance Run All stopped on an exception).
    """
    start = time.monotonic()

    def left() -> float:
        return max(5.0, timeout - (time.monotonic() - start))

    expected = _expected_executed_cells(server, nb_path_relative)
    page.goto(server.lab_url(nb_path_relative), timeout=left() * 1000)
    page.locator(f"{VISIBLE_NOTEBOOK} .jp-Notebook").first.wait_for(
        state="visible", timeout=left() * 1000
    )
    wait_for_kernel_idle(page, timeout=left())
    run_all_cells(page)
    wait_for_execution(page, expected, timeout=left())


def save_screenshot(page: Page, name: str) -> Path:
    """Save a PNG of the page under tests/artifacts/ (gitignored); return its path."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "screenshot"
    if not safe.endswith(".png"):
        safe += ".png"
    path = ARTIFACTS_DIR / safe
    page.screenshot(path=str(path))
    return path
