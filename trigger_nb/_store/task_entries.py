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
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import IO, NamedTuple

from trigger_nb._core.codec import Stored
from trigger_nb._core.model import LogRecord, TaskRecord
from trigger_nb._store.backend import Backend, Lazy, Value
from trigger_nb._store.framed import Pickled, read_stored, save_stored, verify_stored
from trigger_nb._store.run_records import record_json
from trigger_nb._store.sealed import (
    INLINE,
    INLINE_OUTPUT_BYTES,
    NO_OUTPUT,
    SEPARATE,
    Entry,
    Label,
    lean_reader,
    pack_entry,
    refresh_hint,
    seal,
    unpack_entry,
    unreadable,
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

    def load_snapshot(
        self, run_id: str, *, lean: bool = False, digests: bool = True
    ) -> RunSnapshot:
        """Every entry, capture, refresh mark and log of a run, in one read of each.

        ``lean``: keep of each COMPLETED entry only what its replay needs (see
        ``trigger_nb._store.snapshot``), for an execution nobody watches: replaying a run of
        100,000 tasks then holds ~300 bytes per task instead of its ~700-byte entry.
        ``digests=False``: the execution compares no fingerprints (``on_code_change="ignore"``):
        their keys are left in the records, read for a task whose own option compares."""
        snapshot = RunSnapshot(run_id)
        prefix = f"t:{run_id}:"
        snapshot.captures = self.load_captures(run_id)
        if lean:
            backend = self.backend
            snapshot.entries = backend.scan_as(prefix, lean_reader(digests))
            snapshot.reread = lambda task_id: backend.get(prefix + task_id)
            snapshot.reread_many = lambda task_ids: backend.scan_as(prefix, _whole, task_ids)
            # Tasks that printed: showing their output again reads their record.
            snapshot.prefetch({key.partition(":")[0] for key in snapshot.captures})
        else:
            snapshot.entries = self.backend.scan(prefix)  # type: ignore[assignment]
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
        output: bytes | Pickled | None = None,
        *,
        drop_output: bool = False,
        capture: tuple[int, bytes] | None = None,
        superseded: Superseded | None = None,
        unmark: bool = False,
    ) -> None:
        """Write a task's entry: with its output exactly when it is COMPLETED.

        ``drop_output``: the task may have a big output blob from an earlier completion (it is
        being refreshed or ran before): delete it in the same transaction. ``capture``: what
        attempt N printed and displayed, ``(N, packed events)``, written in the same
        transaction (a replay that finds the COMPLETED entry finds its output capture).
        ``superseded``: the task ran to completion before and runs again: keep that output in
        its history, in the same transaction. ``unmark``: delete its refresh mark, in the same
        transaction. An output with big buffers (``Pickled``) is streamed to its file first,
        then the entry is written: a crash in between leaves the entry as it was.
        """
        # Without the fields never set (left at their defaults: None, [], "task", ...): a fifth
        # smaller, and every byte is written once and read by every replay. Parsing fills them
        # back in, so a model default must never change meaning without a new FORMAT_VERSION.
        # (Fields *set*, to any value, are kept: telling set from unset is a set lookup, and
        # comparing every field with its default cost ~3 µs of every task.)
        entry_json = record_json(task, compact=True)
        entry_key = f"t:{task.run_id}:{task.id}"
        output_key = f"o:{task.run_id}:{task.id}"
        puts: list[tuple[str, Value]] = []
        if capture is not None:
            puts.append((capture_key(task.run_id, task.id, capture[0]), capture[1]))
        deletes: list[str] = []
        if superseded is not None:
            kept = self._kept_output(task, superseded)
            if kept is not None:
                puts.append(kept)
            # the earlier output had a value of its own exactly when its entry says so
            drop_output = superseded.entry.placement == SEPARATE
        if unmark:
            deletes.append(f"f:{task.run_id}:{task.id}")
        if isinstance(output, Pickled):  # big buffers: streamed to a file of its own first
            save_stored(self.backend, output_key, output)
            entry = pack_entry(entry_json, SEPARATE, task.duration_seconds or 0.0)
            drop_output = False
        elif output is None:
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
            source = self.backend.file_of(f"o:{task.run_id}:{task.id}")
            if isinstance(source, Path):  # a file (a big output): streamed to one of its own
                if not source.is_file():
                    return None  # its file is gone (damage): nothing left to keep
                path = source

                def copy(file: IO[bytes]) -> None:
                    with open(path, "rb") as original:
                        shutil.copyfileobj(original, file, 4 * 1024 * 1024)

                self.backend.put_file(key, copy)
                return None
            return None if source is None else (key, source)  # sealed or framed: kept as is
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

    def read_superseded_output(self, run_id: str, task_id: str, attempt: int) -> Stored:
        """The stored output attempt ``attempt`` of a task produced before a later run of the
        task superseded it, checked; CacheReadError if it is missing or damaged."""
        what = f"the superseded output of attempt {attempt} of task {task_id} (run {run_id})"
        found = read_stored(self.backend, f"h:{run_id}:{task_id}:{attempt}", what)
        if found is None:
            raise unreadable(what, "it is not in the store (cleared, or never kept)")
        return found

    def entry_output(
        self, run_id: str, task_id: str, entry: Entry, what: Label, *, mapped: bool = False
    ) -> Stored:
        """The stored output of a COMPLETED task's entry, checked; CacheReadError naming
        ``what`` if it is missing or damaged. An output with big buffers comes as
        ``Unpickled``, its buffers read (or, ``mapped``, mapped read-only: see framed.py)."""
        if entry.output is not None:
            return entry.output
        if entry.placement != SEPARATE:
            raise unreadable(what, "it has no stored output", task_id=task_id)
        try:
            found = read_stored(self.backend, f"o:{run_id}:{task_id}", what, mapped=mapped)
        except CacheReadError as error:
            raise unreadable(what, error.reason, task_id=task_id) from error
        if found is None:
            raise unreadable(what, "its stored output is missing", task_id=task_id)
        return found

    def read_output(self, run_id: str, task_id: str, *, mapped: bool = False) -> Stored:
        """A completed task's stored output, checked against its checksums."""
        what = f"task {task_id} of run {run_id}"
        try:
            blob = self.backend.get(f"t:{run_id}:{task_id}")
            if blob is None:
                raise unreadable(what, "no stored output", task_id=task_id)
            entry = unpack_entry(blob, what)
            return self.entry_output(run_id, task_id, entry, what, mapped=mapped)
        except CacheReadError as error:  # views and the CLI land here: say how to get past it
            raise CacheReadError(
                f"{error}; {refresh_hint(run_id)}", task_id=task_id, reason=error.reason
            ) from error

    def verify_output(self, run_id: str, task_id: str) -> None:
        """Check every byte of a task's stored output against its checksums (what a mapped
        read leaves for later); CacheReadError if it is damaged."""
        what = f"task {task_id} of run {run_id}"
        blob = self.backend.get(f"t:{run_id}:{task_id}")
        entry = unpack_entry(blob, what)
        if entry.placement == SEPARATE:
            verify_stored(self.backend, f"o:{run_id}:{task_id}", what)

    def load_captures(self, run_id: str) -> dict[str, Value | Lazy]:
        """Every output capture of the run, "task id:attempt" -> packed events (one range
        read; runs whose tasks print nothing have none)."""
        return self.backend.scan(f"c:{run_id}:")

    def read_capture(self, run_id: str, task_id: str, attempt: int) -> bytes | None:
        """The packed output capture of a task's attempt (None if it printed nothing)."""
        value = self.backend.get(capture_key(run_id, task_id, attempt))
        if value is None or isinstance(value, bytes):
            return value
        return value.encode("utf-8", "surrogateescape")

    def append_log(self, log: LogRecord) -> None:
        key = f"l:{log.run_id}:{log.execution}:{log.seq}"
        self.backend.write([(key, record_json(log))])


def _whole(value: Value | Lazy) -> Value | Lazy:
    return value


def capture_key(run_id: str, task_id: str, attempt: int) -> str:
    return f"c:{run_id}:{task_id}:{attempt}"
