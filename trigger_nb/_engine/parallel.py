"""``io.parallel``: one child task per item, keyed by its index, run concurrently (threads for
sync functions, ``asyncio.gather`` for async ones, or another ``Executor``: Dask); results in
item order."""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trigger_nb._engine.execution import current_frame
from trigger_nb._engine.executor import ChildBatch, Executor, ThreadExecutor
from trigger_nb._engine.invocation import run_coroutine
from trigger_nb._engine.item_order import ItemOrder, output_turn
from trigger_nb.errors import RunSuspended

if TYPE_CHECKING:
    import concurrent.futures

    from trigger_nb._engine.host import TaskRunner

DEFAULT_PARALLEL_WORKERS = 8  # threads, when io.parallel's max_workers is not given


def fan_out(
    io: TaskRunner,
    values: list[Any],
    fn: Callable[..., Any],
    max_workers: int | None,
    options: dict[str, Any],
    executor: Executor | None = None,
    batch: Callable[[Callable[[Any], Callable[..., Any]], bool], ChildBatch] | None = None,
) -> Callable[[], list[Any]]:
    """The parallel task's function: it runs ``fn`` for every value as a child task, in threads
    here, or by ``executor`` (given the children as ``batch(child, takes_task)``)."""
    takes_task = _positional_count(fn) >= 2

    def child(item: Any) -> Callable[..., Any]:
        if takes_task:
            return lambda task: fn(item, task)
        return lambda: fn(item)

    def run_children() -> list[Any]:
        if executor is not None and not isinstance(executor, ThreadExecutor):
            assert batch is not None, "io.parallel gives the batch with the executor"
            return executor.run_children(batch(child, takes_task))
        if inspect.iscoroutinefunction(fn):
            return list(run_coroutine(_gather(io, values, child, options)))
        # Imported here, not at the top: with asyncio it adds ~30 ms to `import trigger_nb`.
        import concurrent.futures

        workers = max(1, min(max_workers or DEFAULT_PARALLEL_WORKERS, len(values) or 1))
        order = ItemOrder(len(values))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, _child, io, i, child(v), options, order)
                for i, v in enumerate(values)
            ]
            outcomes = [_outcome(f) for f in futures]
        return _results_or_raise(outcomes)

    return run_children


def _child(
    io: TaskRunner,
    index: int,
    fn: Callable[..., Any],
    options: dict[str, Any],
    order: ItemOrder,
) -> Any:
    """One child, in a thread of the pool (in a copy of the parent's context)."""
    output_turn.set((order, index, current_frame.get()))
    try:
        return io.run_task(index, fn, name=f"item {index}", **options)
    finally:
        order.finished(index)


async def _gather(
    io: TaskRunner,
    values: list[Any],
    child: Callable[[Any], Callable[..., Any]],
    options: dict[str, Any],
) -> list[Any]:
    coroutines = [
        io.arun_task(i, child(v), name=f"item {i}", **options) for i, v in enumerate(values)
    ]
    import asyncio

    outcomes = await asyncio.gather(*coroutines, return_exceptions=True)
    return _results_or_raise(list(outcomes))


def _outcome(future: concurrent.futures.Future[Any]) -> Any:
    try:
        return future.result()
    except BaseException as error:
        return error


def _results_or_raise(outcomes: list[Any]) -> list[Any]:
    """Every result in item order; else the first failure by index (failures beat suspensions)."""
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        failures = [e for e in errors if not isinstance(e, RunSuspended)]
        raise (failures or errors)[0]
    return outcomes


def _positional_count(fn: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in kinds and p.default is p.empty)
