"""trigger_nb: make Jupyter notebooks safe to re-run.

Every side effect goes through ``io.run_task(cache_key, fn)``; re-running a cell replays completed
tasks from a local store instead of repeating them. This module only re-exports the public API;
it must not import IPython or ipywidgets (the CLI and scripts stay fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Light modules load at once (no pydantic); the rest on first use, through ``__getattr__`` below:
# pydantic alone costs ~100 ms of CPU, which would make `import trigger_nb` miss its 150 ms budget.
from trigger_nb import retry
from trigger_nb._core.clock import FakeClock, SystemClock
from trigger_nb._core.retry import SKIP_RETRYING, RetryAt, RetryOptions
from trigger_nb._core.version import __version__
from trigger_nb.errors import (
    CacheReadError,
    DuplicateCacheKeyError,
    InvalidCacheKeyError,
    InvalidOptionError,
    InvalidPayloadError,
    JobDefinitionError,
    NotFoundError,
    RunBusyError,
    RunConflictError,
    StaleTaskError,
    StoreError,
    StoreVersionError,
    TaskError,
    TaskNotFoundError,
    TaskOutputError,
    TaskTimedOutError,
    TaskTimeoutError,
    TriggerNbError,
    WorkerLostError,
)

if TYPE_CHECKING:
    from trigger_nb._client.client import TriggerClient, default_client, send_event
    from trigger_nb._client.job import Job
    from trigger_nb._client.run import JobRun
    from trigger_nb._client.task_view import TaskView
    from trigger_nb._core.model import RunStatus, TaskStatus
    from trigger_nb._core.trigger import EventTrigger, event_trigger
    from trigger_nb._engine.context import Context
    from trigger_nb._engine.dask_executor import DaskExecutor
    from trigger_nb._engine.handle import TaskHandle
    from trigger_nb._engine.integration import Integration
    from trigger_nb._engine.io import IO
    from trigger_nb._engine.logger import Logger
    from trigger_nb._store.store import DiskStore, MemoryStore, Store

_LAZY = {
    "Integration": "trigger_nb._engine.integration",
    "IO": "trigger_nb._engine.io",
    "EventTrigger": "trigger_nb._core.trigger",
    "Job": "trigger_nb._client.job",
    "TriggerClient": "trigger_nb._client.client",
    "default_client": "trigger_nb._client.client",
    "event_trigger": "trigger_nb._core.trigger",
    "send_event": "trigger_nb._client.client",
    "RunStatus": "trigger_nb._core.model",
    "TaskStatus": "trigger_nb._core.model",
    "Context": "trigger_nb._engine.context",
    "DaskExecutor": "trigger_nb._engine.dask_executor",
    "TaskHandle": "trigger_nb._engine.handle",
    "Logger": "trigger_nb._engine.logger",
    "JobRun": "trigger_nb._client.run",
    "TaskView": "trigger_nb._client.task_view",
    "DiskStore": "trigger_nb._store.store",
    "MemoryStore": "trigger_nb._store.store",
    "Store": "trigger_nb._store.store",
}


def __getattr__(name: str) -> Any:
    """The public names above, imported on first use (PEP 562); submodules too."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif not name.startswith("__"):
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def list_runs(
    job: str | None = None, status: str | None = None, *, store: Store | str | None = None
) -> list[JobRun]:
    """Past runs in a store (default: the notebook's), newest first."""
    from trigger_nb._client.client import TriggerClient, default_client

    client = default_client() if store is None else TriggerClient("explorer", store=store)
    return client.list_runs(job=job, status=status)


def load_run(run_id: str, *, store: Store | str | None = None) -> JobRun:
    """One past run by id (or a unique prefix of it)."""
    from trigger_nb._client.client import TriggerClient, default_client

    client = default_client() if store is None else TriggerClient("explorer", store=store)
    return client.load_run(run_id)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext trigger_nb``: register the magics (IPython is imported only now)."""
    from trigger_nb._jupyter.magics import load_ipython_extension as load

    load(ipython)


def _show_runs_as_trees_in_ipython() -> None:
    """In a running IPython (a notebook kernel), show every ``JobRun`` as its page with actions
    from the first ``import trigger_nb`` on, without ``%load_ext``. Nothing is imported for it:
    IPython is only used when it is loaded already, and the display module is light (it names
    ``JobRun`` by its module and class, and loads the tree's code when a run is first shown)."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from trigger_nb._jupyter.capture import install
    from trigger_nb._widgets.display import register

    register(shell)
    install(shell)  # what tasks display is kept with them and shown again on replay


_show_runs_as_trees_in_ipython()

__all__ = [
    "IO",
    "SKIP_RETRYING",
    "CacheReadError",
    "Context",
    "DaskExecutor",
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
    "Logger",
    "MemoryStore",
    "NotFoundError",
    "RetryAt",
    "RetryOptions",
    "RunBusyError",
    "RunConflictError",
    "RunStatus",
    "StaleTaskError",
    "Store",
    "StoreError",
    "StoreVersionError",
    "SystemClock",
    "TaskError",
    "TaskHandle",
    "TaskNotFoundError",
    "TaskOutputError",
    "TaskStatus",
    "TaskTimedOutError",
    "TaskTimeoutError",
    "TaskView",
    "TriggerClient",
    "TriggerNbError",
    "WorkerLostError",
    "__version__",
    "default_client",
    "event_trigger",
    "list_runs",
    "load_ipython_extension",
    "load_run",
    "retry",
    "send_event",
]
