"""Where runs, tasks, logs and outputs persist.

``Store`` holds the record logic once, over a tiny ordered key/value backend (see
``trigger_nb._store.backend``): ``DiskStore`` puts it on diskcache, ``MemoryStore`` on dicts,
``PostgresStore`` on a PostgreSQL server (``trigger_nb._store.postgres``). Layout
(every key is a string; ``R`` a run id, ``T`` a task id)::

    __format__          the store-format version
    r:R                 run record (JSON)                         } run_records.py
    ro:R                sealed run output                         }
    x:R                 a request to cancel the run               }
    t:R:T               task entry: record + small output, sealed } task_entries.py
    o:R:T               big task output, sealed  <- iff the entry says so (see sealed.py)
    c:R:T:N             what attempt N printed and displayed (JSON events, sealed), iff
                        the attempt record says ``captured``
    l:R:E:S             log record (JSON), execution E, seq S     }
    f:R:T               refresh mark: T runs again next execution }
    h:R:T:N             output of attempt N, superseded, sealed   }

A run's keys of one kind share a prefix, so a replay reads all of its task entries in one range
read (run ids never contain ``:``, see ``trigger_nb._client.job``, so no run's prefix covers
another's).
"""

from __future__ import annotations

import os
import threading

from trigger_nb._store.backend import (
    DIR_ENV_VAR,
    STORE_ENV_VAR,
    Backend,
    DiskBackend,
    MemoryBackend,
    is_url,
)
from trigger_nb._store.run_records import RunRecords
from trigger_nb._store.task_entries import TaskEntries
from trigger_nb.errors import StoreVersionError

# 3: a diskcache store keeps its task entries in a table of their own (see backend.ENTRY_TABLE);
# the entries themselves are written as in 2, so a store of format 2 is upgraded when opened.
FORMAT_VERSION = 3
_UPGRADABLE = "2"
DEFAULT_DIR = ".trigger_nb"


class Store(RunRecords, TaskEntries):
    """Runs, tasks, logs and outputs over a backend. Use ``DiskStore`` or ``MemoryStore``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._held = threading.local()
        self._check_format()

    def _check_format(self) -> None:
        found = self.backend.get("__format__")
        if found is None:
            self.backend.write([("__format__", str(FORMAT_VERSION))])
        elif found == _UPGRADABLE:
            if isinstance(self.backend, DiskBackend):
                self.backend.move_entries_out_of_cache()
            self.backend.write([("__format__", str(FORMAT_VERSION))])
        elif found != str(FORMAT_VERSION):
            older = isinstance(found, str) and found.isdigit() and int(found) < FORMAT_VERSION
            on_disk = isinstance(self.backend, DiskBackend)
            where = "that directory" if on_disk else "that store (its schema)"
            elsewhere = (
                "point TRIGGER_NB_DIR elsewhere"
                if on_disk
                else "use another store (another ?schema= in the URL, or TRIGGER_NB_STORE)"
            )
            fix = (
                f"an earlier trigger_nb wrote it: delete {where} to start afresh (its runs "
                f"cannot be read by this version), or {elsewhere}"
                if older
                else f"upgrade trigger_nb, or {elsewhere}"
            )
            raise StoreVersionError(
                f"store {self.location} has format version {found!r}, this trigger_nb reads "
                f"version {FORMAT_VERSION}: {fix}"
            )

    def close(self) -> None:
        self.backend.close()


def default_directory() -> str:
    """The default diskcache directory: ``$TRIGGER_NB_STORE`` when it names a directory (it
    sets the default everywhere), else ``$TRIGGER_NB_DIR``, else ``./.trigger_nb``."""
    store = os.environ.get(STORE_ENV_VAR)
    if store and not is_url(store):
        return store
    return os.environ.get(DIR_ENV_VAR) or DEFAULT_DIR


class DiskStore(Store):
    """The persistent store: diskcache in ``directory`` (default ``$TRIGGER_NB_DIR`` or
    ``./.trigger_nb``)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        super().__init__(DiskBackend(directory if directory is not None else default_directory()))


class PostgresStore(Store):
    """The shared store: ``postgresql://user@host:port/db`` (``?schema=NAME`` picks the schema
    holding its tables, default ``trigger_nb``, so one database can hold several stores). Needs
    psycopg 3: ``pip install 'trigger_nb[postgres]'``. ``create=False``: a store that does not
    exist yet is a ``NotFoundError`` instead of being created."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        from trigger_nb._store.postgres import PostgresBackend

        backend = PostgresBackend(url, create=create)
        try:
            super().__init__(backend)
        except BaseException:  # a store of an unknown format: do not leak its connection
            backend.close()
            raise


class MemoryStore(Store):
    """An in-memory store: the same semantics, gone with the process."""

    def __init__(self) -> None:
        super().__init__(MemoryBackend())


def default_store() -> str:
    """Where the default store is: ``$TRIGGER_NB_STORE`` (a URL or a directory), else
    ``$TRIGGER_NB_DIR``, else ``./.trigger_nb``."""
    return os.environ.get(STORE_ENV_VAR) or default_directory()


def open_store(store: Store | str | os.PathLike[str] | None, *, create: bool = True) -> Store:
    """A Store from ``store=``: a Store, a ``postgresql://`` URL, a directory, or None for the
    default (``default_store``). ``create=False``: a store that does not exist is a
    ``NotFoundError`` (PostgreSQL; directories are checked by the command line)."""
    if isinstance(store, Store):
        return store
    where = default_store() if store is None else store
    if is_url(where):
        return PostgresStore(str(where), create=create)
    return DiskStore(where)


def describe_store(store: Store) -> str:
    """Which store this is, in words: what ``%trigger_cache info`` and the CLI say."""
    backend = store.backend
    if isinstance(backend, DiskBackend):
        return f"diskcache store at {store.location}"
    if isinstance(backend, MemoryBackend):
        return "in-memory store (gone with the process)"
    if type(backend).__name__ == "PostgresBackend":  # not imported here: psycopg is optional
        return f"PostgreSQL store {store.location}"
    return f"{type(backend).__name__} store at {store.location}"
