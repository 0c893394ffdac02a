"""A task's "Refresh", "show output" and "Re-run from here" on the run's page in a real
browser (SPEC 3.7, 4): JupyterLab + headless Chromium + a real kernel, the page's requests
reaching the kernel through its bridge widget. Side effects are counted in a file the test
reads; screenshots go to tests/artifacts/.

- Refresh marks the task (its row says "refresh pending"); executing the cell again runs
  exactly that task again.
- show output renders the value the kernel unpickled, in the task's details.
- Re-run from here executes the run in the kernel at once, that task and every later one
  running again, and the cell follows it to the new page.
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


def _page(cell: Locator) -> Locator:
    """The run's page in the cell, drawn by its script (the one tree)."""
    doc = cell.locator(".tnb-doc")
    expect(doc).to_have_count(1, timeout=60_000)
    expect(doc).to_have_attribute("data-tnb-app", "on", timeout=30_000)
    return doc


def _open_details(doc: Locator, name: str) -> Locator:
    """Click a task's name on the page; its details, with the kernel's actions."""
    doc.locator(".tnb-row .tnb-name", has_text=name).click()
    actions = doc.locator(".tnb-body .tnb-actions-row")
    expect(actions).to_be_visible(timeout=30_000)
    return actions


def _scroll_to(locator: Locator) -> None:
    locator.evaluate("element => element.scrollIntoView({block: 'start'})")


def test_refresh_show_output_then_rerun_from_here(
    page: Page, jupyter_server: JupyterServer
) -> None:
    log = jupyter_server.root_dir / "rerun" / "effects.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    cells = ["%load_ext trigger_nb", SETUP.format(log=str(log)), CELL]
    nb = write_notebook(jupyter_server, "rerun/etl", cells)
    open_and_run_notebook(page, jupyter_server, nb)
    _wait_counts(log, {"extract": 1, "transform": 1, "load": 1})

    cell = page.locator(".jp-CodeCell").nth(2)
    doc = _page(cell)
    expect(doc).to_contain_text("3 executed · 0 replayed")
    expect(cell.locator(".tnb-open-tree")).to_have_count(0)  # one tree: the page

    # Refresh: the row is marked, nothing runs yet.
    actions = _open_details(doc, "Transform")
    expect(actions.locator(".tnb-refresh-btn")).to_have_text("Refresh")
    expect(actions.locator(".tnb-rerun-btn")).to_have_text("Re-run from here")
    actions.locator(".tnb-refresh-btn").click()
    expect(doc.locator(".tnb-answer")).to_contain_text(
        "Transform runs again on the run's next execution", timeout=30_000
    )
    pending = doc.locator(".tnb-row .tnb-refresh-pending")
    expect(pending).to_have_count(1)
    expect(doc.locator(".tnb-row:has(.tnb-refresh-pending)")).to_contain_text("Transform")
    _scroll_to(doc)
    save_screenshot(page, "rerun-refresh-marked")
    assert _counts(log) == {"extract": 1, "transform": 1, "load": 1}

    # Executing the cell again runs exactly the refreshed task.
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    expect(cell).to_contain_text("1 executed · 2 replayed", timeout=60_000)
    doc = _page(cell)
    _wait_counts(log, {"extract": 1, "transform": 2, "load": 1})
    expect(doc.locator(".tnb-refresh-pending")).to_have_count(0)
    expect(doc.locator(".tnb-row.tnb-st-completed", has_text="Transform")).to_be_visible()
    expect(doc.locator(".tnb-row.tnb-st-replayed", has_text="Load")).to_be_visible()
    # Its history keeps the superseded attempt; "show output" asks the kernel for the value.
    actions = _open_details(doc, "Transform")
    expect(doc.locator(".tnb-app .tnb-body .tnb-attempt")).to_have_count(2)
    expect(doc.locator(".tnb-app .tnb-body .tnb-attempt").first).to_contain_text(
        "completed · superseded (was 'transform')"
    )
    actions.locator("[data-act='output']").click()
    expect(doc.locator(".tnb-answer .tnb-display")).to_have_text("'transform'", timeout=30_000)
    _scroll_to(doc)
    save_screenshot(page, "rerun-refreshed-ran")

    # Re-run from here: executes now; the same cell follows it to the new page.
    doc.locator(".tnb-body .tnb-rerun-btn").click()
    _wait_counts(log, {"extract": 1, "transform": 3, "load": 2})
    expect(cell).to_contain_text("2 executed · 1 replayed", timeout=60_000)  # the page follows
    doc = _page(cell)
    expect(doc).to_contain_text("2 executed · 1 replayed")
    expect(doc).to_contain_text("over 3 executions")
    expect(doc.locator(".tnb-row.tnb-st-replayed", has_text="Extract")).to_be_visible()
    expect(doc.locator(".tnb-row.tnb-st-completed", has_text="Load")).to_be_visible()
    _scroll_to(doc)
    save_screenshot(page, "rerun-from-here")
    assert _counts(log) == {"extract": 1, "transform": 3, "load": 2}

    # The saved notebook carries the re-run's page.
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
    """A JobRun shown as a cell's value: its page follows the re-run in place (the live view,
    then the new page)."""
    log = jupyter_server.root_dir / "rerun" / "api-effects.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    cells = ["%load_ext trigger_nb", SETUP.format(log=str(log)), API_RUN]
    nb = write_notebook(jupyter_server, "rerun/api", cells)
    open_and_run_notebook(page, jupyter_server, nb)
    _wait_counts(log, {"extract": 1, "transform": 1, "load": 1})
    cell = page.locator(".jp-CodeCell").nth(2)
    doc = _page(cell)
    expect(doc).to_contain_text("3 executed · 0 replayed")
    actions = _open_details(doc, "Load")
    actions.locator(".tnb-rerun-btn").click()
    _wait_counts(log, {"extract": 1, "transform": 1, "load": 2})
    expect(cell).to_contain_text("1 executed · 2 replayed", timeout=60_000)
    doc = _page(cell)
    expect(doc.locator(".tnb-row.tnb-st-completed", has_text="Load")).to_be_visible()
    expect(doc.locator(".tnb-row.tnb-st-replayed", has_text="Extract")).to_be_visible()
    _scroll_to(cell)
    save_screenshot(page, "rerun-displayed-run")
