"""Where runs, tasks, logs and outputs persist.

``Store`` holds the record logic once, over a tiny key/value backend with tags (one tag per run):
``DiskStore`` puts it on diskcache (this is the only module importing diskcache), ``MemoryStore`` on
dicts. Layout (every key is a string; ``R`` a run id, ``T`` a task id)::

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
import sqlite3
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from trigger_nb.errors import (
    CacheReadError,
    NotFoundError,
    RunBusyError,
    StoreError,
    StoreVersionError,
)
from trigger_nb.model import LogRecord, RunRecord, TaskRecord

FORMAT_VERSION = 1
DEFAULT_DIR = ".trigger_nb"
DIR_ENV_VAR = "TRIGGER_NB_DIR"
RUNS_TAG = "runs"
_SEAL = struct.Struct("<16sd")
_LOCK_POLL_SECONDS = 0.02
_MODE_RAW = 1  # diskcache.core.MODE_RAW: the value column holds the str/bytes as is

Value = str | bytes
Lazy = Callable[[], Value]


class Backend(Protocol):
    """Bytes-level storage: string keys, str/bytes values, one tag per value."""

    location: str

    def get(self, key: str) -> Value | None: ...

    def write(self, puts: Sequence[tuple[str, Value, str]], deletes: Sequence[str] = ()) -> None:
        """Apply every put and delete atomically."""

    def scan(self, tag: str) -> Iterator[tuple[str, Value | Lazy]]:
        """Every (key, value) with this tag in one read; big values come as loaders."""

    def evict(self, tag: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def lock(self, name: str) -> contextlib.AbstractContextManager[None]: ...

    def close(self) -> None: ...


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


class MemoryBackend:
    """A real backend on dicts, for tests and throwaway runs."""

    def __init__(self) -> None:
        self.location = "<memory>"
        self._values: dict[str, tuple[Value, str]] = {}
        self._mutex = threading.RLock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> Value | None:
        found = self._values.get(key)
        return None if found is None else found[0]

    def write(self, puts: Sequence[tuple[str, Value, str]], deletes: Sequence[str] = ()) -> None:
        with self._mutex:
            for key in deletes:
                self._values.pop(key, None)
            for key, value, tag in puts:
                self._values[key] = (value, tag)

    def scan(self, tag: str) -> Iterator[tuple[str, Value | Lazy]]:
        with self._mutex:
            items = [(k, v) for k, (v, t) in self._values.items() if t == tag]
        return iter(items)

    def evict(self, tag: str) -> None:
        with self._mutex:
            for key in [k for k, (_, t) in self._values.items() if t == tag]:
                del self._values[key]

    def delete(self, key: str) -> None:
        with self._mutex:
            self._values.pop(key, None)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with self._mutex:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def close(self) -> None:
        pass


class DiskBackend:
    """diskcache underneath: SQLite for small values, files for values of 32 KB and more."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        import diskcache

        self.location = str(Path(directory).resolve())
        with _store_errors(self.location, "open"):
            Path(self.location).mkdir(parents=True, exist_ok=True)
            # eviction_policy="none": diskcache's default culls least-recently-stored values past
            # 1 GB, which would silently drop completed tasks and repeat their side effects.
            # cull_limit=0: nothing here ever expires or is evicted, so skip the query for
            # expired keys diskcache runs on every set (3 per executed task).
            self._cache = diskcache.Cache(
                self.location, eviction_policy="none", tag_index=True, timeout=60, cull_limit=0
            )
        self._thread_locks: dict[str, threading.Lock] = {}
        self._mutex = threading.Lock()

    def get(self, key: str) -> Value | None:
        with _store_errors(self.location, "read"):
            value: Value | None = self._cache.get(key, default=None, retry=True)
            return value

    def write(self, puts: Sequence[tuple[str, Value, str]], deletes: Sequence[str] = ()) -> None:
        with _store_errors(self.location, "write"), self._cache.transact(retry=True):
            for key in deletes:
                self._cache.delete(key, retry=True)
            for key, value, tag in puts:
                self._cache.set(key, value, tag=tag, retry=True)

    def scan(self, tag: str) -> Iterator[tuple[str, Value | Lazy]]:
        # diskcache has no "get every value with this tag" call; one indexed SELECT on its table
        # replaces one round trip per task (SPEC: replay is one bulk read). Small values come
        # inline; file-backed ones are loaded only when asked for.
        with _store_errors(self.location, "read"):
            rows = self._cache._sql(
                "SELECT key, mode, filename, value FROM Cache WHERE tag = ?", (tag,)
            ).fetchall()
        disk = self._cache.disk
        result: list[tuple[str, Value | Lazy]] = []
        append = result.append
        for key, mode, filename, value in rows:
            if filename is None:
                # Inline values of our str/bytes are stored raw: skip disk.fetch's call per row
                # (a run of 10,000 tasks has 20,000 rows; this loop is part of every replay).
                append((key, value if mode == _MODE_RAW else disk.fetch(mode, None, value, False)))
            else:
                append((key, _file_loader(disk, mode, filename)))
        return iter(result)

    def evict(self, tag: str) -> None:
        with _store_errors(self.location, "write"):
            self._cache.evict(tag, retry=True)

    def delete(self, key: str) -> None:
        with _store_errors(self.location, "write"):
            self._cache.delete(key, retry=True)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with self._mutex:
            thread_lock = self._thread_locks.setdefault(name, threading.Lock())
        with thread_lock, _file_lock(Path(self.location, "locks", f"{name}.lock")):
            yield

    def close(self) -> None:
        self._cache.close()


def _file_loader(disk: Any, mode: int, filename: str) -> Lazy:
    def load() -> Value:
        value: Value = disk.fetch(mode, filename, None, False)
        return value

    return load


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An OS file lock: released by the kernel if the holder dies, even by SIGKILL."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one process per store is assumed
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        # Poll instead of blocking so Ctrl-C (KeyboardInterrupt) still stops a waiting kernel.
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    print(
                        f"trigger_nb: {path.stem} is executing in {holder}; waiting for it to "
                        "finish",
                        file=sys.stderr,
                    )
                    told = True
                time.sleep(_LOCK_POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _store_errors(location: str, action: str) -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, OSError) as error:
        if isinstance(error, StoreError):
            raise
        raise StoreError(
            f"cannot {action} the trigger_nb store at {location}: {error}. Check that the "
            f"directory is writable and the disk is not full, or set {DIR_ENV_VAR} to another "
            "directory"
        ) from error


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
