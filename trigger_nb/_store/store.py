"""Where runs, tasks, logs and outputs persist.

``Store`` holds the record logic once, over a tiny ordered key/value backend (see
``trigger_nb._store.backend``): ``DiskStore`` puts it on diskcache, ``MemoryStore`` on dicts. Layout
(every key is a string; ``R`` a run id, ``T`` a task id)::

    __format__          the store-format version
    r:R                 run record (JSON)
    t:R:T               task entry: record + small output, sealed (see trigger_nb._store.sealed)
    o:R:T               big task output, sealed              <- iff the entry says so
    l:R:E:S             log record (JSON), execution E, seq S
    ro:R                sealed run output
    x:R                 a request to cancel the run

A run's keys of one kind share a prefix, so a replay reads all of its task entries in one range
read (run ids never contain ``:``, see ``trigger_nb._client.job``, so no run's prefix covers
another's).
Completing a task is one write of its entry (and, for a big output, of the output blob in the
same transaction), so a crash leaves either the COMPLETED entry with its output or neither.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from datetime import datetime

from pydantic import BaseModel

from trigger_nb._core.model import LogRecord, RunRecord, TaskRecord
from trigger_nb._core.storable import storable_data
from trigger_nb._store.backend import DIR_ENV_VAR, Backend, DiskBackend, MemoryBackend, Value
from trigger_nb._store.sealed import (
    INLINE,
    INLINE_OUTPUT_BYTES,
    NO_OUTPUT,
    SEPARATE,
    Entry,
    Label,
    label_text,
    pack_entry,
    seal,
    unpack_entry,
    unseal,
)
from trigger_nb._store.snapshot import RunSnapshot, load_value
from trigger_nb.errors import (
    CacheReadError,
    NotFoundError,
    RunBusyError,
    StoreVersionError,
)

FORMAT_VERSION = 2
DEFAULT_DIR = ".trigger_nb"


class Store:
    """Runs, tasks, logs and outputs over a backend. Use ``DiskStore`` or ``MemoryStore``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._held = threading.local()
        self._check_format()

    @property
    def location(self) -> str:
        return self.backend.location

    def _check_format(self) -> None:
        found = self.backend.get("__format__")
        if found is None:
            self.backend.write([("__format__", str(FORMAT_VERSION))])
        elif found != str(FORMAT_VERSION):
            older = isinstance(found, str) and found.isdigit() and int(found) < FORMAT_VERSION
            fix = (
                "an earlier trigger_nb wrote it: delete that directory to start afresh (its runs "
                "cannot be read by this version), or point TRIGGER_NB_DIR elsewhere"
                if older
                else "upgrade trigger_nb, or point TRIGGER_NB_DIR elsewhere"
            )
            raise StoreVersionError(
                f"store {self.location} has format version {found!r}, this trigger_nb reads "
                f"version {FORMAT_VERSION}: {fix}"
            )

    # runs
    def load_run(self, run_id: str) -> RunRecord | None:
        raw = self.load_run_raw(run_id)
        return None if raw is None else parse_run(run_id, raw)

    def load_run_raw(self, run_id: str) -> Value | None:
        """A run record's stored text, unparsed (None if there is no such run): one key read.

        Every change to a run rewrites this text, so comparing it with the text last parsed
        tells a ``JobRun`` handle whether its run changed, without parsing it again."""
        return self.backend.get(f"r:{run_id}")

    def save_run(self, run: RunRecord) -> None:
        self.backend.write([(f"r:{run.id}", _record_json(run))])

    def list_runs(self) -> list[RunRecord]:
        runs = []
        for value in self.backend.scan("r:").values():
            try:
                runs.append(RunRecord.model_validate_json(load_value(value, "a run record")))
            except (ValueError, CacheReadError):
                continue  # a damaged run record must not hide every other run
        return sorted(runs, key=lambda r: r.created_at, reverse=True)

    def find_run(self, prefix: str) -> RunRecord:
        """The run whose id is ``prefix`` or uniquely starts with it (``run_`` may be left off)."""
        exact = self.load_run(prefix)
        if exact is not None:
            return exact
        wanted = prefix if prefix.startswith("run_") else f"run_{prefix}"
        matches = [r for r in self.list_runs() if r.id.startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFoundError(f"no run matches {prefix!r} in {self.location}")
        ids = ", ".join(sorted(r.id for r in matches)[:5])
        raise NotFoundError(f"run id {prefix!r} is ambiguous ({ids}…): give more characters")

    def request_cancel(self, run_id: str) -> None:
        """Ask the process executing ``run_id`` to stop before its next task."""
        self.backend.write([(f"x:{run_id}", "cancel")])

    def is_cancel_requested(self, run_id: str) -> bool:
        return self.backend.get(f"x:{run_id}") is not None

    def clear_cancel(self, run_id: str) -> None:
        self.backend.delete(f"x:{run_id}")

    def remove_run(self, run_id: str) -> None:
        """Delete a run and everything it recorded, once it is not executing anywhere (a run
        executing in another process is deleted when it stops, not from under it: deleting
        mid-execution would leave what it records afterwards as a partial run)."""
        with self.lock_run(run_id, remove=True):
            self.delete_run(run_id)

    def delete_run(self, run_id: str) -> None:
        """Delete a run's records now (``remove_run`` waits for it to stop executing first)."""
        self.backend.write(
            [],
            deletes=[f"r:{run_id}", f"ro:{run_id}", f"x:{run_id}"],
            prefixes=[f"t:{run_id}:", f"o:{run_id}:", f"l:{run_id}:"],
        )

    def prune(self, older_than: datetime, *, dry_run: bool = False) -> list[str]:
        """Delete every run last active before ``older_than``; return their ids (oldest first).

        A run's last activity is its ``completed_at``, else its ``updated_at``; a WAITING run stays
        active until its resume time, so a long ``io.wait`` is never pruned before it is due.
        """
        stale = [r for r in self.list_runs() if last_active(r) < older_than]
        stale.sort(key=last_active)
        if not dry_run:
            for record in stale:
                self.remove_run(record.id)  # a run executing elsewhere finishes first
        return [r.id for r in stale]

    def save_run_output(self, run_id: str, data: bytes) -> None:
        self.backend.write([(f"ro:{run_id}", seal(data, 0.0))])

    def read_run_output(self, run_id: str) -> memoryview | None:
        blob = self.backend.get(f"ro:{run_id}")
        if blob is None:
            return None
        return unseal(blob, f"run {run_id}")[0]

    # tasks
    def load_snapshot(self, run_id: str) -> RunSnapshot:
        snapshot = RunSnapshot(run_id)
        snapshot.entries = self.backend.scan(f"t:{run_id}:")
        for value in self.backend.scan(f"l:{run_id}:").values():
            with contextlib.suppress(ValueError, CacheReadError):
                snapshot.logs.append(
                    LogRecord.model_validate_json(load_value(value, "a log record"))
                )
        snapshot.logs.sort(key=lambda log: (log.execution, log.seq))
        return snapshot

    def write_task(
        self, task: TaskRecord, output: bytes | None = None, *, drop_output: bool = False
    ) -> None:
        """Write a task's entry: with its output exactly when it is COMPLETED.

        ``drop_output``: the task may have a big output blob from an earlier completion (it is
        being refreshed or ran before): delete it in the same transaction.
        """
        # Without the fields left at their defaults (None, [], "task", ...): a fifth smaller, and
        # every byte is written once and read by every replay. Parsing fills them back in, so a
        # model default must never change meaning without a new FORMAT_VERSION.
        record_json = _record_json(task, exclude_defaults=True)
        entry_key = f"t:{task.run_id}:{task.id}"
        if output is None:
            entry = pack_entry(record_json, NO_OUTPUT, 0.0)
        elif len(output) <= INLINE_OUTPUT_BYTES:
            entry = pack_entry(record_json, INLINE, task.duration_seconds or 0.0, output)
        else:
            duration = task.duration_seconds or 0.0
            output_blob = (f"o:{task.run_id}:{task.id}", seal(output, duration))
            self.backend.write(
                [output_blob, (entry_key, pack_entry(record_json, SEPARATE, duration))]
            )
            return  # the put replaced any earlier output
        deletes = [f"o:{task.run_id}:{task.id}"] if drop_output else ()
        self.backend.write([(entry_key, entry)], deletes)

    def entry_output(
        self, run_id: str, task_id: str, entry: Entry, what: Label
    ) -> bytes | memoryview:
        """The pickled output of a COMPLETED task's entry, checked; CacheReadError naming
        ``what`` if it is missing or damaged."""
        if entry.output is not None:
            return entry.output
        if entry.placement != SEPARATE:
            label = label_text(what)
            raise CacheReadError(f"{label}: it has no stored output", task_id=task_id)
        try:
            blob = self.backend.get(f"o:{run_id}:{task_id}")
        except OSError as error:
            label = label_text(what)
            raise CacheReadError(
                f"{label}: the stored output file cannot be read ({error})", task_id=task_id
            ) from error
        if blob is None:
            label = label_text(what)
            raise CacheReadError(f"{label}: its stored output is missing", task_id=task_id)
        return unseal(blob, what)[0]

    def read_output(self, run_id: str, task_id: str) -> bytes | memoryview:
        """A completed task's pickled output, checked against its checksum."""
        what = f"task {task_id} of run {run_id}"
        try:
            blob = self.backend.get(f"t:{run_id}:{task_id}")
            if blob is None:
                raise CacheReadError(f"{what}: no stored output", task_id=task_id)
            return self.entry_output(run_id, task_id, unpack_entry(blob, what), what)
        except CacheReadError as error:  # views and the CLI land here: say how to get past it
            raise CacheReadError(
                f"{error}; run the task again with run_task(..., refresh=True), or clear the "
                f"run with `trigger-nb clear --run {run_id}`",
                task_id=task_id,
            ) from error

    def append_log(self, log: LogRecord) -> None:
        key = f"l:{log.run_id}:{log.execution}:{log.seq}"
        self.backend.write([(key, _record_json(log))])

    @contextlib.contextmanager
    def lock_run(self, run_id: str, *, remove: bool = False) -> Iterator[None]:
        """Hold the run for one execution: a second process (or thread) waits here.

        ``remove``: the run is being deleted; its lock goes with it."""
        held: set[str] = self._held.__dict__.setdefault("runs", set())
        if run_id in held:
            # Waiting on a lock this very thread holds would hang the kernel forever.
            raise RunBusyError(
                f"run {run_id} is already executing in this thread: a run cannot trigger or "
                "resume itself; use job.trigger(..., new_run=True) or another payload"
            )
        with self.backend.lock(run_id, remove=remove):
            held.add(run_id)
            try:
                yield
            finally:
                held.discard(run_id)

    def close(self) -> None:
        self.backend.close()


def parse_run(run_id: str, raw: Value) -> RunRecord:
    """A run record from its stored text (``Store.load_run_raw``); CacheReadError if damaged."""
    try:
        return RunRecord.model_validate_json(raw)
    except ValueError as error:
        raise CacheReadError(f"run {run_id}: its stored record is unreadable") from error


def _record_json(record: BaseModel, *, exclude_defaults: bool = False) -> bytes:
    """A record as UTF-8 JSON. The engine escapes every text it stores (``storable_text``);
    should a text it missed hold what UTF-8 cannot (a lone surrogate), the whole record is
    escaped here rather than failing, so a run can always be recorded."""
    serializer = record.__pydantic_serializer__
    try:
        return serializer.to_json(record, exclude_defaults=exclude_defaults)
    except ValueError:  # PydanticSerializationError: UnicodeEncodeError inside
        fields = storable_data(serializer.to_python(record, mode="json"))
        repaired = type(record).model_validate(fields)
        return serializer.to_json(repaired, exclude_defaults=exclude_defaults)


def last_active(record: RunRecord) -> datetime:
    """When a run last did (or, for a pending wait, will do) something: the age ``prune`` uses."""
    moment = record.completed_at or record.updated_at
    if record.wait_until is not None and record.completed_at is None:
        moment = max(moment, record.wait_until)
    return moment


def default_directory() -> str:
    return os.environ.get(DIR_ENV_VAR) or DEFAULT_DIR


class DiskStore(Store):
    """The persistent store: diskcache in ``directory`` (default ``$TRIGGER_NB_DIR`` or
    ``./.trigger_nb``)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        super().__init__(DiskBackend(directory if directory is not None else default_directory()))


class MemoryStore(Store):
    """An in-memory store: the same semantics, gone with the process."""

    def __init__(self) -> None:
        super().__init__(MemoryBackend())


def open_store(store: Store | str | os.PathLike[str] | None) -> Store:
    """A Store from ``store=`` (a Store, a directory, or None for the default directory)."""
    if isinstance(store, Store):
        return store
    return DiskStore(store)
