"""A store's task-level keys: task entries, big outputs and logs.

Part of ``Store`` (see ``trigger_nb._store.store`` for the layout of every key). Completing a
task is one write of its entry (and, for a big output, of the output blob in the same
transaction), so a crash leaves either the COMPLETED entry with its output or neither.
"""

from __future__ import annotations

import contextlib

from trigger_nb._core.codec import Stored
from trigger_nb._core.model import LogRecord, TaskRecord
from trigger_nb._store.backend import Backend, Lazy, Value
from trigger_nb._store.framed import Pickled, read_stored, verify_stored, write_framed
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
)
from trigger_nb._store.snapshot import RunSnapshot, load_value
from trigger_nb.errors import CacheReadError


class TaskEntries:
    """Tasks and logs: one entry per task (its record, and its output when small)."""

    backend: Backend

    def load_snapshot(self, run_id: str) -> RunSnapshot:
        snapshot = RunSnapshot(run_id)
        snapshot.entries = self.backend.scan(f"t:{run_id}:")
        snapshot.captures = self.load_captures(run_id)
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
    ) -> None:
        """Write a task's entry: with its output exactly when it is COMPLETED.

        ``drop_output``: the task may have a big output blob from an earlier completion (it is
        being refreshed or ran before): delete it in the same transaction. ``capture``: what
        attempt N printed and displayed, ``(N, packed events)``, written in the same
        transaction (a replay that finds the COMPLETED entry finds its output capture).
        """
        extra = (
            [] if capture is None else [(capture_key(task.run_id, task.id, capture[0]), capture[1])]
        )
        # Without the fields left at their defaults (None, [], "task", ...): a fifth smaller, and
        # every byte is written once and read by every replay. Parsing fills them back in, so a
        # model default must never change meaning without a new FORMAT_VERSION.
        entry_json = record_json(task, exclude_defaults=True)
        entry_key = f"t:{task.run_id}:{task.id}"
        if isinstance(
            output, Pickled
        ):  # big buffers: streamed to a file of its own, then the entry
            pickled = output
            self.backend.put_file(f"o:{task.run_id}:{task.id}", lambda f: write_framed(f, pickled))
            duration = task.duration_seconds or 0.0
            self.backend.write([*extra, (entry_key, pack_entry(entry_json, SEPARATE, duration))])
            return
        if output is None:
            entry = pack_entry(entry_json, NO_OUTPUT, 0.0)
        elif len(output) <= INLINE_OUTPUT_BYTES:
            entry = pack_entry(entry_json, INLINE, task.duration_seconds or 0.0, output)
        else:
            duration = task.duration_seconds or 0.0
            output_blob = (f"o:{task.run_id}:{task.id}", seal(output, duration))
            self.backend.write(
                [*extra, output_blob, (entry_key, pack_entry(entry_json, SEPARATE, duration))]
            )
            return  # the put replaced any earlier output
        deletes = [f"o:{task.run_id}:{task.id}"] if drop_output else ()
        self.backend.write([*extra, (entry_key, entry)], deletes)

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


def capture_key(run_id: str, task_id: str, attempt: int) -> str:
    return f"c:{run_id}:{task_id}:{attempt}"
