"""What every view of a run shows, as plain data: the run summary and the task tree.

Pure Python (no ipywidgets, no IPython): the static HTML, the text outline, the live widget and
the explorer all build on these so they always agree on what "replayed" or "waiting" means.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from trigger_nb.model import LogRecord, RunRecord, TaskRecord, TaskStatus

# Display statuses: a task's stored status, except that a task completed by an earlier execution
# than the one shown is "replayed" (its side effect did not run again).
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


_COMPLETED = TaskStatus.COMPLETED  # read once: an enum member lookup costs ~0.4 µs


def display_status(
    record: TaskRecord, current_execution: int, replayed_ids: Iterable[str] = ()
) -> str:
    if record.status is _COMPLETED:
        earlier = (
            record.completed_execution is not None
            and record.completed_execution < current_execution
        )
        return REPLAYED if earlier or record.id in replayed_ids else COMPLETED
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


def build_tree(
    records: Iterable[TaskRecord], current_execution: int, replayed_ids: Iterable[str] = ()
) -> list[TaskNode]:
    """The task tree in the order tasks first ran; a parallel task's children in item order."""
    replayed = set(replayed_ids)
    ordered = sorted(records, key=_seq)
    nodes = {r.id: TaskNode(r, display_status(r, current_execution, replayed)) for r in ordered}
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
    error: str | None
    output_preview: str | None

    @property
    def counts_line(self) -> str:
        return (
            f"{self.executed} executed · {self.replayed} replayed · {self.failed} failed · "
            f"{self.time_saved} saved"
        )


def summarize_run(record: RunRecord, *, now: datetime | None = None) -> RunSummary:
    latest = record.execution_history[-1] if record.execution_history else None
    if record.completed_at is not None:
        took: float | None = (record.completed_at - record.created_at).total_seconds()
    elif latest is not None and latest.finished_at is not None:
        took = (latest.finished_at - record.created_at).total_seconds()
    else:
        took = ((now or datetime.now(timezone.utc)) - record.created_at).total_seconds()
    return RunSummary(
        job_name=record.job_name,
        job_version=record.job_version,
        run_id=record.id,
        short_id=short_run_id(record.id),
        status=record.status.value,
        executions=record.executions,
        started=format_time(record.created_at),
        duration=format_duration(took),
        executed=latest.executed if latest else 0,
        replayed=latest.replayed if latest else 0,
        failed=latest.failed if latest else 0,
        time_saved=format_duration(latest.time_saved_seconds if latest else 0.0),
        task_count=record.task_count,
        wait_until=record.wait_until,
        error=record.error.summary() if record.error else None,
        output_preview=record.output_preview,
    )


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


def cache_key_text(record: TaskRecord) -> str:
    key = record.cache_key
    if isinstance(key, (list, tuple)):
        return "[" + ", ".join(repr(part) for part in key) + "]"
    return str(key)
