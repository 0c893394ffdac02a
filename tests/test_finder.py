"""Finding a task in the explorer's interactive tree (trigger_nb/_widgets/finder.py): status
chips with counts, a search over keys and names, "jump to first failure" whatever page of
siblings it sits on -- what the run page offers, in the tree the explorer shows a run in."""

from __future__ import annotations

from typing import Any

import pytest

from trigger_nb import JobRun, MemoryStore, TriggerClient
from trigger_nb._widgets.explorer import runs_explorer
from trigger_nb._widgets.finder import JUMPED
from trigger_nb._widgets.row import PAGE_SIZE
from trigger_nb._widgets.run_view import RunView

BATCHES = 3
ITEMS = PAGE_SIZE + 30  # the failure sits on the second page of its siblings


@pytest.fixture
def client() -> TriggerClient:
    return TriggerClient("finder", store=MemoryStore())


def _failing_run(client: TriggerClient) -> JobRun:
    """Three batches of ``ITEMS`` items each; item 70 of the last batch fails."""
    job = client.define_job("batches")

    @job.run
    def body(payload: Any, io: Any, ctx: Any) -> None:
        for batch in range(BATCHES):

            def items(task: Any, batch: int = batch) -> None:
                for item in range(ITEMS):
                    io.run_task(
                        ["item", batch, item], lambda item=item, batch=batch: _work(batch, item)
                    )

            io.run_task(["batch", batch], items, name=f"batch {batch}")

    run = job.trigger()
    assert run.status == "FAILURE"
    return run


def _work(batch: int, item: int) -> int:
    if batch == BATCHES - 1 and item == PAGE_SIZE + 20:
        raise ValueError("bad row")
    return item


def _shown(view: RunView) -> set[str]:
    """The titles of the rows the tree shows now (their widgets are in the grid)."""
    shown = set()

    def walk(box: Any) -> None:
        for widget in box.children:
            if "tnb-name-btn" in widget._dom_classes:
                shown.add(widget.description)
            elif hasattr(widget, "children"):
                walk(widget)

    walk(view.tree)
    return shown


def test_chips_count_and_keep_the_matching_tasks_with_their_path(client: TriggerClient) -> None:
    run = _failing_run(client)
    view = runs_explorer(client).select(run.id)
    labels = dict((value, label) for label, value in view.finder.chips.options)
    total = BATCHES + (BATCHES - 1) * ITEMS + PAGE_SIZE + 21  # the last batch stopped there
    assert labels["all"] == f"all {total:,}"
    assert labels["failed"] == "failed 2"  # the item and the batch it failed
    assert labels["running"] == "running 0" and labels["stale"] == "stale 0"

    view.finder.chips.value = "failed"
    assert _shown(view) == {"batch 2", "[item, 2, 70]"}

    view.finder.chips.value = "all"
    assert len(_shown(view)) < total  # the whole tree again, paged


def test_search_finds_keys_and_names_on_any_page(client: TriggerClient) -> None:
    run = _failing_run(client)
    view = runs_explorer(client).select(run.id)
    view.finder.search.value = "item, 1, 65"  # past the first page of batch 1's items
    assert _shown(view) == {"batch 1", "[item, 1, 65]"}
    view.finder.search.value = "BATCH 0"  # names, ignoring case
    assert "batch 0" in _shown(view) and "batch 1" not in _shown(view)
    view.finder.search.value = "no such task"
    assert _shown(view) == set()


def test_jump_to_first_failure_opens_its_path_its_page_and_its_details(
    client: TriggerClient,
) -> None:
    run = _failing_run(client)
    view = runs_explorer(client).select(run.id)
    assert "[item, 2, 70]" not in _shown(view)  # on the second page of a closed batch
    view.finder.search.value = "batch 0"
    view.finder.jump_button.click()
    assert view.finder.search.value == "" and view.finder.chips.value == "all"
    failed = next(row for row in view.rows.values() if row.button.description == "[item, 2, 70]")
    assert failed.button.description in _shown(view)
    assert failed.details_open and JUMPED in failed.button._dom_classes
    assert (
        "ValueError" in failed.details.children[0].value
        and "bad row" in failed.details.children[0].value
    )


def test_a_run_without_failures_offers_no_jump(client: TriggerClient) -> None:
    job = client.define_job("fine")
    job.run(lambda payload, io, ctx: io.run_task("only", lambda: 1))
    view = RunView(job.trigger())
    assert view.finder.jump_button.disabled
