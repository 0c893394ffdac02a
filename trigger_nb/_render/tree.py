"""What every view of a run shows, as plain data: the run summary and the task tree.

Pure Python (no ipywidgets, no IPython): the static HTML, the text outline, the live widget, the
explorer and the command line all build on these so they always agree on what "replayed" or
"waiting" means, how long a run took, and where an error is shown.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Container, Iterable
from datetime import datetime, timezone
from typing import Any

from trigger_nb._core.model import (
    AttemptRecord,
    ErrorInfo,
    ExecutionRecord,
    LogRecord,
    RunRecord,
    TaskRecord,
    TaskStatus,
    is_replayed,
)

# The task naming every view uses (``key_text``: the one cache key formatter) lives there.
from trigger_nb._render.keys import task_label

# Display statuses: a task's stored status, except that a completed task whose stored result the
# execution shown used ("model.is_replayed": its side effect did not run again) is "replayed".
RUNNING, COMPLETED, REPLAYED = "running", "completed", "replayed"
FAILED, WAITING, INTERRUPTED = "failed", "waiting", "interrupted"

# Plain glyphs present in DejaVu Sans: no emoji font is needed to read the tree.
GLYPHS = {
    RUNNING: "◌",
    COMPLETED: "✓",
    REPLAYED: "↻",
    FAILED: "✗",
    WAITING: "◷",
    INTERRUPTED: "⊘",
}
# FontAwesome 4 icons (shipped with ipywidgets) for widget buttons.
FA_ICONS = {
    RUNNING: "spinner",  # spun by CSS: the button view takes a single icon name
    COMPLETED: "check",
    REPLAYED: "history",
    FAILED: "times",
    WAITING: "clock-o",
    INTERRUPTED: "ban",
}
COLORS = {
    RUNNING: "#1f6feb",
    COMPLETED: "#1a7f37",
    REPLAYED: "#8250df",
    FAILED: "#cf222e",
    WAITING: "#bf8700",
    INTERRUPTED: "#6e7781",
    # run statuses
    "SUCCESS": "#1a7f37",
    "FAILURE": "#cf222e",
    "RUNNING": "#1f6feb",
    "WAITING": "#bf8700",
    "CANCELED": "#6e7781",
}


# read once: an enum member lookup costs ~0.4 µs
_COMPLETED, _FAILED = TaskStatus.COMPLETED, TaskStatus.FAILED


def replayed_ids(records: Iterable[TaskRecord], execution: ExecutionRecord | None) -> set[str]:
    """The tasks ``model.is_replayed`` marks in ``execution``: the rows every finished view shows
    as replayed, and exactly what ``execution.replayed`` counts.

    ``is_replayed`` looks ``untouched`` up in a list; here it is a set, once, and ``is_replayed``
    sees an execution without it: the same definition, without a list scan per task.
    """
    if execution is None:
        return set()
    skip = set(execution.untouched)
    bare = execution.model_copy(update={"untouched": []}) if skip else execution
    return {r.id for r in records if r.id not in skip and is_replayed(r, bare)}


def replayed_count(record: RunRecord) -> int:
    """A run's "N replayed" in every header, list and JSON: its latest execution's count, which
    is ``replayed_ids`` of it (not a sum over executions: one task replayed twice is one task)."""
    latest = record.latest_execution
    return latest.replayed if latest is not None else 0


def display_status(record: TaskRecord, replayed: Container[str]) -> str:
    """A task's stored status, lower case, or "replayed" when its id is in ``replayed``
    (``replayed_ids``; the live view passes the tasks it saw replayed so far)."""
    if record.status is _COMPLETED:
        return REPLAYED if record.id in replayed else COMPLETED
    return str(record.status.value).lower()


@dataclasses.dataclass(slots=True)
class TaskNode:
    """One row of the tree: the task's record, how to show its status, and its children."""

    record: TaskRecord
    status: str
    children: list[TaskNode] = dataclasses.field(default_factory=list)

    def count(self) -> int:
        """This task and all its descendants."""
        return 1 + sum(child.count() for child in self.children)


def build_tree(records: Iterable[TaskRecord], execution: ExecutionRecord | None) -> list[TaskNode]:
    """The task tree in the order tasks first ran; a parallel task's children in item order.

    ``execution``: the one shown (normally the run's latest): it decides which rows are replayed.
    """
    ordered = sorted(records, key=_seq)
    replayed = replayed_ids(ordered, execution)
    nodes = {r.id: TaskNode(r, display_status(r, replayed)) for r in ordered}
    roots: list[TaskNode] = []
    for node in nodes.values():
        parent = nodes.get(node.record.parent_id or "")
        (parent.children if parent is not None else roots).append(node)
    for node in nodes.values():
        if node.record.kind == "parallel":
            node.children.sort(key=lambda c: _item_index(c.record.cache_key))
    return roots


_seq = operator.attrgetter("seq")


def _item_index(key: Any) -> tuple[int, str]:
    return (key, "") if isinstance(key, int) else (1 << 62, str(key))


def group_logs(logs: Iterable[LogRecord]) -> dict[str | None, list[LogRecord]]:
    """Logs by task id (None: logs written at the top level of the run)."""
    grouped: dict[str | None, list[LogRecord]] = {}
    for log in logs:
        grouped.setdefault(log.task_id, []).append(log)
    return grouped


@dataclasses.dataclass
class RunSummary:
    """The header of a run view."""

    job_name: str
    job_version: str
    run_id: str
    short_id: str
    status: str
    executions: int
    started: str
    duration: str
    executed: int
    replayed: int
    failed: int
    time_saved: str
    task_count: int
    wait_until: datetime | None
    # "error in task X" when a task raised the run's error (its row shows the error, once);
    # else "error: Type: message", and the traceback to show folded.
    error: str | None
    traceback: str | None
    output_preview: str | None

    @property
    def counts_line(self) -> str:
        return (
            f"{self.executed} executed · {self.replayed} replayed · {self.failed} failed · "
            f"{self.time_saved} saved"
        )


def summarize_run(
    record: RunRecord, *, now: datetime | None = None, nodes: list[TaskNode] | None = None
) -> RunSummary:
    """The header of ``record``; with its tree (``nodes``) it names the task that failed it."""
    latest = record.latest_execution
    error, traceback = None, None
    if record.error is not None:
        origin = failure_origin(nodes or [], record.error)
        if origin is not None:
            error = f"error in task {task_label(origin.record)}"
        else:
            error, traceback = f"error: {record.error.summary()}", record.error.traceback or None
    return RunSummary(
        job_name=record.job_name,
        job_version=record.job_version,
        run_id=record.id,
        short_id=short_run_id(record.id),
        status=record.status.value,
        executions=record.executions,
        started=format_time(record.created_at),
        duration=run_duration_text(record, now),
        executed=latest.executed if latest else 0,
        replayed=replayed_count(record),
        failed=latest.failed if latest else 0,
        time_saved=format_duration(latest.time_saved_seconds if latest else 0.0),
        task_count=record.task_count,
        wait_until=record.wait_until,
        error=error,
        traceback=traceback,
        output_preview=record.output_preview,
    )


# --- durations ------------------------------------------------------------------------------


def run_active_seconds(record: RunRecord, now: datetime | None = None) -> float:
    """The run's active time: its finished executions', plus the running one's so far."""
    active = record.active_seconds
    latest = record.latest_execution
    if latest is not None and latest.finished_at is None:
        active += max(((now or _utcnow()) - latest.started_at).total_seconds(), 0.0)
    return active


def run_duration_text(record: RunRecord, now: datetime | None = None) -> str:
    """How long a run worked, e.g. "2.50 s", or "active 0.50 s over 3 executions, 2d 01h span"
    when it took several executions or its span is much longer than its active time: a run that
    waited two days did not work for two days."""
    active = run_active_seconds(record, now)
    running = record.latest_execution is not None and record.latest_execution.finished_at is None
    wall = ((now or _utcnow()) - record.created_at).total_seconds() if running else None
    wall = max(wall if wall is not None else record.wall_seconds, active)
    count = record.executions
    if count > 1 or wall - active > max(active, 1.0):
        plural = "" if count == 1 else "s"
        return (
            f"active {format_duration(active)} over {count} execution{plural}, "
            f"{format_duration(wall)} span"
        )
    return format_duration(active)


def attempt_seconds(attempt: AttemptRecord) -> float | None:
    """An attempt's own time (None while it runs): not the task's, which spans its retries."""
    if attempt.finished_at is None:
        return None
    return max((attempt.finished_at - attempt.started_at).total_seconds(), 0.0)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- errors: each shown once, where it was raised -------------------------------------------

_TASK_ERRORS = ("TaskError", "TaskTimedOutError")  # what run_task raises for a failed task


def failure_origin(nodes: list[TaskNode], error: ErrorInfo | None) -> TaskNode | None:
    """The task whose own code raised ``error`` (a run's error, or a parent task's that a
    subtask passed up): down the failed tasks carrying it. None when no task did (the run
    function raised it itself, or a task caught the failure and raised another error)."""
    if error is None:
        return None
    for node in nodes:
        own = node.record.error
        # The stored status, not node.status: the live view sets that as it draws, parents first.
        if node.record.status is _FAILED and own is not None and _carries(error, own):
            return failure_origin(node.children, own) or node
    return None


def passed_up_from(node: TaskNode) -> TaskNode | None:
    """The subtask whose failure failed ``node`` (its error is that one's); None if its own."""
    if node.record.status is not _FAILED:
        return None
    return failure_origin(node.children, node.record.error)


def _carries(outer: ErrorInfo, inner: ErrorInfo) -> bool:
    """``outer`` is ``inner`` passed up: the same error, or the TaskError made of it."""
    if (outer.type, outer.message) == (inner.type, inner.message):
        return True
    kind = outer.type.rsplit(".", 1)[-1]
    return kind in _TASK_ERRORS and outer.message.endswith(": " + inner.summary())


def attempt_error_text(attempt: AttemptRecord, node: TaskNode) -> str:
    """An attempt's error in the attempts table: only its type when it is the task's final
    error (the row shows that one in full), else its summary."""
    error, final = attempt.error, node.record.error
    if error is None:
        return ""
    if final is not None and (error.type, error.message) == (final.type, final.message):
        origin = passed_up_from(node)
        if origin is not None:
            return f"in subtask {task_label(origin.record)}"
        return error.type.rsplit(".", 1)[-1]
    return error.summary()


def row_error_text(node: TaskNode) -> str | None:
    """What a failed task's row says: its error, or which subtask failed it."""
    if node.record.status is not _FAILED or node.record.error is None:
        return None
    origin = passed_up_from(node)
    if origin is not None:
        return f"failed in subtask {task_label(origin.record)}"
    return node.record.error.summary()


def short_run_id(run_id: str) -> str:
    return run_id[:12] if run_id.startswith("run_") else run_id[:8]


def format_time(moment: datetime | None) -> str:
    """Local wall-clock time of the kernel, to the second."""
    if moment is None:
        return "—"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None, missing: str = "—") -> str:
    """12 ms, 2.50 s, 3m 05s, 2h 04m, 3d 04h: every view and the CLI write durations so."""
    if seconds is None:
        return missing
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def format_countdown(wait_until: datetime | None, now: datetime | None = None) -> str:
    """'resumes in 2h 59m 58s', or 'due: resume it' once the time has passed."""
    if wait_until is None:
        return "waiting"
    left = (wait_until - (now or datetime.now(timezone.utc))).total_seconds()
    if left <= 0:
        return "due: re-run the cell or call run.resume()"
    whole = int(left + 0.999)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
    return f"resumes in {text}"
