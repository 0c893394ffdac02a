"""The task-tree views at the Python level: the tree model, the static HTML and text, the live
view's batching, the interactive rows, and the explorer. (The browser tests are in
tests/browser/test_widget_browser.py.)"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import (
    FakeClock,
    InvalidOptionError,
    JobRun,
    MemoryStore,
    RetryOptions,
    TriggerClient,
)
from trigger_nb._core.preview import REDACTED
from trigger_nb._render.format import format_countdown, format_duration
from trigger_nb._render.html import render_html
from trigger_nb._render.text import render_text
from trigger_nb._render.tree import TaskNode
from trigger_nb._widgets.explorer import RunsExplorer, runs_explorer
from trigger_nb._widgets.live import REDRAW_INTERVAL_SECONDS, LiveRunView
from trigger_nb._widgets.output import WIDGET_VIEW_MIME
from trigger_nb._widgets.row import PAGE_SIZE
from trigger_nb._widgets.run_view import RunView, run_data

XSS = "<script>alert(1)</script>"


class Counted:
    """An output that counts how often it is unpickled."""

    unpickled = 0

    def __init__(self, value: int) -> None:
        self.value = value

    def __reduce__(self) -> Any:
        return (_make_counted, (self.value,))

    def __repr__(self) -> str:
        return f"Counted({self.value})"


def _make_counted(value: int) -> Counted:
    Counted.unpickled += 1
    return Counted(value)


def _define(client: TriggerClient, state: dict[str, Any]) -> Any:
    job = client.define_job("orders", name="Process orders", version="1.2.0")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        io.logger.info("starting", batch=payload["batch"])

        def fetch(task: Any) -> list[int]:
            io.logger.info("fetching orders", count=3)
            io.run_task("auth", lambda: {"token": "s3cr3t", "user": "ann"}, redact=["token"])
            links = [
                {"label": "env", "text": "prod"},
                {"label": "bad", "text": "click", "url": "javascript:alert(1)"},
                {"label": "docs", "text": "manual", "url": "https://example.com/a?b=1&c=2"},
            ]
            io.run_task(XSS, lambda: 1, properties=links)
            return [1, 2, 3]

        orders = io.run_task(
            "fetch",
            fetch,
            name="Fetch orders",
            icon="database",
            params={"password": "hunter2"},
            redact=["password"],
        )
        io.run_task("report", lambda: Counted(7), name="Build report")
        if state["fail"]:
            io.run_task("charge", lambda: 1 / 0, name="Charge cards")
        io.wait("cool-down", 3600)
        return f"{len(orders)} orders"

    return job


@pytest.fixture
def failed_run(client: TriggerClient) -> JobRun:
    """One execution that fails at 'charge'."""
    return _define(client, {"fail": True}).trigger({"batch": 1})


@pytest.fixture
def waiting_run(client: TriggerClient, failed_run: JobRun) -> JobRun:
    """The same run executed again: it replays what completed and suspends on the wait."""
    return _define(client, {"fail": False}).trigger({"batch": 1})


def _flat(nodes: list[TaskNode], depth: int = 0) -> list[tuple[int, str, str]]:
    found = []
    for node in nodes:
        found.append((depth, node.record.name, node.status))
        found += _flat(node.children, depth + 1)
    return found


def test_tree_of_nested_failed_waiting_and_replayed_tasks(client: TriggerClient) -> None:
    first = _define(client, {"fail": True}).trigger({"batch": 1})
    assert _flat(run_data(first).tree()) == [
        (0, "Fetch orders", "completed"),
        (1, "auth", "completed"),
        (1, XSS, "completed"),
        (0, "Build report", "completed"),
        (0, "Charge cards", "failed"),
    ]
    # The second execution replays what completed; the failed task stays failed (not re-run),
    # and the durable wait shows as waiting.
    second = _define(client, {"fail": False}).trigger({"batch": 1})
    assert second.executions == 2
    assert _flat(run_data(second).tree()) == [
        (0, "Fetch orders", "replayed"),
        (1, "auth", "replayed"),
        (1, XSS, "replayed"),
        (0, "Build report", "replayed"),
        (0, "Charge cards", "failed"),
        (0, "wait 1 h", "waiting"),
    ]


def test_text_outline_shows_header_counts_and_nesting(client: TriggerClient) -> None:
    first = _define(client, {"fail": True}).trigger({"batch": 1})
    # The header names the failed task; its row holds the error, once.
    assert render_text(run_data(first)).splitlines()[2] == "error in task Charge cards [charge]"
    assert render_text(run_data(first)).count("division by zero") == 1
    second = _define(client, {"fail": False}).trigger({"batch": 1})
    text = render_text(run_data(second))
    lines = text.splitlines()
    assert lines[0].startswith(f"Process orders v1.2.0 · {second.id} · WAITING · started ")
    assert " · active 0 ms over 2 executions, 0 ms span" in lines[0]
    # the two replayed tasks and the two inside the replayed one
    assert lines[1].startswith("0 executed · 4 replayed · 0 failed ·")
    assert lines[2] == "resumes in 1h 00m 00s"
    assert "  ↻ Fetch orders ⛁ [fetch] · " in text  # icon="database": a glyph, not "[database]"
    assert "    ↻ auth · " in text  # nested one level deeper; key equal to name is not repeated
    assert "  ✗ Charge cards [charge] · failed · ZeroDivisionError: division by zero" in text
    assert "  ◷ wait 1 h [cool-down] · resumes in 1h 00m 00s · waiting" in text


def test_html_contains_every_task_and_escapes_user_text(failed_run: JobRun) -> None:
    first = failed_run
    page = render_html(run_data(first))
    for view in first.all_tasks:
        assert f'<span class="tnb-name">{_escaped(view.record.name)}</span>' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()  # shown as text, never run
    assert "javascript:" not in page  # only http(s) links become links
    assert 'href="https://example.com/a?b=1&amp;c=2"' in page and "env: prod" in page
    # self-contained: no external assets, no event handlers
    assert not re.search(r"(src|href)=\"(?!https?://)|<link|<img|@import| on\w+=", page)
    assert page.count("<details") == page.count("</details>")
    assert "ZeroDivisionError: division by zero" in page and "Traceback" in page
    assert "fetching orders" in page  # the nested log line
    assert "hunter2" not in page and "s3cr3t" not in page and REDACTED in page


def test_html_of_a_waiting_run_shows_the_countdown(waiting_run: JobRun) -> None:
    page = render_html(run_data(waiting_run))
    assert "WAITING" in page and "resumes in 1h 00m 00s" in page
    assert "0 executed · 4 replayed · 0 failed" in page


def _escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_run_displays_as_html_and_text_without_a_kernel(waiting_run: JobRun) -> None:
    bundle = waiting_run._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}  # no widget manager in a plain process
    assert bundle["text/plain"] == render_text(run_data(waiting_run))


def test_formatting() -> None:
    assert [format_duration(s) for s in (None, 0.0123, 2.5, 125, 7322, 266_400)] == [
        "—", "12 ms", "2.50 s", "2m 05s", "2h 02m", "3d 02h",
    ]  # fmt: skip
    clock = FakeClock()
    from datetime import timedelta

    assert format_countdown(clock.now() + timedelta(seconds=61.2), clock.now()) == (
        "resumes in 1m 02s"
    )
    assert format_countdown(clock.now(), clock.now()).startswith("due")


# --- the live view ----------------------------------------------------------------------------


def _wide_job(client: TriggerClient, n: int, pause: float = 0.0) -> Any:
    job = client.define_job(f"wide-{n}")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> int:
        for i in range(n):
            io.run_task(["item", i], lambda i=i: time.sleep(pause) or i)
        return n

    return job


def test_live_view_batches_redraws_and_finish_draws_the_final_state() -> None:
    client = TriggerClient("live", store=MemoryStore())
    job = _wide_job(client, 300, pause=0.001)
    view = LiveRunView(title="wide")
    started = time.monotonic()
    run = job.trigger(listeners=[view.listener])
    elapsed = time.monotonic() - started
    # 300 tasks send 600+ events; redraws stay at about one per interval.
    assert view.redraws <= elapsed / REDRAW_INTERVAL_SECONDS + 3
    view.finish(run)
    # finished: the page is the saved view and the one tree; the widget is its hidden link to
    # the kernel (the live HTML emptied, a text box); the view lets the task records go
    assert view.run_view is None and view.bar is not None and view.bar.widget is view.widget
    assert view.widget.children == (view.bar.reply, view.bar.request)
    assert view.bar.reply.value == "" and "tnb-bridge-out" in view.bar.reply._dom_classes
    assert view._records == {} and view._roots == [] and len(view.bar.task_ids) == 300
    bundle = view._repr_mimebundle_()
    assert WIDGET_VIEW_MIME not in bundle  # the page: no widget model to lose with the kernel
    assert "300 executed" in bundle["text/html"] and "SUCCESS" in bundle["text/plain"]
    assert view._widget_bundle()[WIDGET_VIEW_MIME]["model_id"] == view.widget.model_id
    tree = view.open_tree()  # the ipywidgets tree (the explorer's), on request
    assert view.bar.widget.children == (view.bar.reply, view.bar.request, tree.widget)
    names = [row.node.record.name for row in tree.rows.values()]
    assert len(names) == PAGE_SIZE  # first page of siblings, the rest behind "show more"
    assert view.open_tree() is tree


def test_live_view_draws_the_last_event_within_the_interval() -> None:
    view = LiveRunView(title="t")
    client = TriggerClient("live2", store=MemoryStore())
    job = client.define_job("two")
    seen: list[str] = []

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("one", lambda: 1, name="first task")
        io.run_task("two", lambda: 2, name="second task")
        time.sleep(3 * REDRAW_INTERVAL_SECONDS)  # no events meanwhile: the trailing redraw runs
        seen.append(view._html.value)

    job.trigger(listeners=[view.listener])
    assert "second task" in seen[0] and "2 executed" in seen[0]


def test_live_view_is_safe_from_threads() -> None:
    view = LiveRunView(title="threads")
    client = TriggerClient("live3", store=MemoryStore())
    job = client.define_job("fan-out")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        return list(io.parallel("fan", range(200), lambda i: i * 2))

    run_ = job.trigger(listeners=[view.listener])
    assert run_.status == "SUCCESS"
    view.finish(run_)
    assert "200" in view._repr_mimebundle_()["text/html"]
    assert threading.active_count() < 50


# --- the interactive rows ---------------------------------------------------------------------


def _row(view: RunView, name: str) -> Any:
    return next(row for row in view.rows.values() if row.node.record.name == name)


def test_rows_expand_to_logs_errors_and_rich_output(failed_run: JobRun) -> None:
    view = RunView(failed_run)
    fetch = _row(view, "Fetch orders")
    assert fetch.children_open  # small trees open their children at first
    assert fetch.details is None  # details are built on the first click only
    fetch.toggle_details()
    assert "fetching orders" in fetch.details.children[0].value
    assert "hunter2" not in fetch.details.children[0].value
    charge = _row(view, "Charge cards")
    charge.toggle_details()
    assert "ZeroDivisionError: division by zero" in charge.details.children[0].value
    # a failed task has no output to show: its details end with the task actions
    assert [w._dom_classes for w in charge.details.children[1:]] == [("tnb-actions",)]

    before = Counted.unpickled
    report = _row(view, "Build report")
    report.toggle_details()
    assert Counted.unpickled == before  # the preview needs no unpickling
    assert "Counted(7)" in report.details.children[0].value
    _body, button, output, _actions = report.details.children
    button.click()
    assert Counted.unpickled == before + 1
    assert output.outputs[0]["data"]["text/plain"] == "Counted(7)"

    auth = _row(view, "auth")
    auth.toggle_details()
    auth.details.children[1].click()
    assert auth.details.children[2].outputs[0]["data"]["text/plain"] == (
        "{'token': '[REDACTED]', 'user': 'ann'}"
    )


def test_rows_lay_out_in_their_pages_grid_and_survive_closed_widgets(failed_run: JobRun) -> None:
    import ipywidgets

    view = RunView(failed_run)
    fetch = _row(view, "Fetch orders")
    grid = view.tree.children
    at = grid.index(fetch.button)
    assert grid[at - 1] is fetch.chevron and grid[at + 1] is fetch.meta  # one line of the grid
    assert grid[at + 2] is fetch.children_box  # then its subtasks, full width
    fetch.toggle_details()
    assert view.tree.children[at + 2] is fetch.details  # details come before the subtasks
    assert view.tree.children[at + 3] is fetch.children_box

    ipywidgets.Widget.close_all()  # e.g. a user clearing every widget of the kernel
    again = RunView(failed_run)  # the shared layout and styles are made again, not reused closed
    assert again.shared.layout.comm is not None
    assert _row(again, "Fetch orders").button.layout is again.shared.layout


def test_show_output_uses_the_objects_rich_display(client: TriggerClient) -> None:
    pandas = pytest.importorskip("pandas")
    job = client.define_job("frame")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("table", lambda: pandas.DataFrame({"a": [1, 2]}), name="table")

    view = RunView(job.trigger())
    row = _row(view, "table")
    row.toggle_details()
    row.details.children[1].click()
    assert "<table" in row.details.children[2].outputs[0]["data"]["text/html"]


def test_waiting_countdown_ticks(client: TriggerClient, clock: FakeClock) -> None:
    job = client.define_job("sleepy")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.wait("nap", 90)

    view = RunView(job.trigger())
    row = next(iter(view.rows.values()))
    assert "resumes in 1m 30s" in row.meta.value
    clock.advance(30)
    assert view.tick() is True
    assert "resumes in 1m 00s" in row.meta.value and "resumes in 1m 00s" in view.header.value
    clock.advance(61)
    assert view.tick() is False  # due: the ticker lets go of the view
    assert "due" in row.meta.value


def test_ten_thousand_tasks_stay_usable() -> None:
    client = TriggerClient("big", store=MemoryStore())
    job = client.define_job("big")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        for group in range(10):
            io.run_task(
                ["group", group],
                lambda group=group: [io.run_task(["t", i], lambda i=i: i) for i in range(1000)],
            )

    run_ = job.trigger()
    view = RunView(run_)  # its speed is measured in bench/bench_widget.py, not asserted here
    assert len(view.rows) <= 2 * PAGE_SIZE  # widgets for what is on screen, not 10,000 rows
    first = _row(view, "['group', 0]")  # the name; its button shows the key: [group, 0]
    if not first.children_open:
        first.toggle_children()
    more = first.children_box.children[-1]
    assert more.description == f"show {PAGE_SIZE} more ({1000 - PAGE_SIZE:,} not shown)"
    more.click()
    names = [w.description for w in first.children_box.children if "tnb-name-btn" in w._dom_classes]
    assert names == [f"[t, {i}]" for i in range(2 * PAGE_SIZE)]
    assert first.children_box.children[-1] is more  # still there: 900 more not shown
    assert more.description == f"show {PAGE_SIZE} more ({1000 - 2 * PAGE_SIZE:,} not shown)"
    page = render_html(run_data(run_))
    assert len(page) < 2_000_000 and "more sibling tasks" in page
    assert "more tasks not shown here" in page


# --- the explorer -----------------------------------------------------------------------------


def test_explorer_lists_filters_and_opens_runs(tmp_path: Path, clock: FakeClock) -> None:
    client = TriggerClient("explore", store=str(tmp_path / "store"), clock=clock)
    state = {"fail": True}
    job = _define(client, state)
    failed = job.trigger({"batch": 1})
    other = client.define_job("other", run=lambda payload, io, ctx: io.run_task("x", lambda: 1))
    ok = other.trigger()

    Counted.unpickled = 0
    explorer = runs_explorer(str(tmp_path / "store"))
    assert isinstance(explorer, RunsExplorer)
    labels = [label for label, _ in explorer.runs.options]
    assert len(labels) == 2
    assert any(failed.id[:12] in label and "FAILURE" in label for label in labels)
    explorer.job_filter.value = "other"
    assert [value for _, value in explorer.runs.options] == [ok.id]
    explorer.job_filter.value = ""
    explorer.status_filter.value = "FAILURE"
    assert [value for _, value in explorer.runs.options] == [failed.id]

    view = explorer.select(failed.id)
    assert explorer.detail.children == (view.widget,)
    assert Counted.unpickled == 0  # listing and opening read metadata only
    report = _row(view, "Build report")
    report.toggle_details()
    report.details.children[1].click()
    assert Counted.unpickled == 1
    assert report.details.children[2].outputs[0]["data"]["text/plain"] == "Counted(7)"

    bundle = explorer._repr_mimebundle_()
    assert failed.id[:12] in bundle["text/html"] and failed.id[:12] in bundle["text/plain"]
    assert runs_explorer(client, job="orders").shown()[0].id == failed.id


def test_explorer_refresh_shows_new_runs(client: TriggerClient) -> None:
    explorer = runs_explorer(client)
    assert explorer.runs.options == () and "no runs" in explorer.to_text()
    _wide_job(client, 2).trigger()
    explorer.refresh()
    assert len(explorer.runs.options) == 1


def test_picking_a_run_that_changed_updates_its_row(client: TriggerClient) -> None:
    job = client.define_job("pausing", run=lambda payload, io, ctx: io.wait("pause", 60))
    waiting = job.trigger()
    explorer = runs_explorer(client)
    assert "WAITING" in explorer.runs.options[0][0]
    waiting.cancel()  # changed after the explorer listed it
    explorer.select(waiting.id)
    assert "CANCELED" in explorer.runs.options[0][0] and explorer.runs.value == waiting.id
    assert explorer.run_view is not None


def test_explorer_rejects_an_unknown_status(client: TriggerClient) -> None:
    with pytest.raises(InvalidOptionError, match="status='DONE' is not a run status: use one"):
        runs_explorer(client, status="DONE")


def test_retries_show_attempt_count(client: TriggerClient, clock: FakeClock) -> None:
    job = client.define_job("flaky")
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("try again")
        return 1

    job.run(lambda payload, io, ctx: io.run_task("f", flaky, retry=RetryOptions(limit=3)))
    run_ = job.trigger()
    assert "f · " in render_text(run_data(run_)) and "3 attempts" in render_text(run_data(run_))
    assert "ConnectionError: try again" in render_html(run_data(run_))


def test_live_view_follows_a_resumed_run(client: TriggerClient, clock: FakeClock) -> None:
    job = client.define_job("resumable")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        io.run_task("before", lambda: 1, name="before the wait")
        io.wait("pause", 60)
        io.run_task("after", lambda: 2, name="after the wait")
        return "done"

    view = LiveRunView(title="resumable")
    waiting = job.trigger(listeners=[view.listener])
    view.finish(waiting)
    assert waiting.status == "WAITING" and view.open_tree() is not None
    assert "resumes in 1m 00s" in view._repr_mimebundle_()["text/plain"]
    clock.advance(61)
    done = job.trigger(listeners=[view.listener])  # what the magic's resumer does when due
    view.finish(done)
    assert done.status == "SUCCESS"
    assert view.bar is not None and view.run_view is None  # a new page, a new bridge
    view.open_tree()
    assert view.run_view is not None
    assert [r.node.status for r in view.run_view.rows.values()] == [
        "replayed", "completed", "completed",
    ]  # fmt: skip
    assert "after the wait" in view._repr_mimebundle_()["text/html"]
