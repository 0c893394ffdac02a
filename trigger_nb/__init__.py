"""trigger_nb: make Jupyter notebooks safe to re-run.

Every side effect goes through ``io.run_task(cache_key, fn)``; re-running a cell replays completed
tasks from a local store instead of repeating them. This module only re-exports the public API;
it must not import IPython or ipywidgets (the CLI and scripts stay fast).
"""

from __future__ import annotations

from typing import Any

from trigger_nb import retry
from trigger_nb.clock import FakeClock, SystemClock
from trigger_nb.errors import (
    CacheReadError,
    DuplicateCacheKeyError,
    InvalidCacheKeyError,
    InvalidOptionError,
    InvalidPayloadError,
    JobDefinitionError,
    NotFoundError,
    RunBusyError,
    StoreError,
    StoreVersionError,
    TaskError,
    TaskOutputError,
    TaskTimeoutError,
    TriggerNbError,
)
from trigger_nb.integration import Integration
from trigger_nb.io import IO
from trigger_nb.job import (
    EventTrigger,
    Job,
    TriggerClient,
    default_client,
    event_trigger,
    send_event,
)
from trigger_nb.model import RunStatus, TaskStatus
from trigger_nb.retry import SKIP_RETRYING, RetryAt, RetryOptions
from trigger_nb.run import Context, JobRun, TaskView
from trigger_nb.store import DiskStore, MemoryStore, Store

__version__ = "0.1.0"


def list_runs(
    job: str | None = None, status: str | None = None, *, store: Store | str | None = None
) -> list[JobRun]:
    """Past runs in a store (default: the notebook's), newest first."""
    client = default_client() if store is None else TriggerClient("explorer", store=store)
    return client.list_runs(job=job, status=status)


def load_run(run_id: str, *, store: Store | str | None = None) -> JobRun:
    """One past run by id (or a unique prefix of it)."""
    client = default_client() if store is None else TriggerClient("explorer", store=store)
    return client.load_run(run_id)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext trigger_nb``: register the magics (IPython is imported only now)."""
    from trigger_nb.magic import load_ipython_extension as load

    load(ipython)


__all__ = [
    "IO",
    "SKIP_RETRYING",
    "CacheReadError",
    "Context",
    "DiskStore",
    "DuplicateCacheKeyError",
    "EventTrigger",
    "FakeClock",
    "Integration",
    "InvalidCacheKeyError",
    "InvalidOptionError",
    "InvalidPayloadError",
    "Job",
    "JobDefinitionError",
    "JobRun",
    "MemoryStore",
    "NotFoundError",
    "RetryAt",
    "RetryOptions",
    "RunBusyError",
    "RunStatus",
    "Store",
    "StoreError",
    "StoreVersionError",
    "SystemClock",
    "TaskError",
    "TaskOutputError",
    "TaskStatus",
    "TaskTimeoutError",
    "TaskView",
    "TriggerClient",
    "TriggerNbError",
    "__version__",
    "default_client",
    "event_trigger",
    "list_runs",
    "load_ipython_extension",
    "load_run",
    "retry",
    "send_event",
]
