"""Where runs, tasks, logs and outputs persist.

``Store`` holds the record logic once, over a tiny key/value backend with tags (one tag per run,
see ``trigger_nb.backend``): ``DiskStore`` puts it on diskcache, ``MemoryStore`` on dicts. Layout
(every key is a string; ``R`` a run id, ``T`` a task id)::

    __format__          the store-format version
    r:R                 run record (JSON)                     tag "runs"
    t:R:T               task record (JSON)                    tag R
    o:R:T               sealed task output (bytes)            tag R   <- exists iff COMPLETED
    l:R:E:S             log record (JSON), execution E, seq S tag R
    ro:R                sealed run output (bytes)             tag R

A task output is *sealed*: a blake2b digest and the task's duration precede the pickle, so damaged
bytes are detected instead of unpickled into a wrong value, and replay learns the time it saved
without parsing the task record. Completing a task writes its output and its COMPLETED record in
one transaction, so a crash leaves either both or neither.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

# Re-exported (``X as X``) so that ``from trigger_nb.store import DiskBackend`` etc. keep working.
from trigger_nb.backend import DIR_ENV_VAR as DIR_ENV_VAR
from trigger_nb.backend import Backend as Backend
from trigger_nb.backend import DiskBackend as DiskBackend
from trigger_nb.backend import Lazy as Lazy
from trigger_nb.backend import MemoryBackend as MemoryBackend
from trigger_nb.backend import Value as Value
from trigger_nb.errors import (
    CacheReadError,
    NotFoundError,
    RunBusyError,
    StoreVersionError,
)
from trigger_nb.model import LogRecord, RunRecord, TaskRecord

FORMAT_VERSION = 1
DEFAULT_DIR = ".trigger_nb"
RUNS_TAG = "runs"
_SEAL = struct.Struct("<16sd")


def seal(data: bytes, duration_seconds: float) -> bytes:
    return _SEAL.pack(hashlib.blake2b(data, digest_size=16).digest(), duration_seconds) + data


def unseal(blob: bytes, what: str | Callable[[], str]) -> tuple[bytes, float]:
    """The payload of a sealed blob and the duration sealed with it; CacheReadError if damaged.

    ``what`` names the blob in errors; a function is only called on failure (replays are hot).
    """
    if len(blob) < _SEAL.size:
        label = what() if callable(what) else what
        raise CacheReadError(f"{label}: the stored output is truncated ({len(blob)} bytes)")
    digest, duration = _SEAL.unpack_from(blob)
    data = blob[_SEAL.size :]
    if hashlib.blake2b(data, digest_size=16).digest() != digest:
        label = what() if callable(what) else what
        raise CacheReadError(f"{label}: the stored output is damaged (checksum mismatch)")
    return data, float(duration)


@dataclass
class RunSnapshot:
    """Everything stored for one run, read in one bulk read at the start of an execution."""

    run_id: str
    raw_tasks: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Value | Lazy] = field(default_factory=dict)
    logs: list[LogRecord] = field(default_factory=list)
    _parsed: dict[str, TaskRecord] = field(default_factory=dict)

    def task(self, task_id: str) -> TaskRecord | None:
        record = self._parsed.get(task_id)
        if record is None and task_id in self.raw_tasks:
            record = _parse_task(self.raw_tasks[task_id], task_id)
            self._parsed[task_id] = record
        return record

    def tasks(self) -> list[TaskRecord]:
        return [r for r in (self.task(t) for t in self.raw_tasks) if r is not None]


def _parse_task(raw: str, task_id: str) -> TaskRecord:
    try:
        return TaskRecord.model_validate_json(raw)
    except ValueError as error:
        raise CacheReadError(
            f"task {task_id}: its stored record is unreadable ({error.__class__.__name__}); "
            "refresh it with run_task(..., refresh=True) or clear the run",
            task_id=task_id,
        ) from error


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
            self.backend.write([("__format__", str(FORMAT_VERSION), "meta")])
        elif found != str(FORMAT_VERSION):
            raise StoreVersionError(
                f"store {self.location} has format version {found!r}, this trigger_nb reads "
                f"version {FORMAT_VERSION}: upgrade trigger_nb, or point TRIGGER_NB_DIR elsewhere"
            )

    # runs
    def load_run(self, run_id: str) -> RunRecord | None:
        raw = self.backend.get(f"r:{run_id}")
        if raw is None:
            return None
        try:
            return RunRecord.model_validate_json(raw)
        except ValueError as error:
            raise CacheReadError(f"run {run_id}: its stored record is unreadable") from error

    def save_run(self, run: RunRecord) -> None:
        self.backend.write([(f"r:{run.id}", run.model_dump_json(), RUNS_TAG)])

    def list_runs(self) -> list[RunRecord]:
        runs = []
        for _key, value in self.backend.scan(RUNS_TAG):
            raw = value() if callable(value) else value
            try:
                runs.append(RunRecord.model_validate_json(raw))
            except ValueError:
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
        self.backend.write([(f"x:{run_id}", "cancel", run_id)])

    def is_cancel_requested(self, run_id: str) -> bool:
        return self.backend.get(f"x:{run_id}") is not None

    def clear_cancel(self, run_id: str) -> None:
        self.backend.delete(f"x:{run_id}")

    def delete_run(self, run_id: str) -> None:
        self.backend.evict(run_id)
        self.backend.delete(f"r:{run_id}")

    def prune(self, older_than: datetime, *, dry_run: bool = False) -> list[str]:
        """Delete every run last active before ``older_than``; return their ids (oldest first).

        A run's last activity is its ``completed_at``, else its ``updated_at``; a WAITING run stays
        active until its resume time, so a long ``io.wait`` is never pruned before it is due.
        """
        stale = [r for r in self.list_runs() if last_active(r) < older_than]
        stale.sort(key=last_active)
        if not dry_run:
            for record in stale:
                with self.lock_run(record.id):  # a run executing elsewhere finishes first
                    self.delete_run(record.id)
        return [r.id for r in stale]

    def save_run_output(self, run_id: str, data: bytes) -> None:
        self.backend.write([(f"ro:{run_id}", seal(data, 0.0), run_id)])

    def read_run_output(self, run_id: str) -> bytes | None:
        blob = self.backend.get(f"ro:{run_id}")
        if blob is None:
            return None
        return unseal(_as_bytes(blob), f"run {run_id}")[0]

    # tasks
    def load_snapshot(self, run_id: str) -> RunSnapshot:
        snapshot = RunSnapshot(run_id)
        raw_tasks, outputs = snapshot.raw_tasks, snapshot.outputs
        offset = len(run_id) + 3  # the task id follows "t:RUN:" / "o:RUN:"
        for key, value in self.backend.scan(run_id):
            kind = key[:2]
            if kind == "t:":
                raw_tasks[key[offset:]] = value() if callable(value) else value  # type: ignore[assignment]
            elif kind == "o:":
                outputs[key[offset:]] = value
            elif kind == "l:":
                raw = value() if callable(value) else value
                with contextlib.suppress(ValueError):
                    snapshot.logs.append(LogRecord.model_validate_json(raw))
        snapshot.logs.sort(key=lambda log: (log.execution, log.seq))
        return snapshot

    def save_task(self, task: TaskRecord, *, drop_output: bool = False) -> None:
        deletes = [f"o:{task.run_id}:{task.id}"] if drop_output else []
        self.backend.write(
            [(f"t:{task.run_id}:{task.id}", task.model_dump_json(), task.run_id)], deletes
        )

    def complete_task(self, task: TaskRecord, data: bytes) -> None:
        duration = task.duration_seconds or 0.0
        self.backend.write(
            [
                (f"o:{task.run_id}:{task.id}", seal(data, duration), task.run_id),
                (f"t:{task.run_id}:{task.id}", task.model_dump_json(), task.run_id),
            ]
        )

    def read_output(self, run_id: str, task_id: str, value: Value | Lazy | None = None) -> bytes:
        """A completed task's output bytes, checked against their seal."""
        return self.read_sealed_output(run_id, task_id, value)[0]

    def read_sealed_output(
        self, run_id: str, task_id: str, value: Value | Lazy | None = None
    ) -> tuple[bytes, float]:
        """A completed task's output bytes and its original duration (seconds)."""

        def what() -> str:
            return f"task {task_id} of run {run_id}"

        try:
            if value is None:
                value = self.backend.get(f"o:{run_id}:{task_id}")
            if value is None:
                raise CacheReadError(f"{what()}: no stored output", task_id=task_id)
            blob = value() if callable(value) else value
        except OSError as error:
            raise CacheReadError(
                f"{what()}: the stored output file cannot be read ({error})", task_id=task_id
            ) from error
        return unseal(_as_bytes(blob), what)

    def append_log(self, log: LogRecord) -> None:
        key = f"l:{log.run_id}:{log.execution}:{log.seq}"
        self.backend.write([(key, log.model_dump_json(), log.run_id)])

    @contextlib.contextmanager
    def lock_run(self, run_id: str) -> Iterator[None]:
        """Hold the run for one execution: a second process (or thread) waits here."""
        held: set[str] = self._held.__dict__.setdefault("runs", set())
        if run_id in held:
            # Waiting on a lock this very thread holds would hang the kernel forever.
            raise RunBusyError(
                f"run {run_id} is already executing in this thread: a run cannot trigger or "
                "resume itself; use job.trigger(..., new_run=True) or another payload"
            )
        with self.backend.lock(run_id):
            held.add(run_id)
            try:
                yield
            finally:
                held.discard(run_id)

    def close(self) -> None:
        self.backend.close()


def last_active(record: RunRecord) -> datetime:
    """When a run last did (or, for a pending wait, will do) something: the age ``prune`` uses."""
    moment = record.completed_at or record.updated_at
    if record.wait_until is not None and record.completed_at is None:
        moment = max(moment, record.wait_until)
    return moment


def _as_bytes(value: Value) -> bytes:
    return value.encode() if isinstance(value, str) else value


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
