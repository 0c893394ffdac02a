"""``LiveRunView``: the task tree under a running ``%%trigger_job`` cell, then the run finished.

Widgets cost ~0.35 ms each to create, so the two phases differ on purpose:
- while the run executes, ``LiveRunView`` redraws one HTML widget (at most ~10 times a second);
- once it finished, ``RunView`` shows interactive rows, created lazily: a page of siblings at a
  time, children when a row is expanded, details when a task's name is clicked.
Every displayed view also carries the static ``text/html`` and ``text/plain`` renderings, so a
notebook saved and opened without a kernel still shows the tree.
"""

from __future__ import annotations

import collections
import html
import threading
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trigger_nb._core.clock import SYSTEM_CLOCK, Clock
from trigger_nb._core.model import LogRecord, RunRecord, RunStatus, TaskRecord
from trigger_nb._render.css import CSS, WIDGET_CSS
from trigger_nb._render.format import format_duration, run_active_seconds
from trigger_nb._render.html import header_html, tree_html
from trigger_nb._render.summary import RunSummary, summarize_run
from trigger_nb._render.task_html import line_html
from trigger_nb._render.text import summary_text
from trigger_nb._render.tree import WAITING, TaskNode, display_status
from trigger_nb._widgets.output import display, mimebundle, update_display
from trigger_nb._widgets.run_view import RunView, run_clock

if TYPE_CHECKING:
    from trigger_nb._client.run import JobRun

REDRAW_INTERVAL_SECONDS = 0.1
# A redraw may take at most this share of the run's time: big trees redraw less often.
REDRAW_TIME_SHARE = 0.03
# Rows redrawn live (each redraw is sent whole to the browser); the finished view pages through
# every task. Per level, the newest siblings are shown: they are the news.
LIVE_MAX_ROWS = 80
LIVE_SIBLINGS = 15
# The task events that add to a counter of the header, and which.
_COUNTED = {"task_completed": "executed", "task_replayed": "replayed", "task_failed": "failed"}


class LiveRunView:
    """A view that follows a run while it executes.

    Display the view (``display(view)``), pass ``view.listener`` to
    ``job.trigger(..., listeners=[view.listener])``, then call ``view.finish(run)``: the live HTML
    is replaced by the interactive tree and the saved output gets the final static rendering.
    Redraws are batched: at most one per ``REDRAW_INTERVAL_SECONDS``, plus a trailing redraw so
    the screen never lags the run by more than that. ``clock``: the run's client's (what its
    countdowns count from).
    """

    def __init__(self, *, title: str, clock: Clock = SYSTEM_CLOCK) -> None:
        import ipywidgets

        self.title = title
        self._clock = clock
        self.redraws = 0
        self.run_view: RunView | None = None
        self._lock = threading.Lock()
        self._draw_lock = threading.Lock()
        self._records: dict[str, TaskRecord] = {}
        self._nodes: dict[str, TaskNode] = {}  # the tree, grown as tasks appear
        self._roots: list[TaskNode] = []
        self._replayed: set[str] = set()
        # tasks replayed although their code or inputs changed: why (from their replay events)
        self._stale: dict[str, tuple[str, ...]] = {}
        self._logs: list[LogRecord] = []
        self._run: RunRecord | None = None
        self._counts = {"executed": 0, "replayed": 0, "failed": 0}
        self._last_draw = 0.0
        self._draw_seconds = 0.0
        self._lines: dict[str, tuple[tuple[Any, ...], str]] = {}
        self._timer: threading.Timer | None = None
        self._queue: collections.deque[tuple[str, Any]] = collections.deque()
        self._finished = False
        self._final: tuple[str, str] | None = None
        self._display_id: str | None = None
        # Drawn "starting…" as it is made (one message, not an empty widget then a redraw); the
        # first task events are drawn an interval later: a run shorter than that is shown by
        # finish() without any live redraw in between.
        self._html = ipywidgets.HTML(self._live_html(), _dom_classes=("tnb-live-html",))
        self._last_draw = time.monotonic()
        self.widget = ipywidgets.VBox([self._html], _dom_classes=("tnb", "tnb-live"))

    # -- events ----------------------------------------------------------------------------
    def listener(self, kind: str, payload: Any) -> None:
        """``listener(kind, payload)`` for ``job.trigger(listeners=...)``; safe from threads.

        Between redraws an event is only queued (the run pays a deque append for it); the tree
        grows from the queue when it is drawn, at most ~10 times a second.
        """
        if self._timer is not None and not self._finished:
            self._queue.append((kind, payload))  # a redraw is already scheduled: it will show this
            return
        with self._lock:
            if self._finished:
                if kind != "run_started":
                    return
                self._reopen()  # the run resumes (a due wait): live again until finish()
            self._queue.append((kind, payload))
            if self._timer is not None:
                return
            interval = max(REDRAW_INTERVAL_SECONDS, self._draw_seconds / REDRAW_TIME_SHARE)
            wait = interval - (time.monotonic() - self._last_draw)
            if wait > 0:  # too soon: draw the latest state at the end of the interval
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()
                return
            self._last_draw = time.monotonic()
        self._draw()

    def _reopen(self) -> None:
        self._finished, self._final, self.run_view = False, None, None
        self._records, self._replayed, self._logs, self._lines = {}, set(), [], {}
        self._stale = {}
        self._nodes, self._roots = {}, []
        self._queue.clear()
        self._last_draw = 0.0
        self.widget.children = (self._html,)

    def _drain(self) -> None:
        """Apply the queued events (under ``_lock``). ``popleft`` rather than swapping lists: a
        thread may be appending right now, and its event must not land in a list let go of."""
        queue = self._queue
        for _ in range(len(queue)):
            self._apply(*queue.popleft())

    def _apply(self, kind: str, payload: Any) -> None:
        counted = _COUNTED.get(kind)
        if counted is not None or kind.startswith("task_"):  # most events: one per task change
            if not isinstance(payload, TaskRecord):
                return
            self._records[payload.id] = payload
            self._grow(payload)
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
        elif kind == "log" and isinstance(payload, LogRecord):
            self._logs.append(payload)

    def _grow(self, record: TaskRecord) -> None:
        node = self._nodes.get(record.id)
        if node is not None:
            node.record = record  # a replay hands over the stored record object
            return
        node = self._nodes[record.id] = TaskNode(record, "")
        parent = self._nodes.get(record.parent_id or "")
        (parent.children if parent is not None else self._roots).append(node)

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
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
        return f"<style>{CSS}{WIDGET_CSS}</style>{head}{tree}"

    def _line(self, node: TaskNode, now: datetime) -> str:
        """A row's HTML, re-rendered only when what it shows changed."""
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
        cached = self._lines.get(r.id)
        if cached is None or cached[0] != key or node.status == WAITING:
            cached = self._lines[r.id] = (key, line_html(node, now=now))
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
        return summary

    # -- the end ---------------------------------------------------------------------------
    def finish(self, run: JobRun | None) -> None:
        """Show the finished run as the interactive tree (``None``: keep the last live state)."""
        with self._lock:
            self._finished = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if run is None:
            self._draw()
            return
        with self._lock:
            self._drain()
            records, logs = list(self._records.values()), list(self._logs)
        # A first execution's events carried every task and log: no need to read them back.
        complete = run.record.executions == 1 and len(records) == run.record.task_count
        view = self.run_view = RunView(run, seen=(records, logs) if complete else None)
        view.rerunner = self.rerun_from
        self.widget.children = (view.widget,)
        if self._display_id is not None:  # the saved output gets the final static rendering
            update_display(self._bundle(), raw=True, display_id=self._display_id)

    def rerun_from(self, task_id: str) -> None:
        """ "Re-run from here" on the finished tree: execute the run again from ``task_id``;
        this view follows it live, then shows the finished tree again. An error raised before
        anything ran (the job is not defined in this kernel) leaves the tree as it was."""
        assert self.run_view is not None, "only a finished tree offers the action"
        run = self.run_view.run
        try:
            run.rerun(from_task=task_id, listeners=[self.listener])
        finally:
            if not self._finished:  # the execution started: show where it ended
                self.finish(run)

    def _bundle(self) -> dict[str, Any]:
        if self.run_view is None:
            return mimebundle(self.widget, self._html.value, self._text())
        if self._final is None:  # rendered once, and only when an output needs it
            self._final = self.run_view.static()
        return mimebundle(self.widget, *self._final)

    def _text(self) -> str:
        with self._lock:
            self._drain()
            run = self._run
        if run is None:
            return f"{self.title}: starting…"
        return summary_text(summarize_run(run, now=self._clock.now()))

    def _ipython_display_(self) -> None:
        self._display_id = self._display_id or uuid.uuid4().hex
        display(self._bundle(), raw=True, display_id=self._display_id)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self._bundle()


def follow_reruns(view: RunView) -> None:
    """Let a tree shown on its own (a displayed ``JobRun``) follow its "Re-run from here": a
    live view takes its place for the execution, then shows the finished tree."""
    run = view.run

    def rerun_from(task_id: str) -> None:
        live = LiveRunView(title=f"{run.record.job_name} · {run.id}", clock=run_clock(run))
        live.run_view, live._finished = view, True  # as if it had shown this finished tree
        shown = view.widget.children
        view.widget.children = (live.widget,)
        try:
            live.rerun_from(task_id)
        finally:
            if live.run_view is view:  # nothing ran (the job is not defined here): as it was
                view.widget.children = shown

    view.rerunner = rerun_from
