"""What runs on a Dask worker for one attempt of an ``io.parallel`` child (SPEC 3.8).

The worker never touches the store: ``run_on_worker`` calls the child's function with a
picklable ``WorkerTask`` handle and returns an ``Envelope`` that the kernel records — the output
already pickled (once, here: the kernel stores these bytes as they came), the log records the
child wrote, its ``task.output_properties``, or its error with the worker's traceback.

``io`` (and ``io.logger``, the kernel's ``task``, ``ctx.client``) captured by a shipped function
arrive here as stand-ins: ``io.logger`` writes to the current child's log; every other ``io``
member raises ``WorkerIOError`` naming the task and the fix, because tasks are recorded by the
kernel only. The rest of ``ctx`` (job, run, event) travels as it is.

What the child prints (stdout, stderr) is kept per attempt on the worker (``worker_output``)
and comes back in the ``Envelope`` too, for the kernel to print once, in the cell, into the
child's capture.

This module imports only the standard library, ``_core.levels`` and ``worker_output`` (with
the capture bound it shares with the kernel; tblib, a dependency of distributed, when an
error's traceback is sent): workers need ``trigger_nb`` installed, nothing else of ours loads.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import pickle
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from trigger_nb._core.levels import LevelMethods
from trigger_nb._engine.worker_output import Printed, WorkerOutput, start_keeping, stop_keeping

_current: contextvars.ContextVar[WorkerTask | None] = contextvars.ContextVar(
    "trigger_nb_worker_task", default=None
)


class WorkerIOError(RuntimeError):
    """``io`` used inside a child running on a Dask worker."""


class WorkerLogger(LevelMethods):
    """``task.logger`` on a worker: records kept in order, sent back with the attempt's result
    and written to the child's log by the kernel."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _emit(self, level: str, message: object, data: dict[str, Any]) -> None:
        with self._lock:
            self.records.append(
                (level, _text(message), {str(k): _plain(v) for k, v in data.items()})
            )


class WorkerTask:
    """The ``task`` handle a child's function gets on a worker: the same names as in the kernel
    (``id``, ``cache_key``, ``idempotency_key``, ``name``, ``attempt``, ``run_id``,
    ``output_properties``, ``logger``); the idempotency key is the kernel's, on every attempt."""

    def __init__(
        self,
        *,
        id: str,
        cache_key: object,
        idempotency_key: str,
        name: str,
        attempt: int,
        run_id: str,
        parent: str,
    ) -> None:
        self.id = id
        self.cache_key = cache_key
        self.idempotency_key = idempotency_key
        self.name = name
        self.attempt = attempt
        self.run_id = run_id
        self.parent = parent  # the io.parallel call, for error messages
        self.output_properties: list[dict[str, Any]] = []
        self.logger = WorkerLogger()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["logger"] = None  # a fresh one on the worker: records travel back in the Envelope
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.logger = WorkerLogger()

    def __repr__(self) -> str:
        return f"<task {self.name!r} key={self.cache_key!r} attempt={self.attempt} on a worker>"


class WorkerIO:
    """What a shipped function sees where it captured the kernel's ``io``."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        task = _current.get()
        if name == "logger" and task is not None:
            return task.logger
        if name == "run_id" and task is not None:
            return task.run_id
        raise WorkerIOError(_io_message(task, f"io.{name}"))

    def __reduce__(self) -> tuple[Any, ...]:
        return (WorkerIO, ())


class WorkerClient:
    """What a shipped function sees as ``ctx.client`` (``ctx.job``, ``ctx.run`` and
    ``ctx.event`` travel as they are): the kernel's client and store stay in the kernel."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise WorkerIOError(_io_message(_current.get(), f"ctx.client.{name}"))

    def __reduce__(self) -> tuple[Any, ...]:
        return (WorkerClient, ())


class WorkerKernelLogger:
    """Where a shipped function captured ``io.logger`` (or a kernel ``task.logger``): writes to
    the log of the child running it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        task = _current.get()
        if task is None:
            raise WorkerIOError(_io_message(None, f"logger.{name}"))
        return getattr(task.logger, name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (WorkerKernelLogger, ())


def _io_message(task: WorkerTask | None, what: str) -> str:
    where = (
        f"task {task.name!r} (key {task.cache_key!r} of io.parallel {task.parent})"
        if task is not None
        else "a function running on a Dask worker"
    )
    return (
        f"{where} called {what} on a Dask worker: tasks are recorded by the kernel, so io.* "
        "cannot run there (io.logger and task.logger can). Return the data from this child "
        "and call io in the kernel, or run children that need io with a local io.parallel "
        "(executor='threads')"
    )


class Envelope(NamedTuple):
    """One attempt's result as it travels back: ``kind`` is "ok" (``data``: the pickled
    output), "unpicklable" (``message``: why the output cannot be stored), "io" (``message``:
    io used on the worker) or "error" (``data``: the pickled exception, or None if it cannot be
    pickled; ``traceback``: the worker's frames, as tblib's dict). ``printed``: what the
    attempt wrote to stdout and stderr, in order, whatever its kind."""

    kind: str
    data: bytes | None
    type_name: str
    message: str
    traceback: dict[str, Any] | None
    logs: list[tuple[str, str, dict[str, Any]]]
    output_properties: list[dict[str, Any]]
    printed: Printed


def run_on_worker(item: Any, task: WorkerTask, function: bytes, takes_task: bool) -> Envelope:
    """One attempt of a child, on a worker: call its function (``function`` pickled, the same
    bytes for every child of the call) keeping what it prints, pickle what it returned."""
    token = _current.set(task)
    output = WorkerOutput()
    keeping = start_keeping(output)
    try:
        fn: Callable[..., Any] = pickle.loads(function)
        result = fn(item, task) if takes_task else fn(item)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
    except WorkerIOError as error:
        return _envelope(task, output, "io", None, error, str(error))
    except Exception as error:
        return _error(task, output, error)
    finally:
        stop_keeping(keeping)
        _current.reset(token)
    try:
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        return _envelope(task, output, "unpicklable", None, result, f"{error}")
    return _envelope(task, output, "ok", data, result, "")


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _error(task: WorkerTask, output: WorkerOutput, error: BaseException) -> Envelope:
    try:
        pickled = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(pickled)  # an exception whose class takes other arguments fails here
        data: bytes | None = pickled
    except Exception:
        data = None
    try:
        import tblib

        traceback = tblib.Traceback(error.__traceback__).as_dict()
    except Exception:  # tblib missing, or a frame it cannot read: the type and message remain
        traceback = None
    return _envelope(task, output, "error", data, error, _text(error), traceback)


def _envelope(
    task: WorkerTask,
    output: WorkerOutput,
    kind: str,
    data: bytes | None,
    value: object,
    message: str,
    traceback: dict[str, Any] | None = None,
) -> Envelope:
    kind_of = type(value)
    module = getattr(kind_of, "__module__", "builtins")
    name = (
        kind_of.__qualname__
        if module in ("builtins", "__main__")
        else f"{module}.{kind_of.__qualname__}"
    )
    properties = task.output_properties if isinstance(task.output_properties, list) else []
    return Envelope(
        kind,
        data,
        name,
        message,
        traceback,
        task.logger.records,
        [_plain(p) for p in properties],
        output.printed(),
    )


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _plain(value: Any) -> Any:
    """A log field or property as it can travel back: itself if it pickles, else its text."""
    try:
        pickle.dumps(value)
        return value
    except Exception:
        return _text(value)
