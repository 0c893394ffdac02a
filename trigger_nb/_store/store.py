"""Where runs, tasks, logs and outputs persist.

``Store`` holds the record logic once, over a tiny ordered key/value backend (see
``trigger_nb._store.backend``): ``DiskStore`` puts it on diskcache, ``MemoryStore`` on dicts. Layout
(every key is a string; ``R`` a run id, ``T`` a task id)::

    __format__          the store-format version
    r:R                 run record (JSON)                         } run_records.py
    ro:R                sealed run output                         }
    x:R                 a request to cancel the run               }
    t:R:T               task entry: record + small output, sealed } task_entries.py
    o:R:T               big task output, sealed  <- iff the entry says so (see sealed.py)
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

from trigger_nb._store.backend import DIR_ENV_VAR, Backend, DiskBackend, MemoryBackend
from trigger_nb._store.run_records import RunRecords
from trigger_nb._store.task_entries import TaskEntries
from trigger_nb.errors import StoreVersionError

FORMAT_VERSION = 2
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

    def close(self) -> None:
        self.backend.close()


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
