"""The bytes-level storage under ``Store``: string keys, str/bytes values, one tag per value.

``DiskBackend`` puts it on diskcache (this is the only module importing diskcache) and holds a run
in an OS file lock; ``MemoryBackend`` keeps it in dicts. SQLite and OS failures surface as
``StoreError`` naming the directory and the fix.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from trigger_nb.errors import StoreError

DIR_ENV_VAR = "TRIGGER_NB_DIR"
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
