"""The run page in a real browser: JupyterLab + headless Chromium + a real kernel.

A finished run shows as a page of HTML (tree, status chips, search, sort, jump to the first
failure, timeline) drawn by its inline script, beside a hidden widget through which a task's
details reach the kernel while it lives. These tests reopen a saved notebook after its kernel
is gone (in JupyterLab and in Notebook 7), use the chips and the search, jump to a failure
hidden deep in a 1,000-task run, and count the timeline's bars. Screenshots go to
tests/artifacts/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from trigger_nb import DiskStore, TriggerClient
from trigger_nb._widgets.live import LiveRunView
from trigger_nb._widgets.run_view import run_data

from .lab import (
    VISIBLE_NOTEBOOK,
    JupyterServer,
    open_and_run_notebook,
    save_screenshot,
    wait_for_kernel_idle,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FAILING_RUN = """\
import trigger_nb
from trigger_nb import RetryOptions

client = trigger_nb.default_client()
job = client.define_job("orders", name="Import orders")
tries = {"n": 0}

def flaky():
    tries["n"] += 1
    if tries["n"] < 3:
        raise ConnectionError("API busy, try again")
    return "ok"

@job.run
def orders(payload, io, ctx):
    io.run_task("login", lambda: "token", name="Log in")
    io.run_task("fetch", flaky, name="Fetch orders",
                retry=RetryOptions(limit=3, min_timeout=0.2, factor=1.0, randomize=False))
    def load(task):
        io.run_task("parse", lambda: [1, 2, 3], name="Parse rows")
        io.run_task("save", lambda: 1 / 0, name="Save rows")
    io.run_task("load", load, name="Load")

run = job.trigger(new_run=True)  # not the run of another test on this server's store
run
"""
MAGIC_RUN = """\
%%trigger_job report --name "Weekly report"
import time
io.run_task("query", lambda: time.sleep(0.1) or 42, name="Query warehouse")
io.run_task("render", lambda: "<b>report</b>", name="Render report")
"""


def _cells(*cells: str) -> list[str]:
    return ["%load_ext trigger_nb", *cells]


def _cell(page: Page, index: int) -> Locator:
    return page.locator(f"{VISIBLE_NOTEBOOK} .jp-CodeCell").nth(index)


def _row(doc: Locator, name: str, css: str = ".tnb-row") -> Locator:
    """The tree rows of the task named ``name`` exactly (a parent's row names its failed
    subtask too)."""
    return doc.locator(css).filter(has=doc.page.get_by_text(name, exact=True))


def _expect_failing_run(doc: Locator) -> None:
    """The page of ``FAILING_RUN`` drawn: its status, the failed task named in the header and
    its row with the error, the retried task's attempts, a duration."""
    expect(doc.locator(".tnb-status")).to_have_text("FAILURE")
    expect(doc.locator(".tnb-run-error")).to_contain_text("error in task Save rows")
    failed = _row(doc, "Save rows", ".tnb-row.tnb-st-failed")
    expect(failed).to_contain_text("ZeroDivisionError: division by zero")
    expect(_row(doc, "Fetch orders")).to_contain_text("3 attempts")
    expect(_row(doc, "Log in")).to_contain_text(" ms")  # a duration


def _scroll_to_top(locator: Locator) -> None:
    locator.evaluate("element => element.scrollIntoView({block: 'start'})")


def _save(page: Page, server: JupyterServer, nb: str, needle: str) -> str:
    """Ctrl+S, then wait until the file on disk has ``needle`` in an output; its outputs."""
    page.locator(f"{VISIBLE_NOTEBOOK} .jp-Notebook").first.click()
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cells = json.loads((server.root_dir / nb).read_text())["cells"]
        outputs = json.dumps([cell.get("outputs", []) for cell in cells])
        if needle in outputs:
            return outputs
        time.sleep(0.3)
    raise AssertionError(f"{nb} was not saved with {needle!r}")


def test_reopened_without_its_kernel_the_run_still_shows(
    page: Page, jupyter_server: JupyterServer
) -> None:
    nb = write_notebook(jupyter_server, "page/reopen", _cells(FAILING_RUN, MAGIC_RUN))
    open_and_run_notebook(page, jupyter_server, nb)
    first = _cell(page, 1).locator(".tnb-doc")
    expect(first.locator(".tnb-status")).to_have_text("FAILURE")
    # with a live kernel: the page offers the kernel's actions in a task's details
    first.locator(".tnb-app .tnb-name", has_text="Save rows").click()
    expect(first.locator(".tnb-app .tnb-actions-row .tnb-rerun-btn")).to_be_visible()
    expect(_cell(page, 2).locator(".tnb-doc .tnb-row", has_text="Render report")).to_be_visible()
    outputs = _save(page, jupyter_server, nb, "Render report")
    assert "Save rows" in outputs and "ZeroDivisionError" in outputs

    # The kernel goes; the page is loaded again (JupyterLab starts a new, empty kernel: every
    # widget model of the first one is gone, as after a restart or on another machine).
    jupyter_server.shutdown_all_kernels()
    page.goto(jupyter_server.lab_url(nb))
    wait_for_kernel_idle(page)
    notebook = page.locator(VISIBLE_NOTEBOOK)
    doc = _cell(page, 1).locator(".tnb-doc")
    expect(doc).to_be_visible(timeout=30_000)
    _expect_failing_run(doc)
    magic = _cell(page, 2).locator(".tnb-doc")
    expect(magic.locator(".tnb-status")).to_have_text("SUCCESS")
    expect(_row(magic, "Query warehouse")).to_be_visible()
    page.wait_for_timeout(1500)  # the widget manager has given up on the old models by now
    dead = notebook.get_by_text("model not found")
    expect(dead).to_have_count(2)  # the widget outputs of both cells are there ...
    for i in range(dead.count()):  # ... and hidden
        expect(dead.nth(i)).to_be_hidden()
        # by the page's stylesheet alone, not only by its script
        shown = dead.nth(i).evaluate(
            "e => { e.parentElement.style.display = ''; return getComputedStyle(e).display; }"
        )
        assert shown == "none"
    expect(notebook.get_by_text("Loading widget")).to_be_hidden()
    # without the kernel that ran it, a task's details offer no action that could not work
    doc.locator(".tnb-app .tnb-name", has_text="Save rows").click()
    expect(doc.locator(".tnb-app .tnb-body")).to_contain_text("ZeroDivisionError")
    expect(doc.locator(".tnb-actions-row")).to_have_count(0)
    # the page's own script runs in the reopened (trusted) notebook: chips and timeline work
    doc.locator(".tnb-chip-failed").click()
    expect(doc.locator(".tnb-pane-tree .tnb-row.tnb-st-completed")).to_have_count(0)
    _scroll_to_top(_cell(page, 1))
    save_screenshot(page, "page-reopened-without-kernel")

    # A copy made elsewhere (not signed here): JupyterLab does not trust it, runs none of its
    # scripts and sanitizes its HTML. The static tree shows, and no control that cannot work.
    copy = json.loads((jupyter_server.root_dir / nb).read_text())
    copy["metadata"]["copied"] = True
    (jupyter_server.root_dir / "page/untrusted.ipynb").write_text(json.dumps(copy))
    jupyter_server.shutdown_all_kernels()
    page.goto(jupyter_server.lab_url("page/untrusted.ipynb"))
    wait_for_kernel_idle(page)
    doc = _cell(page, 1).locator(".tnb-doc")
    expect(doc.locator(".tnb-static-tree")).to_contain_text("Save rows", timeout=30_000)
    expect(doc.locator(".tnb-static-tree")).to_contain_text("ZeroDivisionError")
    expect(doc.locator(".tnb-chip-failed")).to_have_count(0)
    page.wait_for_timeout(1500)
    _scroll_to_top(_cell(page, 1))
    save_screenshot(page, "page-untrusted-copy")
    dead = page.locator(VISIBLE_NOTEBOOK).get_by_text("model not found")
    print(
        "untrusted copy: dead widget outputs visible:",
        [dead.nth(i).is_visible() for i in range(dead.count())],
    )


def test_notebook7_reopened_without_its_kernel_shows_the_tree(
    page: Page, jupyter_server: JupyterServer
) -> None:
    """Notebook 7 (the ``notebook`` package: JupyterLab's components, its own shell) shows a
    saved run's page like JupyterLab: the tree with statuses, durations and errors, never the
    dead widget's "model not found"."""
    nb = write_notebook(jupyter_server, "page/nb7", _cells(FAILING_RUN, MAGIC_RUN))
    open_and_run_notebook(page, jupyter_server, nb)
    expect(_cell(page, 2).locator(".tnb-doc .tnb-row", has_text="Render report")).to_be_visible()
    _save(page, jupyter_server, nb, "Render report")
    jupyter_server.shutdown_all_kernels()

    # Notebook 7's own page for the notebook; it starts a new, empty kernel
    page.goto(f"{jupyter_server.url}/notebooks/{nb}?token={jupyter_server.token}")
    expect(page.locator("#main-panel .jp-NotebookPanel")).to_be_visible(timeout=60_000)
    assert "/lab" not in page.url  # Notebook 7, not JupyterLab
    cells = page.locator(".jp-NotebookPanel .jp-CodeCell")
    doc = cells.nth(1).locator(".tnb-doc")
    expect(doc).to_be_visible(timeout=30_000)
    expect(doc).to_have_attribute("data-tnb-app", "on")  # its script ran: trusted, drawn
    _expect_failing_run(doc)
    magic = cells.nth(2).locator(".tnb-doc")
    expect(magic.locator(".tnb-status")).to_have_text("SUCCESS")
    expect(_row(magic, "Query warehouse")).to_be_visible()
    page.wait_for_timeout(2000)  # the widget manager has given up on the old models by now
    dead = page.get_by_text("model not found")
    for i in range(dead.count()):  # the widget outputs may be there, never shown
        expect(dead.nth(i)).to_be_hidden()
    loading = page.get_by_text("Loading widget")
    for i in range(loading.count()):
        expect(loading.nth(i)).to_be_hidden()
    doc.locator(".tnb-chip-failed").click()  # the controls work without the kernel
    expect(doc.locator(".tnb-pane-tree .tnb-row.tnb-st-completed")).to_have_count(0)
    _scroll_to_top(cells.nth(1))
    save_screenshot(page, "page-notebook7-reopened")


WIDE_RUN = """\
import trigger_nb
client = trigger_nb.default_client()
job = client.define_job("wide", name="Score customers")

@job.run
def wide(payload, io, ctx):
    for group in range(4):
        def batch(task, group=group):
            for i in range(300):
                fails = (group, i) == (3, 170)  # on the second page of batch 3's rows
                fn = (lambda: {}["missing"]) if fails else (lambda i=i: i * 2)
                io.run_task(["customer", group, i], fn, name=f"customer {group}-{i}")
        io.run_task(["batch", group], batch, name=f"batch {group}")

run = job.trigger()
run
"""


def test_chips_search_and_jump_to_the_failure_in_a_thousand_task_run(
    page: Page, jupyter_server: JupyterServer
) -> None:
    nb = write_notebook(jupyter_server, "page/wide", _cells(WIDE_RUN))
    open_and_run_notebook(page, jupyter_server, nb)
    doc = _cell(page, 1).locator(".tnb-doc")
    expect(doc.locator(".tnb-status")).to_have_text("FAILURE")
    # the chips count every task of the run, not only the rows drawn
    expect(doc.locator(".tnb-chip-all")).to_have_text("all 1,075")
    expect(doc.locator(".tnb-chip-failed")).to_have_text("failed 2")  # the task and its batch
    expect(doc.locator(".tnb-chip-running")).to_be_disabled()
    target = _row(doc, "customer 3-170")
    expect(target).to_have_count(0)  # batch 3 is folded: the failure is not drawn yet
    _scroll_to_top(doc)
    save_screenshot(page, "page-thousand-before-jump")

    doc.locator(".tnb-jump").click()
    expect(target).to_have_count(1)
    expect(target).to_have_class("tnb-row tnb-st-failed tnb-target")
    expect(target).to_be_in_viewport()
    expect(target).to_contain_text("KeyError: 'missing'")
    expect(doc.locator(".tnb-traceback")).to_be_visible()  # its details are open
    save_screenshot(page, "page-thousand-jumped")

    # the header names the failed task; its link jumps there too
    expect(doc.locator(".tnb-fail-link")).to_have_text("customer 3-170 [[customer, 3, 170]]")

    # chips: only failed tasks and the path to them
    doc.locator(".tnb-chip-failed").click()
    rows = doc.locator(".tnb-pane-tree .tnb-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("batch 3")
    doc.locator(".tnb-chip-all").click()
    # search over keys and names: every match under every folded batch
    doc.locator(".tnb-search").fill("customer 3-4")
    expect(rows.filter(has_text="customer 3-4")).to_have_count(11)  # 3-4 and 3-40 ... 3-49
    doc.locator(".tnb-search").fill("")
    # sort by status: the failed batch first
    doc.locator(".tnb-sort").select_option("status")
    expect(rows.first).to_contain_text("batch 3")
    _scroll_to_top(doc)
    save_screenshot(page, "page-thousand-sorted")

    # the timeline draws the 1,000 tasks' rows on demand (measured, not asserted)
    doc.locator(".tnb-tab[data-tab='timeline']").click()
    expect(doc.locator(".tnb-pane-timeline .tnb-tl-row").first).to_be_visible()
    print(f"timeline of 1,075 tasks drawn in {doc.get_attribute('data-tnb-timeline-ms')} ms")
    print(f"tree drawn in {doc.get_attribute('data-tnb-tree-ms')} ms")
    drawn = doc.locator(".tnb-pane-timeline .tnb-tl-row").count()
    assert drawn < 100  # only the rows in view (and a margin) are in the page
    save_screenshot(page, "page-thousand-timeline")


def test_timeline_draws_a_bar_per_attempt(page: Page, jupyter_server: JupyterServer) -> None:
    nb = write_notebook(jupyter_server, "page/timeline", _cells(FAILING_RUN))
    open_and_run_notebook(page, jupyter_server, nb)
    doc = _cell(page, 1).locator(".tnb-doc")
    doc.locator(".tnb-tab[data-tab='timeline']").click()
    pane = doc.locator(".tnb-pane-timeline")
    # Log in 1, Fetch orders 3 (two failed, then a success), Load 1, Parse rows 1, Save rows 1
    expect(pane.locator(".tnb-tl-row")).to_have_count(5)
    expect(pane.locator(".tnb-bar.tnb-attempt")).to_have_count(7)
    fetch = pane.locator(".tnb-tl-row", has_text="Fetch orders")
    expect(fetch.locator(".tnb-bar-failed")).to_have_count(2)
    expect(fetch.locator(".tnb-bar-completed")).to_have_count(1)
    expect(fetch.locator(".tnb-gap")).to_have_count(2)  # the back-off between attempts
    title = fetch.locator(".tnb-bar-failed").first.get_attribute("title") or ""
    assert "attempt 1 · execution 1" in title and "ConnectionError" in title
    nested = pane.locator(".tnb-tl-row", has_text="Parse rows").locator(".tnb-tl-label")
    expect(nested).to_have_css("padding-left", "16px")  # indented under Load
    _scroll_to_top(doc)
    save_screenshot(page, "page-timeline")


# VS Code's built-in notebook renderer (microsoft/vscode, extensions/notebook-renderers,
# ``renderHTML`` and ``domEval``): an output's HTML goes into a new div by ``innerHTML`` (so its
# scripts do not run), the div into the output's element, and then every script in it is run as
# a copy appended to that div (its text, its ``type``) and removed at once. The copy's
# ``document.currentScript`` is outside the page's root. A widget output whose model is gone
# falls back to another mime type of the same output (vscode-jupyter #8635, #12611): the
# view's widget output has an empty ``text/html``.
VSCODE_RENDER = """
(outputs) => {
  const cell = document.createElement("div");
  cell.className = "cell_container";
  document.body.appendChild(cell);
  for (const html of outputs) {
    const container = document.createElement("div");
    container.className = "output_container";
    const output = document.createElement("div");
    output.className = "output";
    container.appendChild(output);
    cell.appendChild(container);
    const element = document.createElement("div");
    element.innerHTML = html;
    output.appendChild(element);
    for (const node of Array.from(element.getElementsByTagName("script"))) {
      const copy = document.createElement("script");
      copy.text = node.innerText;
      for (const key of ["type", "src", "nonce", "noModule", "async"]) {
        const value = node[key] || node.getAttribute(key);
        if (value) copy.setAttribute(key, value);
      }
      element.appendChild(copy).parentNode.removeChild(copy);
    }
  }
}
"""


def test_a_vscode_style_renderer_draws_the_whole_page(
    browser: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A saved notebook's outputs rendered the way VS Code renders them without a kernel: the
    page's script finds its page although it runs as a copy outside it, and draws the tree with
    its chips, the failure and the timeline (no kernel, no JupyterLab), in VS Code's colours."""
    client = TriggerClient("vscode", store=DiskStore(tmp_path / "store"))
    job = client.define_job("orders", name="Import orders")

    @job.run
    def orders(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("login", lambda: "token", name="Log in")
        io.run_task("save", lambda: 1 / 0, name="Save rows")

    run = job.trigger()
    assert run.status == "FAILURE"
    live = LiveRunView(title="orders")
    live.finish(run, run_data(run))
    widget_output, page_output = live._widget_bundle(), live._page_bundle()
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    try:
        # VS Code's dark theme, as its webview sets it: the page's text follows it
        dark = (
            "--vscode-foreground:#cccccc;--vscode-descriptionForeground:#ccccccb3;"
            "--vscode-editor-background:#1e1e1e;--vscode-editorWidget-background:#252526;"
            "--vscode-panel-border:#80808059;--vscode-textLink-foreground:#3794ff;"
            "background:#1e1e1e"
        )
        page.set_content(f'<!doctype html><html><body style="{dark}"></body></html>')
        page.evaluate(VSCODE_RENDER, [widget_output["text/html"], page_output["text/html"]])
        doc = page.locator(".tnb-doc")
        expect(doc).to_have_attribute("data-tnb-app", "on")
        assert doc.evaluate("e => getComputedStyle(e).color") == "rgb(204, 204, 204)"
        expect(doc.locator(".tnb-static-tree")).to_be_hidden()
        expect(doc.locator(".tnb-chip-failed")).to_be_visible()
        failed = _row(doc, "Save rows")
        expect(failed).to_be_visible()
        expect(failed).to_contain_text("ZeroDivisionError: division by zero")
        save_screenshot(page, "page-vscode-renderer")
        doc.locator(".tnb-tab[data-tab='timeline']").click()
        expect(doc.locator(".tnb-pane-timeline .tnb-bar.tnb-attempt")).to_have_count(2)
    except Exception:
        save_screenshot(page, f"FAILED-{request.node.name}")
        raise
    finally:
        context.close()
