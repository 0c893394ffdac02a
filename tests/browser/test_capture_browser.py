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
