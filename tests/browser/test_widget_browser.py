"""A run's tree in a real browser: JupyterLab + headless Chromium + a real kernel.

A notebook defines a nested job through the Python API, triggers it (one task fails), and
displays the run: its page is the one tree (drawn by its script; "show output" is a real kernel
round trip through its bridge widget). ``%trigger_runs`` lists the run and shows its ipywidgets
tree, whose clicks are kernel round trips too. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Locator, Page, expect

from .lab import (
    JupyterServer,
    open_and_run_notebook,
    run_all_cells,
    save_screenshot,
    wait_for_execution,
    wait_for_kernel_idle,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUICKSTART = """\
import trigger_nb

SMTP_UP = False
client = trigger_nb.default_client()
job = client.define_job("quickstart", name="Welcome a new user", version="1.0.0")


@job.run
def welcome(payload, io, ctx):
    io.logger.info("welcoming", user=payload["user_id"])

    def fetch_user(task):
        io.logger.info("looking up user", user_id=payload["user_id"])
        profile = io.run_task(
            "load-profile", lambda: {"email": "ann@example.com", "plan": "pro"},
            name="Load profile", icon="database",
        )
        io.run_task("load-orders", lambda: [101, 102, 103], name="Load orders")
        return profile

    user = io.run_task(
        "fetch-user", fetch_user, name="Fetch user",
        properties=[{"label": "user", "text": payload["user_id"]}],
    )

    def send(task):
        if not SMTP_UP:
            raise ConnectionError("SMTP server refused the connection")
        return {"sent_to": user["email"]}

    io.run_task("send-email", send, name="Send welcome email", params={"to": user["email"]})
    return user


run = job.trigger({"user_id": "u1"})
run
"""


def _cells(*cells: str) -> list[str]:
    return ["%load_ext trigger_nb", *cells]


def _page(page: Page, cell: int) -> Locator:
    """The run's page in code cell ``cell``, drawn by its script (the one tree)."""
    doc = page.locator(".jp-CodeCell").nth(cell).locator(".tnb-doc")
    expect(doc).to_have_count(1, timeout=60_000)
    expect(doc).to_have_attribute("data-tnb-app", "on", timeout=30_000)
    return doc


def _details(doc: Locator, name: str) -> Locator:
    """Click a task's name on the page; its details (the page's script draws them)."""
    doc.locator(".tnb-app .tnb-row .tnb-name", has_text=name).click()
    body = doc.locator(".tnb-app .tnb-row:has(.tnb-name:text-is('" + name + "')) + .tnb-body")
    expect(body).to_be_visible(timeout=30_000)
    return body


def _scroll_to_top(locator: Locator) -> None:
    """Scroll the notebook so ``locator`` starts at the top: screenshots show the widget."""
    locator.evaluate("element => element.scrollIntoView({block: 'start'})")


def test_tree_logs_error_output_and_explorer(page: Page, jupyter_server: JupyterServer) -> None:
    rerun = "SMTP_UP = True  # the mail server is back: run the same job again\n"
    rerun += 'job.trigger({"user_id": "u1"})'
    cells = _cells(QUICKSTART, "%trigger_runs", rerun)
    nb = write_notebook(jupyter_server, "widget/quickstart", cells)
    open_and_run_notebook(page, jupyter_server, nb)

    # the run's page is the tree: no second one, no button to make one
    tree = _page(page, 1)
    expect(page.locator(".jp-CodeCell").nth(1).locator(".tnb-open-tree")).to_have_count(0)
    expect(tree).to_contain_text("Welcome a new user")
    expect(tree.locator(".tnb-status")).to_have_text("FAILURE")
    expect(tree).to_contain_text("3 executed · 0 replayed · 1 failed")
    for name in ("Fetch user", "Load profile", "Load orders", "Send welcome email"):
        expect(tree.locator(".tnb-app .tnb-name", has_text=name)).to_be_visible()
    expect(tree.locator(".tnb-app .tnb-row.tnb-st-failed")).to_contain_text(
        "ConnectionError: SMTP server refused the connection"
    )
    _scroll_to_top(tree)
    save_screenshot(page, "widget-tree")

    # A task's details show its log line.
    fetch = _details(tree, "Fetch user")
    expect(fetch.locator(".tnb-log", has_text="looking up user")).to_be_visible()

    # The failed task's row shows its error; its details, the traceback, folded until asked.
    traceback = _details(tree, "Send welcome email").locator(".tnb-traceback")
    expect(traceback).to_be_visible()
    traceback.locator("summary").click()
    expect(traceback).to_contain_text("Traceback")
    expect(traceback).to_contain_text("SMTP server refused the connection")
    # The database icon is drawn (a glyph, named on hover), not written as "[database]".
    expect(tree.locator(".tnb-app .tnb-icon[title='database']").first).to_be_visible()
    expect(tree).not_to_contain_text("[database]")

    # "show output" asks the kernel for the stored value and renders it in the details.
    profile = _details(tree, "Load profile")
    profile.locator("[data-act='output']").click()
    answer = profile.locator(".tnb-answer")
    expect(answer).to_contain_text("ann@example.com", timeout=30_000)
    expect(answer).to_contain_text("loaded in the kernel")
    _scroll_to_top(tree)
    save_screenshot(page, "widget-tree-expanded")

    # The explorer lists the run; picking it shows its tree.
    explorer = page.locator(".jp-OutputArea-output .tnb-explorer").first
    expect(explorer).to_be_visible()
    option = explorer.locator(".tnb-runs-list option", has_text="quickstart")
    expect(option).to_have_count(1)
    expect(option).to_contain_text("FAILURE")
    explorer.locator(".tnb-runs-list select").select_option(index=0)
    picked = explorer.locator(".tnb-explorer-detail .tnb-run-view")
    expect(picked).to_be_visible(timeout=30_000)
    expect(picked.locator(".tnb-name-btn", has_text="Send welcome email")).to_be_visible()
    _scroll_to_top(explorer)
    save_screenshot(page, "widget-explorer")

    # Run again after the fix: completed tasks are replayed, only the failed one executes.
    again = _page(page, 3)
    expect(again.locator(".tnb-status")).to_have_text("SUCCESS")
    expect(again).to_contain_text("over 2 executions")
    # "Fetch user" and the two tasks inside it
    expect(again).to_contain_text("1 executed · 3 replayed · 0 failed")
    replayed = again.locator(".tnb-app .tnb-row.tnb-st-replayed", has_text="Fetch user")
    expect(replayed).to_be_visible()
    completed = again.locator(".tnb-app .tnb-row.tnb-st-completed", has_text="Send welcome")
    expect(completed).to_be_visible()
    _scroll_to_top(again)
    save_screenshot(page, "widget-replayed")


STALE_RUN = """\
import trigger_nb
client = trigger_nb.default_client()
job = client.define_job("scores", name="Score rows")
threshold = 0.5

@job.run
def scores(payload, io, ctx):
    rows = io.run_task("load", lambda: [0.2, 0.7, 0.9], name="Load rows")
    return io.run_task("score", lambda: [x for x in rows if x > threshold], name="Score")

job.trigger()
"""
STALE_AGAIN = """\
threshold = 0.8  # a global the task reads changed: its replay is stale
job.trigger()
"""


def test_stale_task_is_badged_and_explained(page: Page, jupyter_server: JupyterServer) -> None:
    nb = write_notebook(jupyter_server, "widget/stale", _cells(STALE_RUN, STALE_AGAIN))
    open_and_run_notebook(page, jupyter_server, nb)
    tree = _page(page, 2)
    expect(tree).to_contain_text("0 executed · 2 replayed", timeout=60_000)
    expect(tree.locator(".tnb-counts")).to_contain_text(" · 1 stale")
    stale = tree.locator(".tnb-app .tnb-row.tnb-st-replayed:has(.tnb-stale)")
    expect(stale).to_have_count(1)  # "Load rows" is not
    expect(stale.locator(".tnb-name")).to_have_text("Score")
    # An amber badge with a warning sign, apart from replayed purple
    badge = stale.locator(".tnb-badge.tnb-stale")
    expect(badge).to_contain_text("⚠ stale")
    expect(badge).to_have_css("background-color", "rgb(180, 83, 9)")
    note = _details(tree, "Score").locator(".tnb-stale-note")
    expect(note).to_contain_text("stale: global 'threshold' changed", timeout=30_000)
    expect(note).to_contain_text("%%trigger_job ... --refresh-stale")
    _scroll_to_top(tree)
    save_screenshot(page, "widget-stale")


BIG_RUN = """\
import time, trigger_nb
client = trigger_nb.default_client()
job = client.define_job("big", name="A thousand tasks")

@job.run
def big(payload, io, ctx):
    for group in range(10):
        io.run_task(["group", group], lambda group=group: [
            io.run_task(["item", group, i], lambda i=i: i) for i in range(100)])

from trigger_nb._widgets.live import LiveRunView
view = LiveRunView(title="big")
display(view)
started = time.perf_counter()
run = job.trigger(listeners=[view.listener])
view.finish(run)
print(f"run+view {time.perf_counter() - started:.3f}s, {view.redraws} redraws")
"""
# Generous for a busy CI machine; bench/bench_widget.py --browser measures the real number
# (about 1.5 s from "Run All" to the interactive tree on the development machine).


def test_thousand_task_run_renders_and_pages(page: Page, jupyter_server: JupyterServer) -> None:
    nb = write_notebook(jupyter_server, "widget/big", _cells(BIG_RUN))
    page.goto(jupyter_server.lab_url(nb))
    wait_for_kernel_idle(page)
    started = time.monotonic()
    run_all_cells(page)
    doc = page.locator(".jp-OutputArea-output .tnb-doc").first
    expect(doc.locator(".tnb-counts")).to_contain_text("1010 executed", timeout=60_000)
    expect(doc.locator(".tnb-row").first).to_be_visible()
    elapsed = time.monotonic() - started
    print(f"the 1,000-task page was visible after {elapsed:.1f} s")  # measured, not asserted
    wait_for_execution(page, 2)
    view = _page(page, 1)

    # Long sibling lists are paged by the page's script (100 rows, then "show more"); a
    # group's 100 items fit one page.
    view.locator(".tnb-app .tnb-chev[data-act='kids']").first.click()
    expect(view.locator(".tnb-app .tnb-name", has_text="[item, 0, 99]")).to_be_visible()
    expect(view.locator(".tnb-app .tnb-name", has_text="[item, 1, 0]")).to_have_count(0)
    _scroll_to_top(view)
    save_screenshot(page, "widget-thousand")


SLOW_CELL = """\
%%trigger_job slow-import --name "Slow import"
import time
for i in range(8):
    io.run_task(["step", i], lambda task, i=i: time.sleep(0.4) or i, name=f"step {i}")
"imported"
"""


def test_magic_cell_is_live_then_saved_with_static_html(
    page: Page, jupyter_server: JupyterServer
) -> None:
    nb = write_notebook(jupyter_server, "widget/live", _cells(SLOW_CELL))
    page.goto(jupyter_server.lab_url(nb))
    wait_for_kernel_idle(page)
    run_all_cells(page)
    # While the cell runs, rows appear in the live view.
    live = page.locator(".jp-OutputArea-output .tnb-live")
    expect(live.locator(".tnb-task", has_text="step 2")).to_be_visible(timeout=60_000)
    expect(live.locator(".tnb-status", has_text="RUNNING")).to_be_visible()
    save_screenshot(page, "widget-live")
    wait_for_execution(page, 2)
    # Then the run's page replaces it; the widget stays, hidden: the page's link to the kernel.
    doc = page.locator(".jp-OutputArea-output .tnb-doc").first
    expect(doc.locator(".tnb-counts")).to_contain_text("8 executed · 0 replayed · 0 failed")
    expect(doc.locator(".tnb-row", has_text="step 7")).to_be_visible()
    expect(live.locator(".tnb-task")).to_have_count(0)  # the live HTML is gone
    expect(live.locator(".tnb-bridge-in input")).to_be_hidden()
    expect(page.locator(".jp-CodeCell").nth(1).locator(".tnb-open-tree")).to_have_count(0)

    # The saved notebook carries the final tree as static HTML, for viewers without a kernel.
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click()
    page.keyboard.press("Control+s")
    path = jupyter_server.root_dir / nb
    deadline = time.monotonic() + 30
    html = ""
    while time.monotonic() < deadline and "step 7" not in html:
        time.sleep(0.5)
        cells = json.loads(path.read_text())["cells"]
        outputs = cells[1].get("outputs", [])
        html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "step 7" in html and "SUCCESS" in html
    # the page's own inline script only: nothing loaded from elsewhere
    assert "<script src" not in html and html.count("<script>") == 1
