"""One run's task entries and logs as an execution (or a view) reads them: in one bulk read, each
entry unpacked and its record parsed only when asked for.

An execution nobody watches reads a *lean* snapshot: each COMPLETED entry kept as what its
replay needs (``sealed.Completed``: output, duration, fingerprint key), its record left in the
store and read again, whole, only for the few tasks that need it (a stale task's explanation, a
task that runs again, a task printing output to show again, the untouched tasks counted at the
end). A view, or an execution with observers (the live view parses every replayed record),
reads whole entries, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from trigger_nb._core.model import LogRecord, TaskRecord, restore_derived
from trigger_nb._store.backend import Lazy, Value
from trigger_nb._store.sealed import (
    NO_OUTPUT,
    Completed,
    Entry,
    Label,
    NotRead,
    completed_output,
    stored_digest,
    unpack_entry,
    unreadable,
)

# A lean snapshot reads the records of this many tasks one by one, then the rest at once.
MANY_REREADS = 32


@dataclass
class RunSnapshot:
    """Every task entry and log of one run, read in one bulk read at the start of an execution.

    Entries stay packed until asked for: a replay unpacks only the entry it replays.
    """

    run_id: str
    # task id -> its entry; in a lean snapshot, ``Completed`` for an intact COMPLETED one.
    entries: dict[str, Value | Lazy | Completed] = field(default_factory=dict)
    # Output captures, "T:N" (task id, attempt) -> packed events: few tasks print, so a run
    # usually has none and a replay checks one empty dict.
    captures: dict[str, Value | Lazy] = field(default_factory=dict)
    logs: list[LogRecord] = field(default_factory=list)
    # Tasks marked to run again on the next execution (``TaskEntries.mark_refresh``).
    marks: set[str] = field(default_factory=set)
    # A lean snapshot's way back to the store: one task's whole entry (None: it has none),
    # and the whole entries of the tasks given (read at once: see ``prefetch``).
    reread: Callable[[str], Value | Lazy | None] | None = None
    reread_many: Callable[[set[str]], dict[str, Value | Lazy]] | None = None
    _parsed: dict[str, TaskRecord] = field(default_factory=dict)
    _captured_ids: set[str] | None = None
    _whole: dict[str, Value | Lazy] = field(default_factory=dict)
    _rereads: int = 0

    def has_capture(self, task_id: str) -> bool:
        """Whether some attempt of the task stored what it printed or displayed."""
        if self._captured_ids is None:
            self._captured_ids = {key.partition(":")[0] for key in self.captures}
        return task_id in self._captured_ids

    def entry(self, task_id: str, what: Label | None = None) -> Entry | None:
        """The unpacked entry of a task (None if it has none); CacheReadError if damaged."""
        blob = self.entries.get(task_id)
        if isinstance(blob, tuple):  # lean: the record is in the store
            blob = self._read_whole(task_id)
        if blob is None:
            return None
        label = f"task {task_id} of run {self.run_id}" if what is None else what
        return unpack_entry(load_value(blob, label), label)

    def _read_whole(self, task_id: str) -> Value | Lazy | None:
        """A lean entry's whole entry, from the store (None: deleted since). Kept once read
        at once (``prefetch``): a task replayed although stale, whose output is shown again,
        reads it twice."""
        blob = self._whole.get(task_id)
        if blob is not None or self.reread is None:
            return blob
        self._rereads += 1
        if self._rereads == MANY_REREADS:
            # Records asked for one by one, many of them (every task stale after a code
            # change, say): the rest in one read, not a round trip each.
            self.prefetch(self.entries)
            return self._whole.get(task_id)
        return self.reread(task_id)

    def prefetch(self, task_ids: Iterable[str]) -> None:
        """Read the whole entries of ``task_ids`` at once, for ``entry``/``task`` to use (a
        lean snapshot asked for many records: one range read, not one read each)."""
        if self.reread_many is None:
            return
        wanted = {t for t in task_ids if type(self.entries.get(t)) is tuple}
        if len(wanted) > 1:
            self._whole.update(self.reread_many(wanted))

    def completed(self, task_id: str) -> tuple[bytes | None, float] | None:
        """The replay check: ``(inline output or None, duration)`` if the task has an intact
        COMPLETED entry, else None (no entry, not completed, or damaged: ``entry`` says which).

        Made for every task a run calls, so the common case, a small entry already read, is one
        dict lookup and one checksum (``trigger_nb._store.sealed.completed_output``)."""
        blob = self.entries.get(task_id)
        if type(blob) is tuple:
            return blob[:2]
        if type(blob) is bytes:
            return completed_output(blob)
        if blob is None:
            return None
        if callable(blob):  # a big entry diskcache keeps in a file: read it once
            try:
                blob = self.entries[task_id] = blob()
            except OSError:
                return None  # ``entry`` reports it
        return completed_output(blob)

    def digest(self, task_id: str) -> bytes | None:
        """The fingerprint key stored with a task (None: none, or no entry)."""
        blob = self.entries.get(task_id)
        if isinstance(blob, tuple):
            if not isinstance(blob[2], NotRead):
                return blob[2]
            return stored_digest(self._read_whole(task_id))  # read without: a task's option
        return stored_digest(blob)

    def task(self, task_id: str) -> TaskRecord | None:
        """A task's record (None if it has none); CacheReadError if its entry is damaged."""
        record = self._parsed.get(task_id)
        if record is None and task_id in self.entries:
            label = f"task {task_id} of run {self.run_id}"
            entry = self.entry(task_id, label)
            if entry is None:  # a lean snapshot's entry, deleted since (``clear``)
                return None
            record = parse_task(entry, label, self.run_id, task_id)
            if task_id in self.marks:
                record.refresh_pending = True
            self._parsed[task_id] = record
        return record

    def tasks(self) -> list[TaskRecord]:
        return [r for r in (self.task(t) for t in self.entries) if r is not None]


def parse_task(entry: Entry, what: Label, run_id: str, task_id: str) -> TaskRecord:
    """The record of the task ``task_id`` of ``run_id`` from its entry, the fields the entry
    left out filled back in (``restore_derived``)."""
    checked = entry.checked_record(what)
    try:
        record = TaskRecord.model_validate_json(checked)
    except ValueError as error:
        reason = f"its stored record is unreadable ({error.__class__.__name__})"
        raise unreadable(what, reason) from error
    duration = entry.duration if entry.placement != NO_OUTPUT else None
    return restore_derived(record, run_id, task_id, duration)


def load_value(value: Value | Lazy, what: Label) -> Value:
    """A value from a scan, reading it from its file if it is a big one."""
    if not callable(value):
        return value
    try:
        return value()
    except OSError as error:
        raise unreadable(what, f"its stored file cannot be read ({error})") from error
