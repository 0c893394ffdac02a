"""``PostgresBackend``: the store on a PostgreSQL server, shared by kernels on many machines.

The tables, the URL and the SQL: ``trigger_nb._store.postgres_schema``.

Why chunks: a bytea value is limited to 1 GB and would be sent as one parameter and received as
one result (libpq's buffer plus Python's bytes: twice the value). Chunks are written from
slices of the value and read one at a time into a temporary file, then read back as one bytes
object: a 1 GB value needs about 1 GB of client memory, not 2.

Run locks are session-level advisory locks, each held on a connection of its own: the server
releases them when that connection ends, whether the kernel closed it, was killed (the socket
closes) or its machine vanished (TCP keepalives, set on lock connections, end the session within
about a minute). Reads, and writes of keys no held lock covers, go through one autocommit
connection guarded by a mutex: one statement is one transaction, a multi-key write is one
explicit transaction. Any failure is a ``StoreError`` naming the server and what to do. A main
connection found dead is reopened and the call made once more (every statement here is
idempotent), so a server restart between two executions goes unnoticed.

**A held run is written through its lock's own session.** Every write of a run's keys (``t:R:...``,
``r:R``...) while this process holds the run's lock goes through the connection that holds the
lock, so the server itself makes "completed" and "locked" one fact: a session that has ended
(a server restart, a network cut, an administrator's ``pg_terminate_backend``) can commit
nothing, and a session that commits still holds its session-level lock (the server releases it
only when the session exits, after any commit in flight). Another kernel that took the run after
the session ended therefore never finds a completion this one recorded without the lock, and
this execution learns of the loss at its very next write, for free: no extra statement, no poll
of the lock's socket per task. That run is then *lost*: the failed write and every later write
of its keys are refused with a StoreError naming the run, until the execution lets go of the
lock. The task in flight fails with that error, nothing it or a later task of this execution
does is recorded, and the next execution takes the lock again and continues (completed tasks
replay, the interrupted one runs again: at-least-once, SPEC 3.1).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from trigger_nb._store.backend import Lazy, T, Value, _after_prefix, scan_as_dict
from trigger_nb._store.postgres_schema import (
    SCHEMA_VERSION,
    load_psycopg,
    lock_key,
    split_url,
    statements,
)
from trigger_nb.errors import NotFoundError, StoreError, StoreVersionError

# Values above this size are stored as chunk rows of this size (and read lazily by a scan).
CHUNK_BYTES = 1024 * 1024
POLL_SECONDS = 0.02
_PUT_NAME = b"trigger_nb_put_small"
_TEXT_BINARY = [0, 1]  # its parameters' formats: the key as text, the value as binary
_T = TypeVar("_T")
# What a lock connection asks the server: notice a vanished client (a machine switched off, a
# cut network) within about a minute and end its session, releasing its locks.
# An idle lock session must never be ended by the server's idle timeouts either.
_LOCK_OPTIONS = (
    "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3 "
    "-c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0"
)


class PostgresBackend:
    """The store's keys and values in PostgreSQL tables (see the module docstring)."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self._psycopg = load_psycopg()
        self._conninfo, self.schema, self.location = split_url(url)
        self._server = self.location.split("?", 1)[0]
        self._mutex = threading.RLock()
        self._conn: Any = None
        # The connections (main or lock) on which the small-put statement is prepared: a
        # prepared statement lives and dies with its session.
        self._put_prepared: weakref.WeakSet[Any] = weakref.WeakSet()
        self._command_ok = self._psycopg.pq.ExecStatus.COMMAND_OK
        self._idle_lock_conns: list[Any] = []
        self._held: dict[str, Any] = {}  # run (lock name) -> the connection holding its lock
        self._lost: set[str] = set()  # held runs whose lock session ended (module docstring)
        self._spool_dir: str | None = None  # big values read as files (``file_of``)
        self._sql = statements(self._psycopg, self.schema)
        self._put_small_sql = (
            f'INSERT INTO "{self.schema}".entry (key, data) VALUES ($1, $2) ON CONFLICT (key) '
            f'DO UPDATE SET data = excluded.data, is_text = false WHERE "{self.schema}".entry.size '
            "IS NULL"
        ).encode()
        try:
            with self._errors("open"):
                self._prepare(create)
        except BaseException:
            self.close()
            raise

    # --- connections and errors ----------------------------------------------------------

    def _connect(self, options: str = "") -> Any:
        kwargs: dict[str, Any] = {"autocommit": True, "application_name": "trigger_nb"}
        if "connect_timeout" not in self._conninfo:
            kwargs["connect_timeout"] = 10
        if options:
            kwargs["options"] = options
        return self._psycopg.connect(self._conninfo, **kwargs)

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """psycopg failures as a StoreError (see ``_store_error``)."""
        try:
            yield
        except self._psycopg.Error as error:
            raise self._store_error(error, action, self._drop_if_dead()) from error

    def _retrying(
        self, action: str, call: Callable[..., _T], keys: Iterable[str] = (), *args: Any
    ) -> _T:
        """``call(connection, *args)`` under the mutex, on the connection ``keys`` are written
        through (``_writer``; a read has no keys: the main connection).

        On the main connection, one found dead (a server restart while the kernel was idle, a
        network cut) is reopened and ``call`` made once more: every read and write here is
        idempotent (an upsert of the same value, a delete), so a statement that did commit
        before the cut is harmless to repeat. On a lock's connection nothing is repeated: a
        session that died took the run's lock with it (``_failed_under_lock``)."""
        with self._mutex:
            run, conn = self._writer(keys)
            if conn is not None:
                try:
                    return call(conn, *args)
                except self._psycopg.Error as error:
                    raise self._failed_under_lock(run, conn, error, action) from error
            for attempt in (1, 2):
                try:
                    return call(self._connection(), *args)
                except self._psycopg.Error as error:
                    dead = self._drop_if_dead()
                    if attempt == 2 or not dead:
                        raise self._store_error(error, action, dead) from error
        raise AssertionError("unreachable")  # pragma: no cover

    def _writer(self, keys: Iterable[str]) -> tuple[str, Any]:
        """``(run, the connection holding its lock)`` if a key belongs to a run this process
        holds, else ``("", None)`` (the main connection). StoreError if that run is lost."""
        if self._held:
            for key in keys:
                run = _run_of(key)
                conn = self._held.get(run)
                if conn is not None:
                    if run in self._lost:
                        raise self._lost_error(run, None)
                    return run, conn
        return "", None

    def _failed_under_lock(self, run: str, conn: Any, error: Exception, action: str) -> Exception:
        """A write through ``run``'s lock connection failed: the run is lost if that session
        ended (nothing of it committed), else it is an ordinary store error."""
        if not conn.closed:
            return self._store_error(error, action, False)
        self._lost.add(run)
        return self._lost_error(run, error)

    def _lost_error(self, run: str, error: Exception | None) -> StoreError:
        reason = "" if error is None else f" ({' '.join(str(error).split())})"
        return StoreError(
            f"run {run} lost its lock on the PostgreSQL server at {self._server}: the session "
            f"holding it ended{reason} (a server restart, a network failure, or an administrator "
            "ending it with pg_terminate_backend), so another kernel may execute the run now; "
            "this execution records nothing more (the task in flight is not recorded as "
            "completed); check that the server is running and reachable, then execute again: "
            "completed tasks replay, and the interrupted one runs again"
        )

    def _drop_if_dead(self) -> bool:
        """Drop the main connection if it is dead (True)."""
        conn = self._conn
        if conn is not None and not conn.closed:
            return False
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
            self._conn = None
        return True

    def _store_error(self, error: Exception, action: str, dead: bool) -> StoreError:
        """A psycopg failure as a StoreError naming the server and the fix."""
        reason = " ".join(str(error).split()) or type(error).__name__
        if dead or isinstance(error, self._psycopg.OperationalError):
            fix = (
                "check that the server is running and reachable, then execute again: "
                "completed tasks replay, and nothing unfinished was recorded as completed"
            )
        else:
            fix = "check the server's log and the database user's rights on this schema"
        return StoreError(
            f"cannot {action} the trigger_nb store on PostgreSQL at {self.location}: "
            f"{reason}; {fix}"
        )

    def _prepare(self, create: bool) -> None:
        sql, conn = self._sql, self._connection()
        found = conn.execute(sql["find_meta"], (self.schema,)).fetchone()
        if found is None:
            if not create:
                raise NotFoundError(
                    f"no trigger_nb store at {self.location}: the schema {self.schema!r} does "
                    "not exist in that database; check the URL and its ?schema="
                )
            with conn.transaction():
                # Two kernels creating the same store at once: the second waits here, then
                # finds the tables made (IF NOT EXISTS) and the version written.
                conn.execute(sql["create_lock"], (lock_key(self.schema, "__schema__"),))
                for statement in sql["create"]:
                    conn.execute(statement)
                conn.execute(sql["put_version"], (str(SCHEMA_VERSION),))
        row = conn.execute(sql["get_version"]).fetchone()
        version = None if row is None else row[0]
        if version != str(SCHEMA_VERSION):
            raise StoreVersionError(
                f"store {self.location} has PostgreSQL schema version {version!r}, this "
                f"trigger_nb uses version {SCHEMA_VERSION}: upgrade trigger_nb, or use another "
                "schema (?schema=NAME in the URL) for this version's runs"
            )

    # --- Backend -------------------------------------------------------------------------

    def get(self, key: str) -> Value | None:
        return self._retrying("read", lambda conn: self._get(conn, key))

    def _get(self, conn: Any, key: str) -> Value | None:
        row = conn.execute(self._sql["get"], (key,), binary=True).fetchone()
        if row is None:
            return None
        data, is_text, size = row
        if size is not None:
            return self._get_big(conn, key)
        return data.decode("utf-8", "surrogatepass") if is_text else data  # type: ignore[no-any-return]

    def write(
        self,
        puts: Sequence[tuple[str, Value]],
        deletes: Sequence[str] = (),
        prefixes: Sequence[str] = (),
    ) -> None:
        if len(puts) == 1 and not deletes and not prefixes:
            key, value = puts[0]
            if type(value) is bytes and len(value) <= CHUNK_BYTES:
                # What every completed task costs: one statement (see ``_put_small``).
                self._retrying("write", self._put_one, (key,), key, value)
                return
        keys = [*(key for key, _ in puts), *deletes, *prefixes]
        self._retrying("write", lambda conn: self._write_many(conn, puts, deletes, prefixes), keys)

    def _put_one(self, conn: Any, key: str, value: bytes) -> None:
        # A row holding a big (chunked) value is left alone by the upsert: the transaction
        # then replaces it and drops its chunks.
        if not self._put_small(conn, key, value):
            self._write_many(conn, [(key, value)], (), ())

    def _put_small(self, conn: Any, key: str, value: bytes) -> bool:
        """Upsert one small bytes value; False if the row holds a chunked value.

        The statement every completed task costs, so it goes straight to libpq: prepared once
        per connection, executed with the key as text and the value as binary. psycopg's
        ``execute`` spent about a quarter of this call's time on its own bookkeeping (a cursor,
        parameter adaptation, the result's description). libpq releases the GIL while it waits.
        """
        pgconn = conn.pgconn
        if conn not in self._put_prepared:
            result = pgconn.prepare(_PUT_NAME, self._put_small_sql)
            if result.status != self._command_ok:
                raise self._psycopg.errors.error_from_result(result)
            self._put_prepared.add(conn)
        result = pgconn.exec_prepared(
            _PUT_NAME, [key.encode("utf-8", "surrogatepass"), value], _TEXT_BINARY
        )
        if result.status != self._command_ok:
            raise self._psycopg.errors.error_from_result(result)
        return bool(result.command_tuples == 1)

    def _write_many(
        self,
        conn: Any,
        puts: Sequence[tuple[str, Value]],
        deletes: Sequence[str],
        prefixes: Sequence[str],
    ) -> None:
        sql = self._sql
        with conn.transaction():
            for prefix in prefixes:
                bounds = (prefix, _after_prefix(prefix))
                conn.execute(sql["delete_range_chunks"], bounds)
                conn.execute(sql["delete_range"], bounds)
            if deletes:
                conn.execute(sql["delete_chunks"], (list(deletes),))
                conn.execute(sql["delete"], (list(deletes),))
            for key, value in puts:
                data, is_text = _as_bytes(value)
                if len(data) <= CHUNK_BYTES:
                    conn.execute(sql["put_one"], (key, key, data, is_text), prepare=True)
                else:
                    self._write_big(conn, key, data, is_text)

    def _write_big(self, conn: Any, key: str, data: bytes, is_text: bool) -> None:
        """A big value as chunk rows, each sent from a slice of the value (no second copy)."""
        sql = self._sql
        conn.execute(sql["put_big"], (key, key, is_text, len(data)))
        view = memoryview(data)
        with conn.cursor() as cursor:
            for seq, start in enumerate(range(0, len(data), CHUNK_BYTES)):
                cursor.execute(sql["put_chunk"], (key, seq, view[start : start + CHUNK_BYTES]))

    def _get_big(self, conn: Any, key: str) -> Value:
        """A chunked value, read in one snapshot, chunk by chunk through a temporary file so the
        chunks and the whole value are never in memory together."""
        sql = self._sql
        with conn.transaction(), tempfile.TemporaryFile() as spool:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = conn.execute(sql["get"], (key,), binary=True).fetchone()
            if row is None:
                raise StoreError(f"value {key!r} vanished from {self.location}")
            data, is_text, size = row
            if size is not None:  # else made small since it was listed
                self._copy_chunks(conn, key, size, spool)
                spool.seek(0)
                data = spool.read()
        return data.decode("utf-8", "surrogatepass") if is_text else data  # type: ignore[no-any-return]

    def scan(self, prefix: str) -> dict[str, Value | Lazy]:
        start = len(prefix)
        bounds = (prefix, _after_prefix(prefix))
        rows = self._retrying(
            "read", lambda conn: conn.execute(self._sql["scan"], bounds, binary=True).fetchall()
        )
        found: dict[str, Value | Lazy] = {}
        for key, data, is_text, size in rows:
            if size is not None:
                found[key[start:]] = self._loader(key)
            elif is_text:
                found[key[start:]] = data.decode("utf-8", "surrogatepass")
            else:
                found[key[start:]] = data
        return found

    def scan_as(
        self, prefix: str, convert: Callable[[Value | Lazy], T], only: Container[str] | None = None
    ) -> dict[str, T]:
        # Read whole, then converted: the range arrives as one result set anyway.
        return scan_as_dict(self.scan(prefix), convert, only)

    def _loader(self, key: str) -> Lazy:
        return lambda: self._retrying("read", lambda conn: self._get_big(conn, key))

    def delete(self, key: str) -> None:
        self.write([], deletes=[key])

    def put_file(self, key: str, write: Callable[[IO[bytes]], object]) -> None:
        """A value written as a file (a big output): spooled to a temporary file, then sent
        as chunk rows read back from it, so the value is never whole in memory."""
        with tempfile.TemporaryFile() as spool:
            write(spool)
            size = spool.tell()

            def put(conn: Any) -> None:
                sql = self._sql
                with conn.transaction():
                    conn.execute(sql["put_big"], (key, key, False, size))
                    spool.seek(0)
                    with conn.cursor() as cursor:
                        for seq, chunk in enumerate(iter(lambda: spool.read(CHUNK_BYTES), b"")):
                            cursor.execute(sql["put_chunk"], (key, seq, chunk))

            self._retrying("write", put, (key,))

    def file_of(self, key: str) -> Path | Value | None:
        """A chunked value comes as a file: its chunks are copied, one at a time, to a
        temporary file kept until the store is closed (a mapped output reads from it)."""
        row = self._retrying("read", lambda conn: conn.execute(self._sql["get"], (key,)).fetchone())
        if row is None:
            return None
        if row[2] is None:
            return self.get(key)
        with self._mutex:
            if self._spool_dir is None:
                self._spool_dir = tempfile.mkdtemp(prefix="trigger-nb-pg-")
            directory = self._spool_dir
        spool = Path(tempfile.mkstemp(dir=directory, suffix=".val")[1])

        def copy(conn: Any) -> None:
            sql = self._sql
            with conn.transaction(), open(spool, "wb") as file:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                found = conn.execute(sql["get"], (key,), binary=True).fetchone()
                if found is None or found[2] is None:
                    raise StoreError(f"value {key!r} changed in {self.location} while read")
                self._copy_chunks(conn, key, found[2], file)

        self._retrying("read", copy)
        return spool

    def _copy_chunks(self, conn: Any, key: str, size: int, file: IO[bytes]) -> None:
        """The chunks of a big value, in order, to ``file`` (inside the caller's snapshot)."""
        seq = 0
        while file.tell() < size:
            chunk = conn.execute(self._sql["get_chunk"], (key, seq), binary=True).fetchone()
            if chunk is None:
                raise StoreError(
                    f"value {key!r} in {self.location} is missing chunk {seq}: clear "
                    "that run (`trigger-nb clear --run RUN_ID`)"
                )
            file.write(chunk[0])
            seq += 1

    @contextlib.contextmanager
    def lock(self, name: str, *, remove: bool = False) -> Iterator[None]:
        """A session-level advisory lock on a connection of its own, through which every write
        of the run ``name``'s keys then goes (see the module docstring); polled, so Ctrl-C
        still stops a kernel waiting for it. ``remove`` has nothing to remove: an advisory lock
        leaves nothing behind."""
        key = lock_key(self.schema, name)
        conn = self._acquire(name, key)
        with self._mutex:
            self._held[name] = conn
        try:
            yield
        finally:
            with self._mutex:  # no write of the run is using the connection meanwhile
                self._held.pop(name, None)
                self._lost.discard(name)
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                except self._psycopg.Error:
                    conn.close()  # the session is gone, and its lock with it
                else:
                    self._idle_lock_conns.append(conn)

    def _acquire(self, name: str, key: int) -> Any:
        """A connection holding the advisory lock ``key``, once its holder lets go."""
        told = False
        conn, pooled = self._lock_connection()
        try:
            while True:
                try:
                    if conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                        return conn
                except self._psycopg.Error as error:
                    conn.close()
                    if not pooled:
                        raise self._store_error(error, "lock a run in", True) from error
                    conn, pooled = self._lock_connection()  # an idle session died: a new one
                    continue
                if not told:
                    print(
                        f"trigger_nb: {name} is executing in another process or kernel on "
                        f"{self._server}; waiting for it to finish",
                        file=sys.stderr,
                    )
                    told = True
                time.sleep(POLL_SECONDS)
        except BaseException:
            conn.close()
            raise

    def _lock_connection(self) -> tuple[Any, bool]:
        """``(connection, whether it was idle in the pool)`` for holding a lock."""
        with self._mutex:
            while self._idle_lock_conns:
                conn = self._idle_lock_conns.pop()
                if not conn.closed and not conn.broken:
                    return conn, True
        try:
            return self._connect(_LOCK_OPTIONS), False
        except self._psycopg.Error as error:
            raise self._store_error(error, "connect to", True) from error

    def close(self) -> None:
        with self._mutex:
            for conn in [*self._idle_lock_conns, self._conn]:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._idle_lock_conns.clear()
            self._conn = None
            if self._spool_dir is not None:  # a mapping of a file in it stays valid
                shutil.rmtree(self._spool_dir, ignore_errors=True)
                self._spool_dir = None


def _run_of(key: str) -> str:
    """The run a key belongs to: keys are ``KIND:RUN`` or ``KIND:RUN:REST`` (run ids never
    hold ``:``); "" for a key of no run (``__format__``)."""
    start = key.find(":") + 1
    if not start:
        return ""
    end = key.find(":", start)
    return key[start:] if end < 0 else key[start:end]


def _as_bytes(value: Value) -> tuple[bytes, bool]:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass"), True
    return value, False
