"""A task's "Refresh" and "Re-run from here" buttons in a real browser (SPEC 3.7, 4):
JupyterLab + headless Chromium + a real kernel. Side effects are counted in a file the test
reads; screenshots go to tests/artifacts/.

- Refresh marks the task (its row says "refresh pending"); executing the cell again runs
  exactly that task again.
- Re-run from here executes the run in the kernel at once, that task and every later one
  running again, and the cell's tree follows it to the new finished tree.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from .lab import JupyterServer, open_and_run_notebook, save_screenshot, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETUP = """\
from pathlib import Path
LOG = Path({log!r})

def effect(name):
    with LOG.open("a") as file:
        file.write(name + "\\n")
    return name
"""

CELL = """\
%%trigger_job etl --name "Nightly ETL"
for step in ("extract", "transform", "load"):
    io.run_task(step, lambda step=step: effect(step), name=step.title())
"done"
"""


def _counts(log: Path) -> dict[str, int]:
    lines = log.read_text().split() if log.exists() else []
    return {step: lines.count(step) for step in ("extract", "transform", "load")}


def _wait_counts(log: Path, expected: dict[str, int], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _counts(log) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _counts(log) == expected


def _open_details(tree: Locator, name: str) -> Locator:
    tree.locator(".tnb-name-btn", has_text=name).click()
    actions = tree.locator(".tnb-details .tnb-actions")
    expect(actions).to_be_visible(timeout=30_000)
    return actions


def _open_tree(cell: Locator) -> Locator:
    """Click the finished run's "interactive tree" button (the tree with the actions is made
    on demand, beside the run's page); return the tree."""
    cell.locator(".tnb-open-tree").click()
    tree = cell.locator(".tnb-run-view")
    expect(tree).to_be_visible(timeout=30_000)
    return tree


def _scroll_to(locator: Locator) -> None:
    locator.evaluate("element => element.scrollIntoView({block: 'start'})")


def test_refresh_then_rerun_from_here(page: Page, jupyter_server: JupyterServer) -> None:
    log = jupyter_server.root_dir / "rerun" / "effects.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    cells = ["%load_ext trigger_nb", SETUP.format(log=str(log)), CELL]
    nb = write_notebook(jupyter_server, "rerun/etl", cells)
    open_and_run_notebook(page, jupyter_server, nb)
    _wait_counts(log, {"extract": 1, "transform": 1, "load": 1})

    cell = page.locator(".jp-CodeCell").nth(2)
    tree = _open_tree(cell)
    expect(tree.locator(".tnb-header")).to_contain_text("3 executed · 0 replayed")

    # Refresh: the row is marked, nothing runs yet.
    actions = _open_details(tree, "Transform")
    expect(actions.locator(".tnb-refresh-btn")).to_have_text("Refresh")
    expect(actions.locator(".tnb-rerun-btn")).to_have_text("Re-run from here")
    actions.locator(".tnb-refresh-btn").click()
    expect(actions.locator(".tnb-action-note")).to_contain_text(
        "Transform runs again on the run's next execution", timeout=30_000
    )
    pending = tree.locator(".tnb-meta-html .tnb-refresh-pending")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("refresh pending")
    _scroll_to(tree)
    save_screenshot(page, "rerun-refresh-marked")
    assert _counts(log) == {"extract": 1, "transform": 1, "load": 1}

    # Executing the cell again runs exactly the refreshed task.
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    expect(cell).to_contain_text("1 executed · 2 replayed", timeout=60_000)  # its page
    tree = _open_tree(cell)
    expect(tree.locator(".tnb-header")).to_contain_text("1 executed · 2 replayed")
    _wait_counts(log, {"extract": 1, "transform": 2, "load": 1})
    expect(tree.locator(".tnb-refresh-pending")).to_have_count(0)
    expect(tree.locator(".tnb-name-btn.tnb-st-completed", has_text="Transform")).to_be_visible()
    expect(tree.locator(".tnb-name-btn.tnb-st-replayed", has_text="Load")).to_be_visible()
    # Its history keeps the superseded attempt.
    _open_details(tree, "Transform")
    expect(tree.locator(".tnb-details .tnb-attempt")).to_have_count(2)
    expect(tree.locator(".tnb-details .tnb-attempt").first).to_contain_text(
        "completed · superseded (was 'transform')"
    )
    _scroll_to(tree)
    save_screenshot(page, "rerun-refreshed-ran")

    # Re-run from here: executes now; the same cell's tree follows to the new finished tree.
    tree.locator(".tnb-details .tnb-rerun-btn").click()
    _wait_counts(log, {"extract": 1, "transform": 3, "load": 2})
    expect(cell).to_contain_text("2 executed · 1 replayed", timeout=60_000)  # the page follows
    tree = _open_tree(cell)
    expect(tree.locator(".tnb-header")).to_contain_text("2 executed · 1 replayed")
    expect(tree.locator(".tnb-header")).to_contain_text("over 3 executions")
    expect(tree.locator(".tnb-name-btn.tnb-st-replayed", has_text="Extract")).to_be_visible()
    expect(tree.locator(".tnb-name-btn.tnb-st-completed", has_text="Load")).to_be_visible()
    expect(cell.locator(".tnb-run-view")).to_have_count(1)  # followed in place, not added
    _scroll_to(tree)
    save_screenshot(page, "rerun-from-here")
    assert _counts(log) == {"extract": 1, "transform": 3, "load": 2}

    # The saved notebook carries the re-run's tree as its static HTML too.
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click()
    page.keyboard.press("Control+s")
    saved = jupyter_server.root_dir / nb
    deadline = time.monotonic() + 30
    html = ""
    while time.monotonic() < deadline and "2 executed · 1 replayed" not in html:
        time.sleep(0.5)
        outputs = json.loads(saved.read_text())["cells"][2].get("outputs", [])
        html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "2 executed · 1 replayed" in html, html[-2000:]


API_RUN = """\
import trigger_nb
client = trigger_nb.default_client()
job = client.define_job("api-etl", name="API ETL")

@job.run
def etl(payload, io, ctx):
    for step in ("extract", "transform", "load"):
        io.run_task(step, lambda step=step: effect(step), name=step.title())

job.trigger()
"""


def test_rerun_from_here_on_a_displayed_run(page: Page, jupyter_server: JupyterServer) -> None:
    """A JobRun shown as a cell's value: its tree is replaced in place by the live view of the
    re-run, then by the new finished tree."""
    log = jupyter_server.root_dir / "rerun" / "api-effects.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    cells = ["%load_ext trigger_nb", SETUP.format(log=str(log)), API_RUN]
    nb = write_notebook(jupyter_server, "rerun/api", cells)
    open_and_run_notebook(page, jupyter_server, nb)
    _wait_counts(log, {"extract": 1, "transform": 1, "load": 1})
    cell = page.locator(".jp-CodeCell").nth(2)
    tree = _open_tree(cell)
    expect(tree.locator(".tnb-header")).to_contain_text("3 executed · 0 replayed")
    actions = _open_details(tree, "Load")
    actions.locator(".tnb-rerun-btn").click()
    _wait_counts(log, {"extract": 1, "transform": 1, "load": 2})
    # The live view took the button's place, then shows the new finished run's button.
    expect(cell.locator(".tnb-run-view")).to_have_count(0, timeout=60_000)  # the old tree went
    fresh = _open_tree(cell)
    expect(fresh.locator(".tnb-header")).to_contain_text("1 executed · 2 replayed", timeout=60_000)
    expect(fresh.locator(".tnb-name-btn.tnb-st-completed", has_text="Load")).to_be_visible()
    expect(cell.locator(".tnb-run-view")).to_have_count(1)
    _scroll_to(cell)
    save_screenshot(page, "rerun-displayed-run")
