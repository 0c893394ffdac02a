"""The bytes-level storage under ``Store``: string keys, str/bytes values, ordered by key.

Reading a whole run is a *prefix scan* (every key starting with ``t:RUN:``, say) over the key
index diskcache already keeps, so no tag index is needed: a tag index cost every write about a
fifth of a raw ``Cache.set`` more.

``DiskBackend`` puts it on diskcache (this is the only module importing diskcache) and holds a run
in an OS file lock. Task entries (keys ``t:...``), one written per executed task, live in a table
of their own in diskcache's SQLite database (see ``ENTRY_TABLE``). ``MemoryBackend`` keeps it in
dicts; ``postgres.PostgresBackend`` puts it on a PostgreSQL server. SQLite and OS failures surface
as ``StoreError`` naming the directory and the fix.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Container, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from trigger_nb._store.file_lock import file_lock
from trigger_nb._store.network_fs import warn_if_network
from trigger_nb.errors import StoreError

DIR_ENV_VAR = "TRIGGER_NB_DIR"
STORE_ENV_VAR = "TRIGGER_NB_STORE"  # a postgresql:// URL or a directory; wins over DIR_ENV_VAR
_MODE_RAW = 1  # diskcache.core.MODE_RAW: the value column holds the str/bytes as is
_MODE_BINARY = 2  # diskcache.core.MODE_BINARY: bytes, here in the file the row names
# The row diskcache's Cache.set writes for a small bytes value under a str key (raw = 1, no
# expiry, no tag, size 0, MODE_RAW, no file), as one statement; see DiskBackend._put_one.
_UPSERT = (
    "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, tag, size,"
    " mode, filename, value) VALUES (?, 1, ?, NULL, ?, 0, NULL, 0, 1, NULL, ?)"
    " ON CONFLICT(key, raw) DO UPDATE SET store_time = excluded.store_time,"
    " expire_time = NULL, access_time = excluded.access_time, access_count = 0, tag = NULL,"
    " size = 0, mode = 1, value = excluded.value WHERE filename IS NULL"
)

# Task entries: one small row written (and committed) per executed task, read back by prefix.
# In diskcache's Cache table each such commit changed three B-trees (the rows, the (key, raw)
# and expire_time indexes) and the Settings row its count/size triggers update, which made the
# write cost as much as all of trigger_nb's own work per task. Here a commit changes two: the
# row, appended at the end of the table, and the key's index (no triggers, no other columns).
# (WITHOUT ROWID, keyed by the hashed task ids, was slower still: rows of ~700 bytes inserted
# at random places split a page every few inserts.)
# Same database file, same connection: a task's entry and its other values (its big output's
# row, its capture, its refresh mark) still change in one transaction.
ENTRY_TABLE = "TaskEntry"
ENTRY_PREFIX = "t:"
_CREATE_ENTRY_TABLE = (  # value: bytes (an entry), or text if someone stored text there
    f"CREATE TABLE IF NOT EXISTS {ENTRY_TABLE} (key TEXT PRIMARY KEY, value NOT NULL)"
)
_PUT_ENTRY = f"INSERT OR REPLACE INTO {ENTRY_TABLE} (key, value) VALUES (?, ?)"
_GET_ENTRY = f"SELECT value FROM {ENTRY_TABLE} WHERE key = ?"
_DELETE_ENTRY = f"DELETE FROM {ENTRY_TABLE} WHERE key = ?"
_DELETE_ENTRIES = f"DELETE FROM {ENTRY_TABLE} WHERE key >= ? AND key < ?"
_SCAN_ENTRIES = f"SELECT substr(key, ?), value FROM {ENTRY_TABLE} WHERE key >= ? AND key < ?"

Value = str | bytes
Lazy = Callable[[], Value]
T = TypeVar("T")


class Backend(Protocol):
    """Bytes-level storage: string keys, str/bytes values, scanned by key prefix."""

    location: str

    def get(self, key: str) -> Value | None: ...

    def write(
        self,
        puts: Sequence[tuple[str, Value]],
        deletes: Sequence[str] = (),
        prefixes: Sequence[str] = (),
    ) -> None:
        """Delete every key in ``deletes`` and every key starting with one of ``prefixes``, then
        apply every put: all in one transaction."""

    def scan(self, prefix: str) -> dict[str, Value | Lazy]:
        """Every value whose key starts with ``prefix``, keyed by the rest of its key, in one
        read; big values come as loaders."""

    def scan_as(
        self, prefix: str, convert: Callable[[Value | Lazy], T], only: Container[str] | None = None
    ) -> dict[str, T]:
        """``scan``, each value passed through ``convert`` as it is read, so a big scan never
        holds every value whole (``only``: just the keys whose rest is in it)."""

    def delete(self, key: str) -> None: ...

    def put_file(self, key: str, write: Callable[[IO[bytes]], object]) -> None:
        """Store under ``key`` what ``write`` writes to the binary file it is given: a big
        value streamed, never held whole in memory. Replaces the key's value."""

    def file_of(self, key: str) -> Path | Value | None:
        """Where the value of ``key`` is: the path of the file holding it (what ``put_file``
        and big writes make), else the value itself; None if there is none."""

    def lock(self, name: str, *, remove: bool = False) -> contextlib.AbstractContextManager[None]:
        """Hold ``name`` against other threads and processes. ``remove``: the lock is not needed
        again (its run is being deleted): remove what holds it as it is released."""

    def close(self) -> None: ...


class MemoryBackend:
    """A real backend on dicts, for tests and throwaway runs."""

    def __init__(self) -> None:
        self.location = "<memory>"
        self._values: dict[str, Value] = {}
        self._mutex = threading.RLock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> Value | None:
        return self._values.get(key)

    def write(
        self,
        puts: Sequence[tuple[str, Value]],
        deletes: Sequence[str] = (),
        prefixes: Sequence[str] = (),
    ) -> None:
        with self._mutex:
            doomed = [k for k in self._values if k.startswith(tuple(prefixes))] if prefixes else []
            for key in [*deletes, *doomed]:
                self._values.pop(key, None)
            for key, value in puts:
                self._values[key] = value

    def scan(self, prefix: str) -> dict[str, Value | Lazy]:
        start = len(prefix)
        with self._mutex:
            return {k[start:]: v for k, v in self._values.items() if k.startswith(prefix)}

    def scan_as(
        self, prefix: str, convert: Callable[[Value | Lazy], T], only: Container[str] | None = None
    ) -> dict[str, T]:
        return scan_as_dict(self.scan(prefix), convert, only)

    def delete(self, key: str) -> None:
        with self._mutex:
            self._values.pop(key, None)

    def put_file(self, key: str, write: Callable[[IO[bytes]], object]) -> None:
        file = io.BytesIO()
        write(file)
        with self._mutex:
            self._values[key] = file.getvalue()

    def file_of(self, key: str) -> Path | Value | None:
        return self.get(key)

    @contextlib.contextmanager
    def lock(self, name: str, *, remove: bool = False) -> Iterator[None]:
        while True:
            with self._mutex:
                lock = self._locks.setdefault(name, threading.Lock())
            lock.acquire()
            with self._mutex:
                if self._locks.get(name) is lock:
                    break
            lock.release()  # its holder removed it while we waited: take the current one
        try:
            yield
        finally:
            if remove:
                with self._mutex:
                    del self._locks[name]
            lock.release()

    def close(self) -> None:
        pass


class DiskBackend:
    """diskcache underneath: SQLite for small values, files for values of 32 KB and more."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        import diskcache

        self.location = str(Path(directory).resolve())
        self._reading = _StoreErrors(self.location, "read")
        self._writing = _StoreErrors(self.location, "write")
        with _StoreErrors(self.location, "open"):
            Path(self.location).mkdir(parents=True, exist_ok=True)
            warn_if_network(self.location)  # SQLite's locks are unreliable there: say so once
            # eviction_policy="none": diskcache's default culls least-recently-stored values past
            # 1 GB, which would silently drop completed tasks and repeat their side effects.
            # cull_limit=0: nothing here ever expires or is evicted, so skip the query for
            # expired keys diskcache runs on every set.
            self._cache = diskcache.Cache(
                self.location, eviction_policy="none", timeout=60, cull_limit=0
            )
            self._cache._sql(_CREATE_ENTRY_TABLE)
        self._min_file_size: int = self._cache.disk.min_file_size
        self._thread_locks: dict[str, threading.Lock] = {}
        self._mutex = threading.Lock()

    def get(self, key: str) -> Value | None:
        with self._reading:
            if key.startswith(ENTRY_PREFIX):
                row = self._cache._sql(_GET_ENTRY, (key,)).fetchone()
                return None if row is None else _as_value(row[0])
            value: Value | None = self._cache.get(key, default=None, retry=True)
            return value

    def write(
        self,
        puts: Sequence[tuple[str, Value]],
        deletes: Sequence[str] = (),
        prefixes: Sequence[str] = (),
    ) -> None:
        with self._writing:
            if len(puts) == 1 and not deletes and not prefixes:  # one row: one transaction
                key, value = puts[0]
                if key.startswith(ENTRY_PREFIX):
                    self._put_entry(key, value)
                else:
                    self._put_one(key, value)
                return
            with self._cache.transact(retry=True):
                sql = self._cache._sql
                for prefix in prefixes:
                    if prefix.startswith(ENTRY_PREFIX):
                        sql(_DELETE_ENTRIES, (prefix, _after_prefix(prefix)))
                        continue
                    rows = self._cache._sql(
                        "SELECT key FROM Cache WHERE key >= ? AND key < ?",
                        (prefix, _after_prefix(prefix)),
                    ).fetchall()
                    # diskcache's own delete also removes the files of big values
                    deletes = [*deletes, *(key for (key,) in rows)]
                for key in deletes:
                    if key.startswith(ENTRY_PREFIX):
                        sql(_DELETE_ENTRY, (key,))
                    else:
                        self._cache.delete(key, retry=True)
                for key, value in puts:
                    if key.startswith(ENTRY_PREFIX):
                        sql(_PUT_ENTRY, (key, value))
                    elif not self._upsert(key, value):
                        self._cache.set(key, value, retry=True)

    def _put_entry(self, key: str, value: Value) -> None:
        """One task entry in one statement (its own transaction): the write every executed
        task makes. Retried while another process holds the database's write lock."""
        while True:
            try:
                self._cache._sql(_PUT_ENTRY, (key, value))
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise

    def _upsert(self, key: str, value: Value) -> bool:
        """Write a small bytes value as ``Cache.set`` would, in one statement (see
        ``_put_one``); False when ``set`` must do it (a big value, a str, an old value in a
        file). Inside ``transact`` too: a partial re-run's first write is three values at once
        (entry, superseded output, mark), and ``set`` spent four statements on each."""
        if type(value) is not bytes or len(value) >= self._min_file_size:
            return False
        now = time.time()
        cursor = self._cache._con.execute(_UPSERT, (key, now, now, value))
        return bool(cursor.rowcount == 1)

    def _put_one(self, key: str, value: Value) -> None:
        """``Cache.set`` in one SQL statement where that is the same thing.

        Completing a task writes one small entry; ``Cache.set`` spends four statements on it
        (BEGIN, SELECT the old row, INSERT or UPDATE, COMMIT), which made it a fifth slower than
        this upsert. The row is exactly what ``set`` writes for a small bytes value (diskcache's
        own triggers keep its count and size), so diskcache reads it as its own. A row whose old
        value lives in a file is left to ``set``, which also removes that file.
        """
        try:
            if self._upsert(key, value):
                return
        except sqlite3.OperationalError:  # locked beyond the timeout: set() retries
            pass
        self._cache.set(key, value, retry=True)

    def scan(self, prefix: str) -> dict[str, Value | Lazy]:
        if prefix.startswith(ENTRY_PREFIX):  # a run's task entries: one range read, all bytes
            with self._reading:
                return dict(
                    self._cache._sql(
                        _SCAN_ENTRIES, (len(prefix) + 1, prefix, _after_prefix(prefix))
                    ).fetchall()
                )
        # diskcache has no range read; one SELECT over the index it keeps on its keys replaces
        # one round trip per task (SPEC: replay is one bulk read). SQLite cuts the prefix off
        # and dict() builds the result without a Python step per row: this is most of the
        # cost of reading a run of 10,000 tasks. The rare value that is not a small str/bytes
        # (a big one in a file, or one someone else pickled there) comes back as NULL and is
        # then read on its own: file-backed ones only when asked for.
        with self._reading:
            found: dict[str, Value | Lazy] = dict(
                self._cache._sql(
                    "SELECT substr(key, ?), CASE WHEN filename IS NULL AND mode = ? THEN value "
                    "END FROM Cache WHERE key >= ? AND key < ?",
                    (len(prefix) + 1, _MODE_RAW, prefix, _after_prefix(prefix)),
                ).fetchall()
            )
            disk = self._cache.disk
            for rest in [rest for rest, value in found.items() if value is None]:
                row = self._cache._sql(
                    "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1",
                    (prefix + rest,),
                ).fetchone()
                if row is None:  # deleted since the first read
                    del found[rest]
                elif row[1] is None:
                    found[rest] = disk.fetch(row[0], None, row[2], False)
                else:
                    found[rest] = _file_loader(disk, row[0], row[1])
        return found

    def scan_as(
        self, prefix: str, convert: Callable[[Value | Lazy], T], only: Container[str] | None = None
    ) -> dict[str, T]:
        if not prefix.startswith(ENTRY_PREFIX):
            return scan_as_dict(self.scan(prefix), convert, only)
        # A run's task entries, row by row from the cursor: the converted values are kept, the
        # whole ones let go as the next row is read, through a small page cache (see
        # ``_PAGE_CACHE_KIB``).
        cache: Any = self._cache
        sql = cache._sql
        bounds = (len(prefix) + 1, prefix, _after_prefix(prefix))
        with self._reading:
            sql(f"PRAGMA cache_size = -{_PAGE_CACHE_KIB}")
            try:
                rows = sql(_SCAN_ENTRIES, bounds)
                if only is None:
                    found = {rest: convert(value) for rest, value in rows}
                else:
                    found = {rest: convert(value) for rest, value in rows if rest in only}
            finally:
                sql(f"PRAGMA cache_size = {cache.sqlite_cache_size}")
            if len(found) >= _UNMAP_AFTER_ENTRIES and cache.sqlite_mmap_size:
                sql("PRAGMA mmap_size = 0")  # unmaps the file: see _PAGE_CACHE_KIB
                sql(f"PRAGMA mmap_size = {cache.sqlite_mmap_size}")
        return found

    def delete(self, key: str) -> None:
        if key.startswith(ENTRY_PREFIX):
            self.write([], [key])
            return
        with self._writing:
            self._cache.delete(key, retry=True)

    def put_file(self, key: str, write: Callable[[IO[bytes]], object]) -> None:
        """Write a file in diskcache's own place for big values, then its row, as
        ``Cache.set`` would have for bytes that size (so deleting the key removes the file).
        A crash before the row is committed leaves an unreferenced file, never a row whose
        file is short."""
        disk = self._cache.disk
        filename, full_path = disk.filename(key)
        with self._writing:
            Path(full_path).parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(full_path, "xb") as file:
                    write(file)
                    size = file.tell()
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(full_path)
                raise
            columns = (None, None, size, _MODE_BINARY, filename, None)
            now = time.time()
            cache: Any = self._cache
            with cache._transact(True, filename) as (sql, cleanup):
                rows = sql(
                    "SELECT rowid, filename FROM Cache WHERE key = ? AND raw = 1", (key,)
                ).fetchall()
                if rows:
                    ((rowid, old_filename),) = rows
                    cleanup(old_filename)
                    cache._row_update(rowid, now, columns)
                else:
                    cache._row_insert(key, True, now, columns)

    def file_of(self, key: str) -> Path | Value | None:
        if key.startswith(ENTRY_PREFIX):  # never in a file
            return self.get(key)
        with self._reading:  # one query: the file's name, or the value itself
            row = self._cache._sql(
                "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1", (key,)
            ).fetchone()
            if row is None:
                return None
            mode, filename, stored = row
            if filename is not None:
                return Path(self.location, filename)
            value: Value = self._cache.disk.fetch(mode, None, stored, False)
            return value

    def move_entries_out_of_cache(self) -> int:
        """Store format 2 kept task entries in diskcache's Cache table; move them into
        ``ENTRY_TABLE``, in one transaction (a second process doing the same finds none left).
        Returns how many moved."""
        with self._writing, self._cache.transact(retry=True):
            start, end = ENTRY_PREFIX, _after_prefix(ENTRY_PREFIX)
            keys = [
                key
                for (key,) in self._cache._sql(
                    "SELECT key FROM Cache WHERE key >= ? AND key < ? AND raw = 1", (start, end)
                ).fetchall()
            ]
            for key in keys:
                value = self._cache.get(key, default=None, retry=True)
                if isinstance(value, (bytes, str)):
                    self._cache._sql(_PUT_ENTRY, (key, value))
                self._cache.delete(key, retry=True)  # removes a big entry's file too
        return len(keys)

    @contextlib.contextmanager
    def lock(self, name: str, *, remove: bool = False) -> Iterator[None]:
        with self._mutex:
            thread_lock = self._thread_locks.setdefault(name, threading.Lock())
        path = Path(self.location, "locks", f"{name}.lock")
        with thread_lock, file_lock(path, remove=remove):
            yield

    def close(self) -> None:
        self._cache.close()


def is_url(store: object) -> bool:
    """A ``postgresql://`` (or ``postgres://``) store URL, as opposed to a directory."""
    return isinstance(store, str) and store.startswith(("postgresql://", "postgres://"))


def _after_prefix(prefix: str) -> str:
    """The smallest string above every string starting with ``prefix`` (keys compare by code
    point in Python and by UTF-8 bytes in SQLite: the same order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def scan_as_dict(
    found: dict[str, Value | Lazy],
    convert: Callable[[Value | Lazy], T],
    only: Container[str] | None,
) -> dict[str, T]:
    """``Backend.scan_as`` from a ``scan``'s result (a backend that reads a range whole)."""
    return {rest: convert(v) for rest, v in found.items() if only is None or rest in only}


# Reading a run's task entries (``DiskBackend.scan_as``): diskcache gives each connection a
# 32 MiB page cache and a 64 MiB memory map of the database, and both keep what one read
# touched: reading the entries of a run of 100,000 tasks left ~85 MiB of the file resident in
# the process (issue 16), for rows read once and kept, converted, in Python. So the pages past
# the map go through a 1 MiB cache, and after a read of many entries the map is dropped (SQLite
# maps the file again at once, its pages resident only as later reads touch them; after a few
# entries there is little to let go, and the remapping cost an execution ~10 µs). The read
# itself still goes through the map: reading every page through the cache instead took 15-20%
# longer (100,000 entries, a fresh process). The connection's settings are restored to what
# diskcache set (its settings ``sqlite_cache_size`` and ``sqlite_mmap_size``).
_PAGE_CACHE_KIB = 1024
_UNMAP_AFTER_ENTRIES = 1000


def _as_value(stored: object) -> Value:
    """A value as read from SQLite: bytes (or text) as stored; anything else someone put there
    comes back as text, which no reader takes for an entry."""
    return stored if isinstance(stored, (bytes, str)) else repr(stored)


def _file_loader(disk: Any, mode: int, filename: str) -> Lazy:
    def load() -> Value:
        value: Value = disk.fetch(mode, filename, None, False)
        return value

    return load


class _StoreErrors:
    """Turns SQLite and OS failures into a StoreError naming the directory and the fix.

    A class rather than a generator-based context manager: it wraps every read and write, and
    ``contextlib.contextmanager`` cost ~1.5 µs each time. Stateless, so one per action is reused.
    """

    __slots__ = ("action", "location")

    def __init__(self, location: str, action: str) -> None:
        self.location, self.action = location, action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if isinstance(error, (sqlite3.Error, OSError)) and not isinstance(error, StoreError):
            raise StoreError(
                f"cannot {self.action} the trigger_nb store at {self.location}: {error}. Check "
                f"that the directory is writable and the disk is not full, or set {DIR_ENV_VAR} "
                "to another directory"
            ) from error
