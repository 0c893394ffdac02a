"""Comparing two runs task by task (SPEC 3.7): ``client.compare(a, b)``, ``trigger-nb diff``.

Tasks are matched by their *key path*: the typed cache keys from the top of the run down to
the task (``["p", "c2"]``), since task ids differ between runs. A task is

- *added* / *removed*: its key path is only in run B / only in run A;
- *changed* when its status, its output, its code fingerprint or its duration differ;
- unchanged otherwise (counted, not listed).

Decisions where the spec is silent:
- Outputs are compared by their stored bytes; bytes that differ are unpickled and compared with
  ``==`` (a set of strings pickles in another order in another process), and count as changed
  when that cannot tell (a DataFrame's ``==`` is no bool). Only outputs of tasks completed in
  both runs are compared; a status change says the rest.
- Fingerprints count as changed only when both runs recorded one and they differ in a way
  ``explain`` can name (another Python minor version compares as unknown, never changed); the
  reasons are listed ("closure value 'threshold' changed").
- Durations jitter: one counts as changed when it moved by at least ``min_duration_change``
  seconds (default 0.05) *and* by a factor of at least ``duration_ratio`` (default 1.25).
  A replayed task keeps the duration it had when it ran.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from trigger_nb._core.codec import Stored, Unpickled, loads
from trigger_nb._core.model import TaskRecord
from trigger_nb._engine.fingerprint import explain
from trigger_nb._render.diff import DiffRow, diff_html, diff_text
from trigger_nb._render.format import format_duration
from trigger_nb._render.keys import task_key_text, task_label
from trigger_nb._store.store import Store
from trigger_nb.errors import CacheReadError

MIN_DURATION_CHANGE = 0.05
DURATION_RATIO = 1.25
_PREVIEW = 60


@dataclasses.dataclass(frozen=True)
class TaskChange:
    """One task that differs between the runs: ``kind`` is "added", "removed" or "changed";
    ``fields`` the changed fields ("status", "output", "fingerprint", "duration"); ``details``
    one sentence per field; ``a`` and ``b`` its records in each run (None where absent)."""

    path: tuple[str, ...]
    kind: str
    fields: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    a: TaskRecord | None = None
    b: TaskRecord | None = None

    @property
    def label(self) -> str:
        """The task as the views name it, under its parents: ``parallel › [item, 2]``."""
        return " › ".join(self.path)

    def to_json(self) -> dict[str, Any]:
        record = self.b or self.a
        assert record is not None
        return {
            "task": self.label,
            "key": task_key_text(record),
            "change": self.kind,
            "fields": list(self.fields),
            "details": list(self.details),
            "task_id_a": self.a.id if self.a else None,
            "task_id_b": self.b.id if self.b else None,
        }


@dataclasses.dataclass(frozen=True)
class RunComparison:
    """What differs between two runs' tasks. Prints as a table (``str()``), displays as one
    in a notebook (``_repr_html_``), and ``to_json()`` gives it as plain data."""

    run_a: str
    run_b: str
    added: list[TaskChange]
    removed: list[TaskChange]
    changed: list[TaskChange]
    unchanged: int

    @property
    def changes(self) -> list[TaskChange]:
        """Every differing task: added, removed, then changed."""
        return [*self.added, *self.removed, *self.changed]

    @property
    def same(self) -> bool:
        """No task was added, removed or changed."""
        return not self.changes

    def __repr__(self) -> str:
        return (
            f"<RunComparison {self.run_a} -> {self.run_b}: {len(self.added)} added, "
            f"{len(self.removed)} removed, {len(self.changed)} changed, "
            f"{self.unchanged} unchanged>"
        )

    def _rows(self) -> list[DiffRow]:
        return [DiffRow(c.kind, c.label, c.details) for c in self.changes]

    def __str__(self) -> str:
        return diff_text(self.run_a, self.run_b, self._rows(), self.unchanged)

    def _repr_html_(self) -> str:
        return diff_html(self.run_a, self.run_b, self._rows(), self.unchanged)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "unchanged": self.unchanged,
            "tasks": [change.to_json() for change in self.changes],
        }


def compare_runs(
    store_a: Store,
    run_a: str,
    records_a: list[TaskRecord],
    store_b: Store,
    run_b: str,
    records_b: list[TaskRecord],
    *,
    min_duration_change: float = MIN_DURATION_CHANGE,
    duration_ratio: float = DURATION_RATIO,
) -> RunComparison:
    """Compare run A's tasks with run B's (each read from its store)."""
    paths_a, paths_b = _paths(records_a), _paths(records_b)
    added = [
        TaskChange(labels, "added", b=record)
        for key, (labels, record) in paths_b.items()
        if key not in paths_a
    ]
    removed = [
        TaskChange(labels, "removed", a=record)
        for key, (labels, record) in paths_a.items()
        if key not in paths_b
    ]
    changed = []
    unchanged = 0
    for key, (labels, a) in paths_a.items():
        if key not in paths_b:
            continue
        b = paths_b[key][1]
        differences = [
            *_status(a, b),
            *_output(store_a, a, store_b, b),
            *_fingerprint(a, b),
            *_duration(a, b, min_duration_change, duration_ratio),
        ]
        if differences:
            fields = tuple(field for field, _ in differences)
            details = tuple(detail for _, detail in differences)
            changed.append(TaskChange(labels, "changed", fields, details, a, b))
        else:
            unchanged += 1
    return RunComparison(run_a, run_b, added, removed, changed, unchanged)


def _paths(
    records: list[TaskRecord],
) -> dict[tuple[str, ...], tuple[tuple[str, ...], TaskRecord]]:
    """Each task by its key path (typed keys), with its path as the views name it; run order."""
    by_id = {r.id: r for r in records}
    found: dict[tuple[str, ...], tuple[tuple[str, ...], TaskRecord]] = {}
    for record in sorted(records, key=lambda r: r.seq):
        keys, labels = [], []
        node: TaskRecord | None = record
        seen: set[str] = set()
        while node is not None and node.id not in seen:  # a damaged store must not loop
            seen.add(node.id)
            keys.append(node.key)
            labels.append(task_label(node))
            node = by_id.get(node.parent_id or "")
        found[tuple(reversed(keys))] = (tuple(reversed(labels)), record)
    return found


def _status(a: TaskRecord, b: TaskRecord) -> list[tuple[str, str]]:
    if a.status is b.status:
        return []
    return [("status", f"status: {a.status.value} → {b.status.value}")]


def _output(store_a: Store, a: TaskRecord, store_b: Store, b: TaskRecord) -> list[tuple[str, str]]:
    if not (a.is_completed and b.is_completed):
        return []
    try:
        data_a = store_a.read_output(a.run_id, a.id)
        data_b = store_b.read_output(b.run_id, b.id)
    except CacheReadError as error:
        return [("output", f"output: cannot be compared ({error.reason})")]
    if _same_bytes(data_a, data_b) or _equal_values(data_a, data_b):
        return []
    return [("output", f"output: {_preview(a)} → {_preview(b)}")]


def _same_bytes(data_a: Stored, data_b: Stored) -> bool:
    """Stored the same: the same pickle (and, for big outputs, the same buffers)."""
    if isinstance(data_a, Unpickled) and isinstance(data_b, Unpickled):
        return (
            data_a.stream == data_b.stream
            and len(data_a.buffers) == len(data_b.buffers)
            and all(map(_same_buffer, data_a.buffers, data_b.buffers))
        )
    if isinstance(data_a, Unpickled) or isinstance(data_b, Unpickled):
        return False
    return bytes(data_a) == bytes(data_b)


def _same_buffer(a: Any, b: Any) -> bool:
    return memoryview(a).cast("B") == memoryview(b).cast("B")


def _equal_values(data_a: Stored, data_b: Stored) -> bool:
    try:
        return bool(loads(data_a) == loads(data_b))
    except Exception:  # cannot be loaded here, or == gives no bool: the bytes decide
        return False


def _preview(record: TaskRecord) -> str:
    text = " ".join((record.output_preview or record.output_type or "?").split())
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _fingerprint(a: TaskRecord, b: TaskRecord) -> list[tuple[str, str]]:
    parts_a, parts_b = a.fingerprint_parts, b.fingerprint_parts
    if a.fingerprint == b.fingerprint or parts_a is None or parts_b is None:
        return []
    reasons = explain(parts_a, parts_b)
    if not reasons:
        return []
    return [("fingerprint", "code: " + "; ".join(reasons))]


def _duration(a: TaskRecord, b: TaskRecord, least: float, ratio: float) -> list[tuple[str, str]]:
    da, db = a.duration_seconds, b.duration_seconds
    if da is None or db is None or abs(db - da) < least:
        return []
    low, high = sorted((da, db))
    if low > 0 and high / low < ratio:
        return []
    return [("duration", f"duration: {format_duration(da)} → {format_duration(db)}")]
