"""A store's task-level keys: task entries, big outputs, logs, refresh marks and superseded
outputs.

Part of ``Store`` (see ``trigger_nb._store.store`` for the layout of every key). Completing a
task is one write of its entry (and, for a big output, of the output blob in the same
transaction), so a crash leaves either the COMPLETED entry with its output or neither.

Re-running part of a run (SPEC 3.7) never rewrites a completed entry to say so: a *refresh
mark* (``f:R:T``) is a key of its own, written in one transaction for all the tasks marked, and
read with the run's entries. The execution that runs the task again writes, in one transaction
with the task's first new entry, the earlier output into the task's history (``h:R:T:N``, N the
attempt that produced it) and deletes the mark. A crash before that leaves the completed entry
and the mark (the task still runs again); after it, the earlier output is in the history and the
entry is the new attempt's. Nothing is lost either way, and a replay reads exactly what it read
before: marks are only looked up for tasks of a run that has some.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import NamedTuple

from trigger_nb._core.model import LogRecord, TaskRecord
from trigger_nb._store.backend import Backend, Value
from trigger_nb._store.run_records import record_json
from trigger_nb._store.sealed import (
    INLINE,
    INLINE_OUTPUT_BYTES,
    NO_OUTPUT,
    SEPARATE,
    Entry,
    Label,
    pack_entry,
    refresh_hint,
    seal,
    unpack_entry,
    unreadable,
    unseal,
)
from trigger_nb._store.snapshot import RunSnapshot, load_value
from trigger_nb.errors import CacheReadError


class Superseded(NamedTuple):
    """An earlier completion of a task that runs again: its entry (holding its output, or
    saying the output has a blob of its own) and the number of the attempt that produced it."""

    attempt: int
    entry: Entry


class TaskEntries:
    """Tasks and logs: one entry per task (its record, and its output when small)."""

    backend: Backend

    def load_snapshot(self, run_id: str) -> RunSnapshot:
        snapshot = RunSnapshot(run_id)
        snapshot.entries = self.backend.scan(f"t:{run_id}:")
        snapshot.marks = set(self.backend.scan(f"f:{run_id}:"))
        for value in self.backend.scan(f"l:{run_id}:").values():
            with contextlib.suppress(ValueError, CacheReadError):
                snapshot.logs.append(
                    LogRecord.model_validate_json(load_value(value, "a log record"))
                )
        snapshot.logs.sort(key=lambda log: (log.execution, log.seq))
        return snapshot

    def write_task(
        self,
        task: TaskRecord,
        output: bytes | None = None,
        *,
        drop_output: bool = False,
        superseded: Superseded | None = None,
        unmark: bool = False,
    ) -> None:
        """Write a task's entry: with its output exactly when it is COMPLETED.

        ``drop_output``: the task may have a big output blob from an earlier completion (it is
        being refreshed or ran before): delete it in the same transaction. ``superseded``: the
        task ran to completion before and runs again: keep that output in its history, in the
        same transaction. ``unmark``: delete its refresh mark, in the same transaction.
        """
        # Without the fields left at their defaults (None, [], "task", ...): a fifth smaller, and
        # every byte is written once and read by every replay. Parsing fills them back in, so a
        # model default must never change meaning without a new FORMAT_VERSION.
        entry_json = record_json(task, exclude_defaults=True)
        entry_key = f"t:{task.run_id}:{task.id}"
        output_key = f"o:{task.run_id}:{task.id}"
        puts: list[tuple[str, Value]] = []
        deletes: list[str] = []
        if superseded is not None:
            kept = self._kept_output(task, superseded)
            if kept is not None:
                puts.append(kept)
            # the earlier output had a value of its own exactly when its entry says so
            drop_output = superseded.entry.placement == SEPARATE
        if unmark:
            deletes.append(f"f:{task.run_id}:{task.id}")
        if output is None:
            entry = pack_entry(entry_json, NO_OUTPUT, 0.0)
        elif len(output) <= INLINE_OUTPUT_BYTES:
            entry = pack_entry(entry_json, INLINE, task.duration_seconds or 0.0, output)
        else:
            duration = task.duration_seconds or 0.0
            puts.append((output_key, seal(output, duration)))  # replaces any earlier output
            entry = pack_entry(entry_json, SEPARATE, duration)
            drop_output = False
        if drop_output:
            deletes.append(output_key)
        puts.append((entry_key, entry))
        self.backend.write(puts, deletes)

    def _kept_output(self, task: TaskRecord, superseded: Superseded) -> tuple[str, Value] | None:
        """The history key and sealed blob of a superseded output (None: it had none left)."""
        key = f"h:{task.run_id}:{task.id}:{superseded.attempt}"
        entry = superseded.entry
        if entry.placement == INLINE and entry.output is not None:
            return key, seal(entry.output, entry.duration)
        if entry.placement == SEPARATE:
            blob = self.backend.get(f"o:{task.run_id}:{task.id}")  # sealed already: kept as is
            return None if blob is None else (key, blob)
        return None

    def mark_refresh(self, run_id: str, task_ids: Iterable[str], at: str) -> None:
        """Mark tasks to run again on the run's next execution, all in one transaction
        (``at``: when, as ISO text, shown to whoever looks at the mark)."""
        puts: list[tuple[str, Value]] = [(f"f:{run_id}:{task_id}", at) for task_id in task_ids]
        if puts:
            self.backend.write(puts)

    def refresh_marks(self, run_id: str) -> set[str]:
        """The tasks of ``run_id`` marked to run again on its next execution."""
        return set(self.backend.scan(f"f:{run_id}:"))

    def read_superseded_output(self, run_id: str, task_id: str, attempt: int) -> memoryview:
        """The pickled output attempt ``attempt`` of a task produced before a later run of the
        task superseded it, checked; CacheReadError if it is missing or damaged."""
        what = f"the superseded output of attempt {attempt} of task {task_id} (run {run_id})"
        try:
            blob = self.backend.get(f"h:{run_id}:{task_id}:{attempt}")
        except OSError as error:
            raise unreadable(what, f"its file cannot be read ({error})") from error
        if blob is None:
            raise unreadable(what, "it is not in the store (cleared, or never kept)")
        return unseal(blob, what)[0]

    def entry_output(
        self, run_id: str, task_id: str, entry: Entry, what: Label
    ) -> bytes | memoryview:
        """The pickled output of a COMPLETED task's entry, checked; CacheReadError naming
        ``what`` if it is missing or damaged."""
        if entry.output is not None:
            return entry.output
        if entry.placement != SEPARATE:
            raise unreadable(what, "it has no stored output", task_id=task_id)
        try:
            blob = self.backend.get(f"o:{run_id}:{task_id}")
        except OSError as error:
            reason = f"the stored output file cannot be read ({error})"
            raise unreadable(what, reason, task_id=task_id) from error
        if blob is None:
            raise unreadable(what, "its stored output is missing", task_id=task_id)
        return unseal(blob, what)[0]

    def read_output(self, run_id: str, task_id: str) -> bytes | memoryview:
        """A completed task's pickled output, checked against its checksum."""
        what = f"task {task_id} of run {run_id}"
        try:
            blob = self.backend.get(f"t:{run_id}:{task_id}")
            if blob is None:
                raise unreadable(what, "no stored output", task_id=task_id)
            return self.entry_output(run_id, task_id, unpack_entry(blob, what), what)
        except CacheReadError as error:  # views and the CLI land here: say how to get past it
            raise CacheReadError(
                f"{error}; {refresh_hint(run_id)}", task_id=task_id, reason=error.reason
            ) from error

    def append_log(self, log: LogRecord) -> None:
        key = f"l:{log.run_id}:{log.execution}:{log.seq}"
        self.backend.write([(key, record_json(log))])
