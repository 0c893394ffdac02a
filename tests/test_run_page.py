"""The run page (``_render.document``, ``doc_data``, ``progress``) and how the live view and the
explorer use it. What it looks like and does in a browser: tests/browser/test_run_page_browser.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from trigger_nb import MemoryStore, RetryOptions, TriggerClient
from trigger_nb._core.clock import FakeClock
from trigger_nb._render.document import DOC_CLASS, app_script, render_document
from trigger_nb._render.html import NOTEBOOK_MAX_ROWS
from trigger_nb._render.progress import run_progress
from trigger_nb._widgets.explorer import RunsExplorer
from trigger_nb._widgets.live import LiveRunView
from trigger_nb._widgets.run_view import run_data


def page_data(page: str) -> dict[str, Any]:
    """The JSON the page's script draws from."""
    found = re.search(r'<script type="application/json" class="tnb-data">(.*?)</script>', page)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def _nested_failing_job(client: TriggerClient, name: str = "<script>alert(1)</script>") -> Any:
    job = client.define_job("orders", name="Import orders")
    tries = {"n": 0}

    def flaky() -> str:
        tries["n"] += 1
        if tries["n"] < 3:
            raise ConnectionError("busy")
        return "ok"

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.logger.info("starting", rows=3)
        io.run_task("fetch", flaky, name="Fetch", retry=RetryOptions(limit=3, min_timeout=0.01))
        io.parallel("fan", range(3), lambda i: i)

        def load(task: Any) -> None:
            io.logger.warn("loading")
            io.run_task("parse", lambda: [1, 2], name="Parse")
            io.run_task("save", lambda: 1 / 0, name=name)

        io.run_task("load", load, name="Load")

    return job


def test_the_page_holds_every_task_in_tree_order_with_attempts_and_the_failure(
    client: TriggerClient,
) -> None:
    run = _nested_failing_job(client).trigger()
    page = render_document(run_data(run))
    data = page_data(page)
    tasks = data["t"]
    titles = [t["t"] for t in tasks]
    assert titles == [
        "Fetch", "parallel", "item 0", "item 1", "item 2", "Load", "Parse",
        "<script>alert(1)</script>",
    ]  # fmt: skip
    parents = [titles[t["p"]] if "p" in t else None for t in tasks]
    assert parents == [None, None, "parallel", "parallel", "parallel", None, "Load", "Load"]
    fetch = tasks[0]
    assert [a[4] for a in fetch["a"]] == ["failed", "failed", "completed"]
    assert fetch["a"][0][5] == "ConnectionError: busy"  # not its final error: in full
    assert tasks[1]["n"] == 3  # the parallel task's item count: its progress's total
    failed = tasks[data["ff"]]
    assert failed["t"] == "<script>alert(1)</script>" and failed["s"] == "failed"
    assert failed["er"] == "ZeroDivisionError: division by zero" and "Traceback" in failed["tb"]
    assert tasks[5]["er"] == "failed in subtask <script>alert(1)</script> [save]"
    assert tasks[5]["lg"][0][0] == "warn" and tasks[5]["lg"][0][2] == "loading"
    assert [e[0] for e in data["ex"]] == [1]
    # A name cannot close the data's script element nor open one: the page has two scripts.
    assert page.count("<script") == 2 and "<script>alert(1)" not in page
    # the header names the failed task as a link the script makes jump to it
    assert 'data-tnb-jump="1">&lt;script&gt;alert(1)&lt;/script&gt; [save]</a>' in page
    assert page.count(DOC_CLASS) >= 1 and app_script() in page


def test_a_finished_runs_page_is_the_same_whenever_it_is_drawn(
    client: TriggerClient, clock: FakeClock
) -> None:
    run = _nested_failing_job(client, name="Save").trigger()
    first = render_document(run_data(run))
    clock.advance(3600)
    assert render_document(run_data(run)) == first  # no "now" in a finished run's page


def test_the_static_tree_beside_the_data_is_cut_where_scripts_do_not_run(
    client: TriggerClient,
) -> None:
    job = client.define_job("wide")
    job.run(lambda payload, io, ctx: [io.run_task(["t", i], lambda: 1) for i in range(300)])
    page = render_document(run_data(job.trigger()))
    assert len(page_data(page)["t"]) == 300  # every task for the script
    static = page[page.index('class="tnb-static-tree"') : page.index("tnb-data")]
    assert static.count('class="tnb-task ') == NOTEBOOK_MAX_ROWS
    assert f"{300 - NOTEBOOK_MAX_ROWS:,} more sibling tasks" in static


@pytest.mark.parametrize(
    ("done", "total", "failed", "elapsed", "text"),
    [
        (0, None, 0, 1.0, "0 done"),
        (412, None, 3, 1.0, "412 done · 3 failed"),
        (250, 1000, 0, 1.0, "250/1,000 done · about 3.00 s left"),
        (1000, 1000, 2, 9.0, "1,000/1,000 done · 2 failed"),
        (0, 10, 0, 1.0, "0/10 done"),
    ],
)
def test_progress_says_done_total_failures_and_time_left(
    done: int, total: int | None, failed: int, elapsed: float, text: str
) -> None:
    assert run_progress(done, total, failed, elapsed) == text


def test_the_live_view_shows_progress_and_a_parallel_tasks_count() -> None:
    client = TriggerClient("live-progress", store=MemoryStore())
    job = client.define_job("fan")
    seen: list[str] = []
    view = LiveRunView(title="fan")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        def child(i: int) -> int:
            if i == 3:
                view._draw()  # as the redraw timer would, while items still run
                seen.append(re.sub(r"<[^>]+>", "", view._html.value))
            return i

        io.parallel("fan", range(6), child, max_workers=1)

    view.finish(job.trigger(listeners=[view.listener]))
    assert "3/6 done" in seen[0]  # items 0-2 done, item 3 running
    assert re.search(r"\d+ done", seen[0])  # the run's own count, in its header


def test_the_live_view_draws_each_rows_attempts_on_the_executions_time_axis() -> None:
    client = TriggerClient("live-timeline", store=MemoryStore())
    job = client.define_job("retry")
    tries = {"n": 0}
    seen: list[str] = []
    view = LiveRunView(title="retry")

    def flaky() -> int:
        tries["n"] += 1
        if tries["n"] < 3:
            raise ConnectionError("busy")
        return 1

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("flaky", flaky, retry=RetryOptions(limit=3, min_timeout=0.01))
        io.run_task("next", lambda: 2)
        view._draw()  # as the redraw timer would, while the run goes on
        seen.append(view._html.value)

    job.trigger(listeners=[view.listener])
    tracks = re.findall(r'<span class="tnb-track">(.*?)</span></span>', seen[0])
    assert len(tracks) == 2  # a track per row
    assert tracks[0].count('class="tnb-tbar"') == 3  # three attempts: failed, failed, completed
    assert tracks[0].count("background:#cf222e") == 2 and "attempt 3:" in tracks[0]
    assert tracks[1].count('class="tnb-tbar"') == 1


def test_a_replays_view_completes_its_tasks_from_the_last_view_not_the_store(
    client: TriggerClient,
) -> None:
    job = _nested_failing_job(client, name="Save")
    first = LiveRunView(title="1")
    first.finish(job.trigger(listeners=[first.listener]))
    again = LiveRunView(title="2")
    run = job.trigger(listeners=[again.listener])  # replays Fetch, parallel; Load fails again
    reads: list[int] = []
    original = run.run_data
    run.run_data = lambda *a, **k: reads.append(1) or original(*a, **k)  # type: ignore[method-assign]
    again.finish(run)
    assert reads == []  # no read back: the first view's records and this one's events
    assert again._final is not None
    assert page_data(again._final[0]) == page_data(render_document(run_data(run)))

    quiet = job.trigger()  # an execution no view saw: the next view reads the run back
    third = LiveRunView(title="3")
    run = job.trigger(listeners=[third.listener])
    reads.clear()
    original = run.run_data
    run.run_data = lambda *a, **k: reads.append(1) or original(*a, **k)  # type: ignore[method-assign]
    third.finish(run)
    assert quiet.id == run.id and reads == [1]
    assert third._final is not None
    assert page_data(third._final[0]) == page_data(render_document(run_data(run)))


def test_the_explorer_searches_sorts_and_shows_payload_error_and_active_time(
    client: TriggerClient, clock: FakeClock
) -> None:
    ok = client.define_job("billing")
    ok.run(lambda payload, io, ctx: io.run_task("slow", lambda: clock.advance(5)))
    bad = client.define_job("orders")
    bad.run(lambda payload, io, ctx: io.run_task("x", lambda: {}["customer"]))
    billed = ok.trigger({"account": "acme"})
    clock.advance(60)
    failed = bad.trigger({"order": 7})
    explorer = RunsExplorer(client.store)
    lines = explorer.to_text().splitlines()
    assert lines[0].split() == [
        "job", "run", "id", "status", "started", "active", "tasks", "replayed", "payload", "error",
    ]  # fmt: skip
    assert '{"order": 7}' in lines[1] and "TaskError: task 'x' failed" in lines[1]
    assert '{"account": "acme"}' in lines[2] and " 5.00 s " in lines[2]
    assert [r.id for r in explorer.shown()] == [failed.id, billed.id]  # newest first
    explorer.sort.value = "longest active"
    assert [r.id for r in explorer.shown()] == [billed.id, failed.id]
    explorer.sort.value = "oldest"
    assert [value for _, value in explorer.runs.options] == [billed.id, failed.id]
    explorer.search.value = "ACME"  # any case, in the payload
    assert [value for _, value in explorer.runs.options] == [billed.id]
    explorer.search.value = "keyerror"  # in the error
    assert [value for _, value in explorer.runs.options] == [failed.id]
    explorer.search.value = "nothing like it"
    assert explorer.runs.options == ()
