"""What a task printed and plotted, in a real browser: the task's Output section shows the
captured figure and text, and re-running the cell replays them under a "replayed" caption."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .lab import (
    JupyterServer,
    open_and_run_notebook,
    run_all_cells,
    save_screenshot,
    wait_for_execution,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLOT_CELL = """\
%%trigger_job plot --name "Plot a report"
import matplotlib.pyplot as plt

def chart():
    print("rows plotted: 3")
    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([1, 3, 2])
    axes.set_title("captured")
    return 3

io.run_task("chart", chart, name="Draw chart")
"""


def test_output_section_shows_the_captured_figure_and_replay_marks_it(
    page: Page, jupyter_server: JupyterServer
) -> None:
    cells = ["%load_ext trigger_nb", PLOT_CELL, "%trigger_runs"]
    nb = write_notebook(jupyter_server, "capture/plot", cells)
    open_and_run_notebook(page, jupyter_server, nb)
    cell = page.locator(".jp-CodeCell").nth(1)
    # Live: the figure is in the cell, as inline matplotlib would show it.
    expect(cell.locator(".jp-RenderedImage img").first).to_be_visible(timeout=60_000)
    # The run's page: the task's details show what it printed and the figure.
    cell.locator(".tnb-name[data-act='info']", has_text="Draw chart").first.click()
    section = cell.locator(".tnb-doc .tnb-captured >> visible=true").first  # not the fallback
    expect(section.locator("img")).to_be_visible(timeout=30_000)
    expect(section).to_contain_text("rows plotted: 3")
    section.evaluate("element => element.scrollIntoView({block: 'center'})")
    save_screenshot(page, "capture-page-output-section")
    # The explorer's ipywidgets tree: the same, rendered by the front end.
    explorer = page.locator(".jp-OutputArea-output .tnb-explorer").first
    explorer.locator(".tnb-runs-list select").select_option(index=0)
    tree = explorer.locator(".tnb-run-view")
    tree.locator(".tnb-name-btn", has_text="Draw chart").click()
    output = tree.locator(".tnb-details .tnb-captured-output")
    expect(output.locator("img")).to_be_visible(timeout=30_000)  # rendered by the front end
    expect(output).to_contain_text("rows plotted: 3")
    output.evaluate("element => element.scrollIntoView({block: 'center'})")
    save_screenshot(page, "capture-output-section")

    # Run it again: the task is replayed, and what it showed comes back, marked as replayed.
    run_all_cells(page)
    caption = cell.locator(".trigger-nb-replayed")
    expect(caption).to_contain_text("replayed output of task 'Draw chart'", timeout=60_000)
    wait_for_execution(page, 2)
    expect(cell.locator(".jp-RenderedImage img").first).to_be_visible()
    expect(cell.locator(".jp-OutputArea-output", has_text="rows plotted: 3").first).to_be_visible()
    caption.evaluate("element => element.scrollIntoView({block: 'start'})")
    save_screenshot(page, "capture-replayed")


FAILING_CELL = """\
%%trigger_job batches --name "Batches"
def work(batch, item):
    if batch == 1 and item == 60:
        raise ValueError("bad row 60")
    return item

for batch in range(2):
    def items(task, batch=batch):
        for item in range(70):
            io.run_task(["item", batch, item], lambda item=item, batch=batch: work(batch, item))
    try:  # the run goes on (and the cell ends without an error, so the next cell runs)
        io.run_task(["batch", batch], items, name=f"batch {batch}")
    except Exception:
        pass
"""


def test_the_explorer_tree_filters_searches_and_jumps_to_the_failure(
    page: Page, jupyter_server: JupyterServer
) -> None:
    """The explorer's tree has the run page's finding bar: chips with counts, a search, and
    "jump to first failure", which opens the failed task on the second page of its siblings."""
    cells = ["%load_ext trigger_nb", FAILING_CELL, "%trigger_runs"]
    nb = write_notebook(jupyter_server, "capture/finder", cells)
    open_and_run_notebook(page, jupyter_server, nb)
    explorer = page.locator(".jp-OutputArea-output .tnb-explorer").first
    expect(explorer).to_be_visible(timeout=60_000)
    explorer.locator(".tnb-runs-list select").select_option(index=0)
    tree = explorer.locator(".tnb-run-view")
    failed_row = tree.locator(".tnb-name-btn", has_text="[item, 1, 60]")
    expect(failed_row).to_have_count(0)  # on the second page of a closed batch
    chips = tree.locator(".tnb-chips")
    expect(chips).to_contain_text("failed 2")
    chips.locator("button", has_text="failed").click()
    expect(failed_row).to_be_visible(timeout=30_000)
    expect(tree.locator(".tnb-name-btn")).to_have_count(2)  # the item and its batch
    save_screenshot(page, "explorer-finder-failed-chip")
    tree.locator(".tnb-jump").click()
    expect(tree.locator(".tnb-jumped")).to_be_visible(timeout=30_000)
    expect(tree.locator(".tnb-details").first).to_contain_text("bad row 60")
    tree.locator(".tnb-jumped").evaluate("element => element.scrollIntoView({block: 'center'})")
    save_screenshot(page, "explorer-finder-jumped")
