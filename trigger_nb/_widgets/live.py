"""``LiveRunView``: the task tree under a running ``%%trigger_job`` cell, then the run finished.

It shows as two outputs of the cell: a widget, and a page of HTML.
- While the run executes, the widget redraws one HTML view (at most 4 times a second; a
  widget costs ~0.35 ms to make and every redraw is a message): header with progress
  (done/total, failures, time left), the newest rows, an ``io.parallel``'s progress.
- Once it finished, the page (``_render.document``) shows the whole run: tree, status chips,
  search, sort, jump to the first failure, timeline. It needs no kernel: a notebook saved and
  reopened without one shows it (a widget's output would say "model not found" there). The
  page is the one tree: the widget becomes its hidden link to the kernel (``PageBridge``),
  through which a task's details on the page show its output and offer "Refresh" and "Re-run
  from here" while this kernel lives.

Once the page is made the view lets go of the run's task records (the bridge keeps the run's
handle and the page's task ids): ipywidgets keeps every widget alive until the kernel ends,
and views holding 1,000 records each made every garbage collection of a session slower.
"""

from __future__ import annotations

import collections
import heapq
import html
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trigger_nb._client.task_view import captured_outputs
from trigger_nb._core.clock import SYSTEM_CLOCK, Clock
from trigger_nb._core.model import LogRecord, RunRecord, RunStatus, TaskRecord
from trigger_nb._render.captured import attach
from trigger_nb._render.css import CSS, WIDGET_CSS
from trigger_nb._render.data import RunData
from trigger_nb._render.document import document_from
from trigger_nb._render.format import format_duration, run_active_seconds
from trigger_nb._render.html import NOTEBOOK_MAX_ROWS, header_html, tree_html
from trigger_nb._render.progress import node_progress, run_progress
from trigger_nb._render.summary import RunSummary, summarize_run
from trigger_nb._render.task_html import line_html
from trigger_nb._render.text import summary_text, text_from
from trigger_nb._render.timeline import TRACK_CSS, track_html
from trigger_nb._render.tree import WAITING, TaskNode, build_tree, display_status, group_logs
from trigger_nb._widgets.bridge import REPLY_CLASS, PageBridge, request_widget
from trigger_nb._widgets.output import WIDGET_VIEW_MIME, display, update_display
from trigger_nb._widgets.row import Shared
from trigger_nb._widgets.run_view import RunView, run_clock

if TYPE_CHECKING:
    from trigger_nb._client.run import JobRun

# Four redraws a second read as live; each is a message with the rows drawn, and a run of a
# few hundred milliseconds is shown by finish() with one or none in between.
REDRAW_INTERVAL_SECONDS = 0.25
# A redraw may take at most this share of the run's time: big trees redraw less often.
REDRAW_TIME_SHARE = 0.03
# Rows redrawn live (each redraw is sent whole to the browser); the finished view pages through
# every task. Per level, the newest siblings are shown: they are the news.
LIVE_MAX_ROWS = 80
LIVE_SIBLINGS = 15
# Runs whose last view's task records and logs are kept (``_Seen``), most recent last.
SEEN_RUNS = 8
# The task events that add to a counter of the header, and which.
_COUNTED = {"task_completed": "executed", "task_replayed": "replayed", "task_failed": "failed"}


class LiveRunView:
    """A view that follows a run while it executes.

    Display the view (``display(view)``), pass ``view.listener`` to
    ``job.trigger(..., listeners=[view.listener])``, then call ``view.finish(run)``: the live HTML
    is replaced by the run's page (the saved output), the widget by the page's link to the kernel.
    Redraws are batched: at most one per ``REDRAW_INTERVAL_SECONDS``, plus a trailing redraw so
    the screen never lags the run by more than that. ``clock``: the run's client's (what its
    countdowns count from).
    """

    def __init__(self, *, title: str, clock: Clock = SYSTEM_CLOCK) -> None:
        import ipywidgets

        self.title = title
        self._clock = clock
        self.redraws = 0
        self.bar: PageBridge | None = None  # once finished
        self._lock = threading.Lock()
        self._draw_lock = threading.Lock()
        self._records: dict[str, TaskRecord] = {}
        self._nodes: dict[str, TaskNode] = {}  # the live tree, grown when drawn
        self._roots: list[TaskNode] = []
        self._fresh: list[TaskRecord] = []  # records not in the live tree yet
        self._replayed: set[str] = set()
        # tasks replayed although their code or inputs changed: why (from their replay events)
        self._stale: dict[str, tuple[str, ...]] = {}
        self._logs: list[LogRecord] = []
        self._run: RunRecord | None = None
        self._counts = {"executed": 0, "replayed": 0, "failed": 0}
        self._last_draw = 0.0
        self._draw_seconds = 0.0
        self._lines: dict[str, tuple[tuple[Any, ...], str]] = {}
        self._redraw_due = False  # a redraw is scheduled (``_REDRAWS``)
        # kind, payload, kind, payload, ...: two items per event (``extend`` of a pair is
        # atomic, and the pair dies at once: no object per queued event for the GC to count)
        self._queue: collections.deque[Any] = collections.deque()
        self._finished = False
        self._final: tuple[str, str] | None = None
        self._display_id: str | None = None  # the widget's output; the page's is this + "-page"
        self._started = time.monotonic()
        # Drawn "starting…" as it is made (one message, not an empty widget then a redraw); the
        # first task events are drawn an interval later: a run shorter than that is shown by
        # finish() without any live redraw in between.
        # the layout and style every view shares: else each widget makes (and sends) its own
        shared = Shared.get()
        self._html = ipywidgets.HTML(
            self._live_html(),
            layout=shared.layout,
            style=shared.html_style,
            _dom_classes=("tnb-live-html",),
        )
        self._last_draw = time.monotonic()
        # the bridge's request box (``PageBridge``), hidden, made now and kept for every
        # execution this view shows: finishing then changes no child (no message), and a
        # "Re-run from here" makes no new widget the kernel would keep forever
        self._request = request_widget()
        self.widget = ipywidgets.VBox(
            [self._html, self._request], layout=shared.layout, _dom_classes=("tnb", "tnb-live")
        )

    # -- events ----------------------------------------------------------------------------
    def listener(self, kind: str, payload: Any) -> None:
        """``listener(kind, payload)`` for ``job.trigger(listeners=...)``; safe from threads.

        Between redraws an event is only queued (the run pays a deque append for it); the tree
        grows from the queue when it is drawn, at most 4 times a second.
        """
        if self._redraw_due and not self._finished:
            self._queue.extend((kind, payload))  # a redraw is already scheduled: it shows this
            return
        with self._lock:
            if self._finished:
                if kind != "run_started":
                    return
                self._reopen()  # the run resumes (a due wait): live again until finish()
            self._queue.extend((kind, payload))
            if self._redraw_due:
                return
            interval = max(REDRAW_INTERVAL_SECONDS, self._draw_seconds / REDRAW_TIME_SHARE)
            wait = interval - (time.monotonic() - self._last_draw)
            if wait > 0:  # too soon: draw the latest state at the end of the interval
                self._redraw_due = True
                _REDRAWS.call_later(wait, self._flush)
                return
            self._last_draw = time.monotonic()
        self._draw()

    @property
    def run_view(self) -> RunView | None:
        """The ipywidgets tree, once made (``open_tree``)."""
        return self.bar.run_view if self.bar is not None else None

    def open_tree(self) -> RunView:
        """Make (once) and show the finished run's ipywidgets tree (the explorer's), read from
        the store, in place of the page (which hides itself: ``app_css.REOPEN_CSS``)."""
        if self.bar is None:
            raise RuntimeError("the run has not finished: there is no tree to open yet")
        return self.bar.open()

    def _forget(self) -> None:
        """Let go of the run's tasks as this view saw them (a new execution, or the page made)."""
        self._records, self._replayed, self._logs, self._lines = {}, set(), [], {}
        self._stale = {}
        self._nodes, self._roots, self._fresh = {}, [], []

    def _reopen(self) -> None:
        if self.bar is not None:
            self.bar.release()
        self._finished, self._final, self.bar = False, None, None
        self._started = time.monotonic()
        self._forget()
        self._queue.clear()
        self._last_draw = 0.0
        self._html.remove_class(REPLY_CLASS)
        self.widget.children = (self._html, self._request)
        if self._display_id is not None:  # the last page is old news while the run goes on
            update_display(self._page_bundle(), raw=True, display_id=self._display_id + "-page")

    def _drain(self) -> None:
        """Apply the queued events (under ``_lock``). ``popleft`` rather than swapping lists: a
        thread may be appending right now, and its event must not land in a list let go of."""
        queue = self._queue
        take = queue.popleft
        for _ in range(len(queue) // 2):
            self._apply(take(), take())

    def _apply(self, kind: str, payload: Any) -> None:
        counted = _COUNTED.get(kind)
        if counted is not None or kind.startswith("task_"):  # most events: one per task change
            if not isinstance(payload, TaskRecord):
                return
            self._records[payload.id] = payload
            self._fresh.append(payload)
            if counted is not None:
                self._counts[counted] += 1
                if counted == "replayed":
                    self._replayed.add(payload.id)
                    if payload.stale_reasons:  # set on the record of its replay event only
                        self._stale[payload.id] = tuple(payload.stale_reasons)
        elif kind in ("run_started", "run_finished") and isinstance(payload, RunRecord):
            self._run = payload
            if kind == "run_started":
                self._counts = dict.fromkeys(self._counts, 0)
                self._started = time.monotonic()
        elif kind == "log" and isinstance(payload, LogRecord):
            self._logs.append(payload)

    def _grow(self) -> None:
        """Add the records that came since the last draw to the live tree (a run shown by
        ``finish`` before any draw never builds it: the page builds its own)."""
        fresh, self._fresh = self._fresh, []
        for record in fresh:
            self._grow_one(record)

    def _grow_one(self, record: TaskRecord) -> None:
        node = self._nodes.get(record.id)
        if node is not None:
            node.record = record  # a replay hands over the stored record object
            return
        node = self._nodes[record.id] = TaskNode(record, "")
        parent = self._nodes.get(record.parent_id or "")
        (parent.children if parent is not None else self._roots).append(node)

    def _flush(self) -> None:
        with self._lock:
            self._redraw_due = False
            if self._finished:
                return
            self._last_draw = time.monotonic()
        self._draw()

    # -- drawing ---------------------------------------------------------------------------
    def _draw(self) -> None:
        # Draws are serialized so an older snapshot never overwrites a newer one.
        with self._draw_lock:
            began = time.perf_counter()
            with self._lock:  # rendering walks the growing tree: no event may change it meanwhile
                self._drain()
                value = self._live_html()
            self.redraws += 1
            self._html.value = value
            self._draw_seconds = time.perf_counter() - began

    def _live_html(self) -> str:
        self._grow()
        run, now = self._run, self._clock.now()
        if run is None:
            head = f'<div class="tnb-head"><span class="tnb-job">{html.escape(self.title)}</span> '
            head += '<span class="tnb-muted">starting…</span></div>'
        else:
            head = header_html(self._live_summary(run, now), now=now)
        tree = tree_html(
            self._roots,
            None,
            line=lambda node: self._line(node, now),
            max_rows=LIVE_MAX_ROWS,
            latest=LIVE_SIBLINGS,
        )
        return f"<style>{CSS}{WIDGET_CSS}{TRACK_CSS}</style>{head}{tree}"

    def _line(self, node: TaskNode, now: datetime) -> str:
        """A row's HTML, re-rendered only when what it shows changed, then its attempts on the
        execution's time axis (``timeline``: they move as the axis grows)."""
        return self._row_text(node, now) + track_html(node.record, self._axis_start(now), now)

    def _axis_start(self, now: datetime) -> datetime:
        """The start of the execution shown (its rows' time axis runs from there to now)."""
        run = self._run
        if run is None:  # rows come after run_started; a view attached later has no axis
            return now
        latest = run.latest_execution
        return latest.started_at if latest is not None else run.created_at

    def _row_text(self, node: TaskNode, now: datetime) -> str:
        r = node.record
        # Live, a row is replayed when its replay event came; finish() shows the stored marks.
        node.status = display_status(r, self._replayed)
        node.stale = self._stale.get(r.id, ())
        key = (
            node.status,
            node.stale,
            r.duration_seconds,
            len(r.attempts),
            len(r.output_properties),
        )
        progress = node_progress(node, now) if r.kind == "parallel" else None
        cached = self._lines.get(r.id)
        if cached is None or cached[0] != key or node.status == WAITING or progress:
            line = line_html(node, now=now)
            if progress:
                sep = '<span class="tnb-sep"> · </span>'
                line += f' {sep}<span class="tnb-progress">{progress}</span>'
            cached = self._lines[r.id] = (key, line)
        return cached[1]

    def _live_summary(self, run: RunRecord, now: datetime) -> RunSummary:
        # with the tree, a failed run's header names the failed task (its row shows the error)
        summary = summarize_run(run, now=now, nodes=self._roots)
        if run.status is RunStatus.RUNNING:
            counts = self._counts
            # active time: the earlier executions' and this one's so far (not the span between)
            summary.duration = format_duration(run_active_seconds(run, now))
            summary.executed, summary.replayed = counts["executed"], counts["replayed"]
            summary.failed = counts["failed"]
            summary.stale = len(self._stale)
            replayed = (self._records[i] for i in self._replayed)
            summary.time_saved = format_duration(sum(r.duration_seconds or 0.0 for r in replayed))
            summary.task_count = len(self._records)
            done = counts["executed"] + counts["replayed"]
            # an execution after the first knows how many tasks the run had: the total
            summary.progress = run_progress(
                done, run.task_count or None, counts["failed"], time.monotonic() - self._started
            )
        return summary

    # -- the end ---------------------------------------------------------------------------
    def finish(self, run: JobRun | None, data: RunData | None = None) -> None:
        """Show the finished run as its page, the widget as the page's link to the kernel
        (``None``: keep the last live state). ``data``: the run as already read (a run
        displayed on its own), else from this view's events or the store."""
        with self._lock:
            self._finished = True  # a redraw still scheduled finds it so and draws nothing
            self._redraw_due = False
        if run is None:
            self._draw()
            return
        with self._lock:
            self._drain()
            records, logs = list(self._records.values()), list(self._logs)
        record, now = run.record, run_clock(run).now()  # the run's client's, as RunView's
        found = None if data is not None else _SEEN.complete(record, records, logs)
        if found is None:  # another process executed it meanwhile, or a first view of it here
            data = data or run.run_data(now)
            record, records, logs, now = data.record, list(data.tasks), list(data.logs), data.now
            captures = data.captures
        else:
            records, logs = found
            captures = captured_outputs(run._store.load_captures(run.id))
        _SEEN.keep(record, records, logs)
        nodes = attach(build_tree(records, record.latest_execution), captures)
        task_ids: list[str] = []
        self._final = (
            document_from(record, nodes, group_logs(logs), now=now, task_ids=task_ids),
            text_from(record, nodes, now=now, max_rows=NOTEBOOK_MAX_ROWS),
        )
        self.bar = PageBridge(
            run,
            task_ids,
            box=self.widget,
            reply=self._html,
            request=self._request,
            rerunner=self.rerun_from,
        )
        with self._lock:
            self._forget()
        if self._display_id is not None:
            update_display(self._page_bundle(), raw=True, display_id=self._display_id + "-page")

    def rerun_from(self, task_id: str) -> None:
        """ "Re-run from here" on the finished tree: execute the run again from ``task_id``;
        this view follows it live, then shows the finished run again. An error raised before
        anything ran (the job is not defined in this kernel) leaves the tree as it was."""
        assert self.bar is not None, "only a finished run offers the action"
        run = self.bar.run
        try:
            run.rerun(from_task=task_id, listeners=[self.listener])
        finally:
            if not self._finished:  # the execution started: show where it ended
                self.finish(run)

    def _widget_bundle(self) -> dict[str, Any]:
        """The widget's output: nothing for viewers without widgets (the page beside it is the
        saved view; the live state, the widget's own value, is news only while it runs)."""
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        return {WIDGET_VIEW_MIME: view, "text/html": "", "text/plain": ""}

    def _page_bundle(self) -> dict[str, Any]:
        """The page's output: empty until the run finished."""
        if self._final is None:
            return {"text/html": "", "text/plain": ""}
        return {"text/html": self._final[0], "text/plain": self._final[1]}

    def _text(self) -> str:
        with self._lock:
            self._drain()
            run = self._run
        if run is None:
            return f"{self.title}: starting…"
        return summary_text(summarize_run(run, now=self._clock.now()))

    def _ipython_display_(self) -> None:
        self._display_id = self._display_id or uuid.uuid4().hex
        display(self._widget_bundle(), raw=True, display_id=self._display_id)
        display(self._page_bundle(), raw=True, display_id=self._display_id + "-page")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """What the notebook keeps: the page once the run finished, else the live widget and
        its HTML and text as they are now."""
        if self._final is not None:
            return self._page_bundle()
        return {**self._widget_bundle(), "text/html": self._html.value, "text/plain": self._text()}


class _Redraws:
    """One daemon thread running every live view's delayed redraws, in time order.

    A ``threading.Timer`` per redraw started a thread each time, and the run's thread waited for
    it to start (~0.1 ms, several on a busy machine: every first run of a cell paid it once).
    """

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()  # equal times run in the order asked
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), action))
            # started again in a forked child, where the parent's thread does not exist
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="tnb-redraws", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _loop(self) -> None:
        while True:
            with self._changed:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                action = heapq.heappop(self._due)[2]
            try:
                action()
            except Exception:  # a broken view must not stop the others' redraws
                continue


_REDRAWS = _Redraws()


class _Seen:
    """Every task record and log of a run as its last view here finished with it.

    A first execution's events carry every task and log. A replay's do not: a replayed parent
    stands for its subtree (no event per child) and earlier executions' logs are not written
    again. Reading them back from the store costs a replay of 1,000 tasks more than the replay
    (parsing every record); with the previous view's records, this execution's events complete
    them. Used only when exactly one execution ran since (this one): a run another process
    executed meanwhile is read from the store.
    """

    def __init__(self) -> None:
        self._runs: collections.OrderedDict[
            str, tuple[int, dict[str, TaskRecord], list[LogRecord]]
        ] = collections.OrderedDict()
        self._lock = threading.Lock()

    def complete(
        self, record: RunRecord, records: list[TaskRecord], logs: list[LogRecord]
    ) -> tuple[list[TaskRecord], list[LogRecord]] | None:
        """Every task and log of the run ``record`` is, from this execution's events
        (``records``, ``logs``) and the last view's; None when they are not known here."""
        if record.executions == 1:
            return (records, logs) if len(records) == record.task_count else None
        with self._lock:
            prior = self._runs.get(record.id)
        if prior is None or prior[0] != record.executions - 1:
            return None
        merged = dict(prior[1])
        merged.update((r.id, r) for r in records)  # this execution's records are the news
        if len(merged) != record.task_count:
            return None
        return list(merged.values()), [*prior[2], *logs]

    def keep(self, record: RunRecord, records: list[TaskRecord], logs: list[LogRecord]) -> None:
        with self._lock:
            self._runs[record.id] = (record.executions, {r.id: r for r in records}, logs)
            self._runs.move_to_end(record.id)
            while len(self._runs) > SEEN_RUNS:
                self._runs.popitem(last=False)


_SEEN = _Seen()
