"""Calling a task's function for one attempt: its argument, its frame, its time limit.

Sync functions are interrupted with SIGALRM (main thread only), coroutines with
``asyncio.wait_for``; ``run_coroutine`` runs a coroutine to completion from sync code, inside
Jupyter's running loop too; ``check_timeout`` validates the ``timeout=`` option.
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from trigger_nb._engine.console import finish_figures, start_figures
from trigger_nb._engine.execution import Frame, current_frame
from trigger_nb.errors import InvalidOptionError, TaskTimeoutError

if TYPE_CHECKING:
    from trigger_nb._engine.handle import TaskCall

# Below a millisecond the alarm can fire before the function is even entered; above ~30 years
# the OS timer overflows. Both are mistakes, not timeouts.
MIN_TIMEOUT_SECONDS = 0.001
MAX_TIMEOUT_SECONDS = 1e9


def _arguments(fn: Callable[..., Any], call: TaskCall) -> tuple[Any, ...]:
    """``fn`` may take no argument or one (the task handle)."""
    if (
        type(fn) is types.FunctionType
        and not hasattr(fn, "__wrapped__")
        and not hasattr(fn, "__signature__")
    ):
        # The common case (a lambda or def), read from its code object: inspect.signature costs
        # ~7 µs, a tenth of trigger_nb's own work per executed task. Same rule as below.
        code = fn.__code__
        required = code.co_argcount - len(fn.__defaults__ or ())
        return (call.handle,) if required > 0 or code.co_flags & inspect.CO_VARARGS else ()
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return (call.handle,)
    # Parameters with defaults are the `lambda user=user: ...` idiom for loop variables: leave
    # them alone; only a required positional parameter (or *args) receives the task.
    wants_task = any(
        p.kind is p.VAR_POSITIONAL
        or (p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)
        for p in parameters
    )
    return (call.handle,) if wants_task else ()


def _timeout_error(call: TaskCall) -> TaskTimeoutError:
    return TaskTimeoutError(
        f"{call.label} attempt {call.attempt} timed out after {call.timeout:g} s",
        task_id=call.record.id,
    )


def _call(call: TaskCall) -> Any:
    """Call the task function in its task's frame; an async one returns its coroutine."""
    fn = call.fn
    arguments = _arguments(fn, call)
    if call.timeout is None and type(fn) is types.FunctionType:
        # The common case, without inspect's checks and the deadline's context manager (~3 µs
        # of every executed task): a coroutine function only creates its coroutine here.
        return fn(*arguments)
    if inspect.iscoroutinefunction(fn):
        return call.fn(*arguments)  # only creates the coroutine; its timeout is wait_for's
    with _deadline(call):
        return call.fn(*arguments)


# Results that are never awaitable: inspect.isawaitable's ABC check costs ~0.5 µs on them.
_PLAIN_RESULTS = frozenset({int, float, str, bytes, bool, type(None), dict, list, tuple, set})


def invoke_sync(call: TaskCall) -> Any:
    call.capture = None  # this attempt's, made when it first prints
    figures = start_figures(call)
    token = current_frame.set(Frame(call.execution, call.record.id, call, current_frame.get()))
    try:
        result = _call(call)
        if type(result) not in _PLAIN_RESULTS and inspect.isawaitable(result):
            result = run_coroutine(_await_with_timeout(call, result))
        return result
    finally:
        if figures is not None:
            finish_figures(figures)  # in the task's frame: its capture keeps them
        current_frame.reset(token)


async def invoke_async(call: TaskCall) -> Any:
    call.capture = None
    figures = start_figures(call)
    token = current_frame.set(Frame(call.execution, call.record.id, call, current_frame.get()))
    try:
        result = _call(call)
        if inspect.isawaitable(result):
            result = await _await_with_timeout(call, result)
        return result
    finally:
        if figures is not None:
            finish_figures(figures)
        current_frame.reset(token)


async def _await_with_timeout(call: TaskCall, awaitable: Any) -> Any:
    if call.timeout is None:
        return await awaitable
    import asyncio  # here, not at the top: asyncio adds ~30 ms to `import trigger_nb`

    try:
        return await asyncio.wait_for(awaitable, call.timeout)
    except asyncio.TimeoutError:
        raise _timeout_error(call) from None


@contextlib.contextmanager
def _deadline(call: TaskCall) -> Iterator[None]:
    """Interrupt a sync function after ``timeout`` seconds with SIGALRM (main thread only).

    Elsewhere (a worker thread of ``io.parallel``) Python cannot interrupt running code, so the
    timeout is checked when the function returns.
    """
    if call.timeout is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        began = time.monotonic()
        yield
        if time.monotonic() - began > call.timeout:
            raise _timeout_error(call)
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise _timeout_error(call)

    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    previous_delay, _ = signal.setitimer(signal.ITIMER_REAL, call.timeout)
    began = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:  # an outer task's deadline: re-arm it with what is left
            left = previous_delay - (time.monotonic() - began)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6))


def run_coroutine(coroutine: Any) -> Any:
    """Run a coroutine to completion from sync code, inside Jupyter's running loop too."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _run_in_a_new_loop(coroutine)
    import nest_asyncio2

    nest_asyncio2.apply(loop)
    return loop.run_until_complete(coroutine)


def _run_in_a_new_loop(coroutine: Any) -> Any:
    """``asyncio.run``'s job, done here: once nest_asyncio2 has been applied (a task ran inside
    a running loop, as in Jupyter), ``asyncio.run`` is its replacement, which leaves every loop
    it makes open (a leaked socket pair each)."""
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coroutine)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not MIN_TIMEOUT_SECONDS <= timeout <= MAX_TIMEOUT_SECONDS  # NaN fails this too
    ):
        raise InvalidOptionError(
            f"timeout={timeout!r} is invalid: give the seconds each attempt may take, from "
            f"{MIN_TIMEOUT_SECONDS:g} to {MAX_TIMEOUT_SECONDS:g} (or None for no timeout)"
        )
    return float(timeout)
