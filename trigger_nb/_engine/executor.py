"""Where ``io.parallel``'s children run: the ``Executor`` protocol, threads, and the choice.

An executor gets a ``ChildBatch`` (the children of one ``io.parallel`` call) and returns their
results in item order, or raises the first failure by index. Whatever it does, every child is
still a task of the kernel: it calls ``batch.io.run_task``/``arun_task`` per item, so attempts,
retries, logs and outputs are recorded by the process that runs the job, the only writer of the
store, and completed children are replayed there without running (SPEC 3.8).

``executor=`` on ``io.parallel``, ``define_job`` and ``TriggerClient`` (the most specific wins):
``None`` inherits, ``"threads"`` (the default) runs children in threads of this process,
``"dask"`` on a Dask cluster (``DaskExecutor()``), or any object with ``run_children``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from trigger_nb.errors import InvalidOptionError

if TYPE_CHECKING:
    from trigger_nb._engine.host import TaskRunner


@dataclasses.dataclass(frozen=True)
class ChildBatch:
    """The children of one ``io.parallel`` call.

    ``child(item)`` is the function a thread runs for an item (``fn(item)`` or
    ``fn(item, task)``): an executor that runs ``fn`` elsewhere passes its fingerprint
    (``fingerprint_of(child(item))``) so that moving children between executors never makes
    them stale. ``check_canceled`` raises ``RunCanceled`` once ``run.cancel()`` was called."""

    io: TaskRunner
    cache_key: object
    values: list[Any]
    fn: Callable[..., Any]
    options: dict[str, Any]
    max_workers: int | None
    takes_task: bool
    child: Callable[[Any], Callable[..., Any]]
    fingerprint_of: Callable[[Callable[..., Any]], dict[str, str] | None]
    check_canceled: Callable[[], None]


@runtime_checkable
class Executor(Protocol):
    """Runs the children of ``io.parallel`` as tasks of ``batch.io``; results in item order."""

    def run_children(self, batch: ChildBatch) -> list[Any]: ...


class ThreadExecutor:
    """Children in threads of this process (``asyncio.gather`` for async functions): the
    default. CPU-bound children share one core (the GIL): use Dask to spread them."""

    def run_children(self, batch: ChildBatch) -> list[Any]:
        from trigger_nb._engine.parallel import fan_out  # parallel imports this module

        run = fan_out(batch.io, batch.values, batch.fn, batch.max_workers, batch.options)
        return run()

    def __repr__(self) -> str:
        return "ThreadExecutor()"


THREADS = ThreadExecutor()


def resolve_executor(value: object, where: str) -> Executor | None:
    """The executor ``value`` names (None: inherit); ``InvalidOptionError`` for anything else.

    ``"dask"`` is the process's shared ``DaskExecutor()`` (one cluster, not one per call); it
    raises ``InvalidOptionError`` naming ``pip install 'trigger_nb[dask]'`` without Dask."""
    if value is None:
        return None
    if isinstance(value, str) and value == "threads":
        return THREADS
    if isinstance(value, str) and value == "dask":
        from trigger_nb._engine.dask_executor import shared_dask_executor

        return shared_dask_executor()
    if isinstance(value, Executor):
        return value
    raise InvalidOptionError(
        f"{where} executor={value!r} is invalid: use None (threads), 'threads', 'dask', "
        "trigger_nb.DaskExecutor(client) or an object with run_children(batch)"
    )
