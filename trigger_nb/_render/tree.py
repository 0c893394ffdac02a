"""What every view of a run shows, as plain data: the task tree and where an error is shown.

Pure Python (no ipywidgets, no IPython): the static HTML, the text outline, the live widget, the
explorer and the command line all build on these so they always agree on what "replayed" or
"waiting" means and which row shows an error. The run's header is ``summary``; times and
durations are written by ``format``.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Container, Iterable, Sequence
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
    stale_reasons,
)

# The task naming every view uses (``key_text``: the one cache key formatter) lives there.
from trigger_nb._render.keys import task_label

# Display statuses: a task's stored status, except that a completed task whose stored result the
# execution shown used ("model.is_replayed": its side effect did not run again) is "replayed".
RUNNING, COMPLETED, REPLAYED = "running", "completed", "replayed"
FAILED, WAITING, INTERRUPTED = "failed", "waiting", "interrupted"
# A mark beside the status, not a status: a task the execution shown replayed although its code
# or inputs changed since it ran ("model.stale_reasons"). Its status stays "replayed".
STALE = "stale"

# Plain glyphs present in DejaVu Sans: no emoji font is needed to read the tree.
GLYPHS = {
    RUNNING: "◌",
    COMPLETED: "✓",
    REPLAYED: "↻",
    FAILED: "✗",
    WAITING: "◷",
    INTERRUPTED: "⊘",
    STALE: "⚠",
}
# FontAwesome 4 icons (shipped with ipywidgets) for widget buttons.
FA_ICONS = {
    RUNNING: "spinner",  # spun by CSS: the button view takes a single icon name
    COMPLETED: "check",
    REPLAYED: "history",
    FAILED: "times",
    WAITING: "clock-o",
    INTERRUPTED: "ban",
    STALE: "exclamation-triangle",
}
COLORS = {
    RUNNING: "#1f6feb",
    COMPLETED: "#1a7f37",
    REPLAYED: "#8250df",
    FAILED: "#cf222e",
    WAITING: "#bf8700",
    INTERRUPTED: "#6e7781",
    STALE: "#b45309",  # warm amber: apart from waiting's yellow, replayed's purple, failed's red
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
    if execution is None or execution.number <= 1:  # a first execution replays nothing
        return set()
    skip = set(execution.untouched)
    bare = execution.model_copy(update={"untouched": []}) if skip else execution
    return {r.id for r in records if r.id not in skip and is_replayed(r, bare)}


def replayed_count(record: RunRecord) -> int:
    """A run's "N replayed" in every header, list and JSON: its latest execution's count, which
    is ``replayed_ids`` of it (not a sum over executions: one task replayed twice is one task)."""
    latest = record.latest_execution
    return latest.replayed if latest is not None else 0


def stale_count(record: RunRecord) -> int:
    """A run's "N stale" in every header: the tasks its latest execution replayed although their
    code or inputs changed (``ExecutionRecord.stale``)."""
    latest = record.latest_execution
    return len(latest.stale) if latest is not None else 0


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
    # Why the task is stale in the execution shown (``model.stale_reasons``); empty: it is not.
    stale: tuple[str, ...] = ()
    # What its attempts printed and displayed, ``(attempt number, events)``, when the caller
    # read it (``captured.attach``): the Output section of its details. An empty tuple, not a
    # list per node: a finished view builds 1,000 nodes at once, and every container made
    # there is more for the garbage collector to walk.
    captured: Sequence[tuple[int, list[tuple[str, Any]]]] = ()

    def count(self) -> int:
        """This task and all its descendants (iteratively: no call per node)."""
        total, stack = 0, [self]
        while stack:
            node = stack.pop()
            total += 1
            stack.extend(node.children)
        return total


def build_tree(records: Iterable[TaskRecord], execution: ExecutionRecord | None) -> list[TaskNode]:
    """The task tree in the order tasks first ran; a parallel task's children in item order.

    ``execution``: the one shown (normally the run's latest): it decides which rows are replayed
    and which are stale.
    """
    ordered = sorted(records, key=_seq)
    replayed = replayed_ids(ordered, execution)
    nodes = {r.id: TaskNode(r, display_status(r, replayed)) for r in ordered}
    if execution is not None and execution.stale:  # usually empty: no look-up per task
        for task_id in execution.stale:
            node = nodes.get(task_id)
            if node is not None:
                node.stale = tuple(stale_reasons(node.record, execution))
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


def nodes_by_id(nodes: list[TaskNode]) -> dict[str, TaskNode]:
    """Every node of the tree, by task id."""
    found: dict[str, TaskNode] = {}
    stack = list(nodes)
    while stack:
        node = stack.pop()
        found[node.record.id] = node
        stack.extend(node.children)
    return found


def group_logs(logs: Iterable[LogRecord]) -> dict[str | None, list[LogRecord]]:
    """Logs by task id (None: logs written at the top level of the run)."""
    grouped: dict[str | None, list[LogRecord]] = {}
    for log in logs:
        grouped.setdefault(log.task_id, []).append(log)
    return grouped


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
