"""``DaskExecutor``: ``io.parallel``'s children on a Dask distributed cluster (SPEC 3.8).

Each child is still a task of the kernel (``io.arun_task``), so its record, attempts, retries,
logs and output are written by the kernel, the store's only writer, live in the tree; a child
completed earlier is replayed by the engine before anything is shipped. One *attempt* is one
Dask task: the child's function (pickled once per ``io.parallel`` call with cloudpickle, so
notebook lambdas and closures travel), its item and a ``WorkerTask`` handle go to
``trigger_nb._engine.remote.run_on_worker``; its ``Envelope`` comes back with the output already
pickled on the worker, and those bytes are what the store keeps (loaded once in the kernel for
the value, never pickled a second time).

Decisions where the issue left a choice:

- Keys are ``trigger_nb-<task id>-<attempt>-<nonce>``, submitted with ``pure=False,
  retries=0``. The nonce (one per ``io.parallel`` call) matters: Dask answers a submission
  whose key it still holds with the result it has, without running anything, and the same
  task id and attempt come back when a run is cleared and run again on a long-lived cluster
  (or two stores run the same job there). Dask
  would also re-run a task on its own when the worker running it dies (``allowed-failures``,
  3 by default) or when the worker holding its result dies before the kernel fetched it. A small
  scheduler plugin (sent by value, nothing of ours needs installing on the scheduler) turns
  both off for our keys only: the lost attempt fails with ``KilledWorker`` / a lost future,
  which becomes ``WorkerLostError`` here; the engine records it and retries it (once by default,
  else per the task's ``RetryOptions``) under the same idempotency key.
- ``io`` used on a worker raises an error naming the task and the fix (``io.logger`` works: it
  writes to the child's log). Nested tasks run in the kernel.
- "In item order": every child's record starts in item order (so the tree lists them so, and
  results come back so); each is completed when its result arrives, live, not held back
  behind a slower earlier item. Log records are written in the order the child wrote them,
  when its attempt comes back (with the kernel's time of arrival).
- What a child prints on its worker is kept per attempt there (``worker_output``), comes back
  with the attempt and is printed once in the kernel when it arrives, in the child's task
  frame: the cell shows it then (not as it happens on the worker), the child's capture keeps
  it (a failed attempt's too), replay shows it again in item order. Plain text only: a worker
  has no IPython display. An attempt whose worker was lost brings nothing back: its output is
  lost with it.
- Submissions made in one turn of the kernel's loop go in one ``client.map``; results are
  fetched in batches on the Dask client's own loop: the per-child cost stays near raw Dask's.
- Only the children's own outputs skip the kernel's pickling: the ``io.parallel`` task still
  stores the list of results, pickled in the kernel, as it does with threads.
- ``max_workers`` limits the attempts in flight only when given: Dask schedules the rest.
- The workers need ``trigger_nb`` installed (like every library the children use).
- ``client=None`` uses the current default Dask client, else one ``LocalCluster`` per process,
  started on first use (dashboard on a free port) and closed when the process exits.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io as io_module
import sys
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trigger_nb._core.retry import RetryAt
from trigger_nb._engine.executor import ChildBatch
from trigger_nb._engine.invocation import _run_in_a_new_loop, run_coroutine
from trigger_nb._engine.output import PickledOutput
from trigger_nb._engine.remote import (
    Envelope,
    WorkerClient,
    WorkerIO,
    WorkerKernelLogger,
    WorkerTask,
    run_on_worker,
)
from trigger_nb._engine.worker_output import Printed
from trigger_nb.errors import (
    InvalidOptionError,
    RunCanceled,
    TaskOutputError,
    WorkerLostError,
)

if TYPE_CHECKING:
    from trigger_nb._engine.handle import TaskHandle

KEY_PREFIX = "trigger_nb-"
INSTALL = "pip install 'trigger_nb[dask]'"
CANCEL_POLL_SECONDS = 0.25
_PLUGIN_NAME = "trigger_nb-no-resubmit"


def _distributed() -> Any:
    """``distributed``, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as error:
        raise ModuleNotFoundError(
            "executor='dask' (trigger_nb.DaskExecutor) needs Dask distributed, which is not "
            f"installed here: {INSTALL}",
            name="distributed",
        ) from error
    return distributed


class DaskExecutor:
    """Run ``io.parallel``'s children on a Dask distributed cluster.

    ``client``: a ``distributed.Client``; a scheduler address (``"tcp://10.0.0.5:8786"``,
    connected on first use, closed at exit); or None: the current default Dask client, else a
    ``LocalCluster`` started on first use and closed when the process exits.
    ``executor="dask"`` is ``DaskExecutor()``, shared by the whole process.
    """

    def __init__(self, client: Any = None) -> None:
        distributed = _distributed()
        if client is not None and not isinstance(client, (str, distributed.Client)):
            raise InvalidOptionError(
                f"DaskExecutor(client={client!r}) is invalid: give a distributed.Client, a "
                "scheduler address such as 'tcp://127.0.0.1:8786', or None"
            )
        self._given = client
        self._connected: Any = None
        self._lock = threading.Lock()
        self._prepared: set[str] = set()

    def __repr__(self) -> str:
        given = self._given
        where = "default client or a LocalCluster" if given is None else repr(given)
        return f"DaskExecutor({where})"

    @property
    def client(self) -> Any:
        """The Dask client children are submitted with (connects, or starts a local cluster,
        the first time it is needed)."""
        distributed = _distributed()
        with self._lock:
            if isinstance(self._given, distributed.Client):
                return self._given
            if isinstance(self._given, str):
                if self._connected is None:
                    self._connected = distributed.Client(self._given, set_as_default=False)
                    atexit.register(_close_quietly, self._connected)
                return self._connected
        try:
            return distributed.default_client()
        except ValueError:
            return _local_client()

    def run_children(self, batch: ChildBatch) -> list[Any]:
        return _FanOut(self, batch).run()

    def connected(self) -> Any:
        """The client, ready for our tasks (called at the first submission: a call whose
        children are all replayed connects to nothing and starts no cluster)."""
        client = self.client
        self._prepare(client)
        return client

    def _prepare(self, client: Any) -> None:
        """Once per client: the scheduler plugin that stops Dask re-running our tasks."""
        if client.id in self._prepared:
            return
        client.register_plugin(_no_resubmit_plugin(), name=_PLUGIN_NAME)
        self._prepared.add(client.id)


_shared: DaskExecutor | None = None
_local: Any = None
_shared_lock = threading.Lock()


def shared_dask_executor() -> DaskExecutor:
    """``executor="dask"``: one ``DaskExecutor()`` per process, so one cluster."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = DaskExecutor()
        return _shared


def _local_client() -> Any:
    global _local
    with _shared_lock:
        if _local is None:
            distributed = _distributed()
            cluster = distributed.LocalCluster(processes=True, dashboard_address=":0")
            _local = distributed.Client(cluster, set_as_default=False)
            atexit.register(_close_quietly, _local, cluster)
        return _local


def _close_quietly(*closables: Any) -> None:
    for closable in closables:
        with contextlib.suppress(Exception):  # at exit, a cluster already gone is fine
            closable.close()


def _no_resubmit_plugin() -> Any:
    """A scheduler plugin, defined here so cloudpickle sends it by value: for our keys only, a
    worker dying while running one fails it at once (``KilledWorker``) instead of re-running
    it elsewhere, and a finished one is never recomputed (lost with its worker: the future
    fails). The engine then records the lost attempt and decides about retrying."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    prefix = KEY_PREFIX

    class NoResubmit(SchedulerPlugin):
        name = _PLUGIN_NAME
        idempotent = True  # one per scheduler, whichever client or kernel registers it

        async def start(self, scheduler: Any) -> None:
            self.scheduler = scheduler

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
            if not (isinstance(key, str) and key.startswith(prefix)):
                return
            state = self.scheduler.tasks.get(key)
            if state is None:
                return
            if finish == "processing":
                state.suspicious = max(state.suspicious, self.scheduler.allowed_failures)
            elif finish == "memory":
                state.run_spec = None  # data now, like scattered data: lost, not recomputed

    return NoResubmit()


class _FanOut:
    """One ``io.parallel`` call's children on Dask: each an ``arun_task`` of the kernel, all
    awaited together in one event loop (no thread per child)."""

    def __init__(self, executor: DaskExecutor, batch: ChildBatch) -> None:
        self.executor = executor
        self._client: Any = None
        self.batch = batch
        self.nonce = uuid.uuid4().hex[:8]  # keys never meet a result Dask still holds
        self.outstanding: dict[str, Any] = {}  # key -> its Dask future (None: being submitted)
        self.canceled: RunCanceled | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.main: asyncio.Task[Any] | None = None  # the task awaiting them all
        self._function: bytes | BaseException | None = None
        self._limit = (
            asyncio.Semaphore(batch.max_workers) if batch.max_workers is not None else None
        )
        # task id -> workers lost in this execution (the first loss is retried by default)
        self._lost: dict[str, int] = {}
        self._to_submit: list[tuple[str, Any, WorkerTask, asyncio.Future[Any]]] = []
        self._to_fetch: list[tuple[Any, asyncio.Future[Any]]] = []
        self._fetcher: asyncio.Task[None] | None = None

    def run(self) -> list[Any]:
        try:
            results: list[Any] = _run(self._all())
            return results
        except BaseException:
            self._stop()  # an interrupt arrived between two steps of the loop
            raise
        finally:
            self._cancel_outstanding()

    async def _all(self) -> list[Any]:
        from trigger_nb._engine.parallel import _results_or_raise

        loop = asyncio.get_running_loop()
        self.main = asyncio.current_task()
        self.tasks = [
            loop.create_task(self._child(i, item)) for i, item in enumerate(self.batch.values)
        ]
        watcher = loop.create_task(self._watch_cancel())
        try:
            outcomes = await asyncio.gather(*self.tasks, return_exceptions=True)
        finally:
            watcher.cancel()
        if self.canceled is not None:  # whatever each child was doing when it was stopped
            raise self.canceled
        return _results_or_raise(list(outcomes))

    def _stop(self) -> None:
        """Cancel the children still waiting and let them record it (INTERRUPTED)."""
        pending = [t for t in [self.main, *self.tasks] if t is not None and not t.done()]
        if not pending:
            return
        for task in pending:
            task.cancel()

        async def drain() -> None:
            await asyncio.gather(*pending, return_exceptions=True)

        with contextlib.suppress(BaseException):  # a second interrupt: futures are canceled
            _run(drain())

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.executor.connected()
        return self._client

    def _cancel_outstanding(self) -> None:
        """Cancel on the cluster every attempt still submitted (one an interrupt caught inside
        ``submit`` too: known by its key)."""
        if not self.outstanding:
            return
        distributed = _distributed()
        futures = [
            future if future is not None else distributed.Future(key, self.client)
            for key, future in self.outstanding.items()
        ]
        self.outstanding.clear()
        self.client.cancel(futures)

    async def _watch_cancel(self) -> None:
        """``run.cancel()`` (from any process) cancels the children in flight."""
        while True:
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            try:
                self.batch.check_canceled()
            except RunCanceled as canceled:
                self.canceled = canceled
                for task in self.tasks:
                    task.cancel()
                return

    async def _child(self, index: int, item: Any) -> Any:
        batch = self.batch
        options = dict(batch.options)
        options["on_error"] = self._on_error(options.get("on_error"), options.get("retry"))
        parts = batch.fingerprint_of(batch.child(item))
        if parts is not None:
            options["_fingerprint"] = parts

        async def attempt(task: TaskHandle) -> PickledOutput:
            return await self._attempt(item, task)

        return await batch.io.arun_task(index, attempt, name=f"item {index}", **options)

    def _on_error(
        self, on_error: Callable[..., Any] | None, retry: object
    ) -> Callable[[BaseException, Any], Any]:
        """The task's ``on_error``, then: a lost worker is retried once at once unless the
        task's ``retry`` decides (its ``limit`` counts these attempts too)."""

        def decide(error: BaseException, task: Any) -> Any:
            decision = on_error(error, task) if on_error is not None else None
            if (
                decision is None
                and isinstance(error, WorkerLostError)
                and retry is None
                and self._lost.get(task.id, 0) <= 1
            ):
                return RetryAt(0)
            return decision

        return decide

    async def _attempt(self, item: Any, task: TaskHandle) -> PickledOutput:
        """One attempt on the cluster; the kernel records what comes back."""
        if self.canceled is not None:
            raise self.canceled
        function = self._shipped()
        handle = WorkerTask(
            id=task.id,
            cache_key=task.cache_key,
            idempotency_key=task.idempotency_key,
            name=task.name,
            attempt=task.attempt,
            run_id=task.run_id,
            parent=_label(self.batch.cache_key),
        )
        key = f"{KEY_PREFIX}{task.id}-{task.attempt}-{self.nonce}"
        if self._limit is not None:
            await self._limit.acquire()
        try:
            self.outstanding[key] = None  # known before submit returns: an interrupt may come
            future = await self._submit(key, item, handle, function)
            try:
                envelope = await self._fetch(future, task)
            except BaseException as stopped:  # canceled, interrupted (or lost: nothing to do)
                future.cancel()
                if isinstance(stopped, asyncio.CancelledError) and self.canceled is not None:
                    raise self.canceled from None
                raise
            finally:
                self.outstanding.pop(key, None)
        finally:
            if self._limit is not None:
                self._limit.release()
        return _unpack(envelope, task)

    async def _fetch(self, future: Any, task: TaskHandle) -> Envelope:
        """The attempt's envelope once its Dask task is done; a Dask-level failure (the worker
        died, the result was lost with it, the scheduler went away) is ``WorkerLostError``.

        Waiting is a done-callback, not a pending ``gather`` (which Dask cannot cancel
        cleanly); the result is then fetched on the Dask client's own loop, so the kernel's
        loop never blocks on the network."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finished(_: Any) -> None:  # on Dask's callback thread
            with contextlib.suppress(RuntimeError):  # the kernel's loop is gone: interrupted
                loop.call_soon_threadsafe(_resolve, done)

        future.add_done_callback(finished)
        await done
        distributed = _distributed()
        problem: BaseException | None = None
        lost = ""
        try:
            if future.status == "finished":
                envelope: Envelope = await self._gathered(future)
                return envelope
            if future.status == "error":
                problem = future.exception()
        except asyncio.CancelledError:
            raise
        except (distributed.client.FutureCancelledError, OSError) as gone:
            lost = f"{type(gone).__name__}: {gone}"  # its result was lost on the way back
        if problem is None or isinstance(problem, distributed.KilledWorker):
            self._lost[task.id] = self._lost.get(task.id, 0) + 1
            what = lost or (
                f"{type(problem).__name__}: {problem}" if problem else f"Dask: {future.status}"
            )
            raise WorkerLostError(
                f"task {task.name!r} (key {task.cache_key!r}) attempt {task.attempt}: the Dask "
                f"worker running it was lost ({what}); the attempt may have run partly, and "
                f"is retried with the same idempotency key ({task.idempotency_key[:12]}...)",
                task_id=task.id,
            ) from None
        raise problem  # Dask could not run it at all (trigger_nb missing on the worker, ...)

    async def _submit(self, key: str, item: Any, handle: WorkerTask, function: bytes) -> Any:
        """Submit one attempt; the attempts submitted in one turn of the loop (all the children
        at the start) go in one ``client.map``: one message to the scheduler, not one each."""
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._to_submit.append((key, item, handle, waiter))
        if len(self._to_submit) == 1:
            asyncio.get_running_loop().call_soon(self._flush_submissions, function)
        return await waiter

    def _flush_submissions(self, function: bytes) -> None:
        batch, self._to_submit = self._to_submit, []
        try:
            futures = self.client.map(
                run_on_worker,
                [item for _, item, _, _ in batch],
                [handle for _, _, handle, _ in batch],
                key=[key for key, _, _, _ in batch],
                pure=False,
                retries=0,
                function=function,
                takes_task=self.batch.takes_task,
            )
        except Exception as error:
            for *_, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(error)
            return
        for (key, _, _, waiter), future in zip(batch, futures, strict=True):
            self.outstanding[key] = future
            if waiter.done():  # its child was canceled meanwhile
                future.cancel()
            else:
                waiter.set_result(future)

    async def _gathered(self, future: Any) -> Any:
        """A finished attempt's envelope. Results are fetched on the Dask client's own loop
        (the kernel's loop never blocks on the network), those finished meanwhile together:
        one ``gather`` for many."""
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._to_fetch.append((future, waiter))
        if self._fetcher is None or self._fetcher.done():
            self._fetcher = asyncio.get_running_loop().create_task(self._fetch_batches())
        return await waiter

    async def _fetch_batches(self) -> None:
        while self._to_fetch:
            batch, self._to_fetch = self._to_fetch, []
            try:
                results = await self._results([f for f, _ in batch])
            except BaseException:  # canceled (the loop is closing): nobody may wait forever
                for _, waiter in batch:
                    waiter.cancel()
                raise
            for (_, waiter), result in zip(batch, results, strict=True):
                if waiter.done():
                    continue
                if isinstance(result, _Failed):
                    waiter.set_exception(result.error)
                else:
                    waiter.set_result(result)

    async def _results(self, futures: list[Any]) -> list[Any]:
        try:
            return await self._on_dask_loop(futures)
        except Exception:  # one was lost meanwhile: fetch them one by one, to know which
            results: list[Any] = []
            for future in futures:
                try:
                    results.extend(await self._on_dask_loop([future]))
                except Exception as error:
                    results.append(_Failed(error))
            return results

    async def _on_dask_loop(self, futures: list[Any]) -> list[Any]:
        fetching = self.client.gather(futures, asynchronous=True)
        running = asyncio.run_coroutine_threadsafe(fetching, self.client.loop.asyncio_loop)
        results: list[Any] = await asyncio.wrap_future(running)
        return results

    def _shipped(self) -> bytes:
        """The children's function, pickled once for all of them (the first time one runs:
        when every child is replayed, nothing is pickled or shipped)."""
        if self._function is None:
            try:
                self._function = _pickle_function(self.batch.fn)
            except Exception as error:
                self._function = InvalidOptionError(
                    f"io.parallel {_label(self.batch.cache_key)}: its function cannot be sent "
                    f"to the Dask workers ({type(error).__name__}: {error}). A function that "
                    "runs on a worker must not use objects of this process (ctx, open "
                    "connections, locks, clients): pass what it needs in the items, or use "
                    "executor='threads'"
                )
                self._function.__cause__ = error
        if isinstance(self._function, BaseException):
            raise self._function
        return self._function


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _run(coroutine: Any) -> Any:
    """``run_coroutine``, without "no running event loop" as the context of every error the
    children raise (it would lead each stored traceback)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    return run_coroutine(coroutine) if running else _run_in_a_new_loop(coroutine)


def _unpack(envelope: Envelope, task: TaskHandle) -> PickledOutput:
    """Print what the attempt printed, write its logs and properties into the kernel's task;
    its output or error."""
    _print_here(envelope.printed)
    logger = task.logger
    for level, message, data in envelope.logs:
        logger._emit(level, message, data)
    if envelope.output_properties:
        task.output_properties = envelope.output_properties
    if envelope.kind == "ok":
        assert envelope.data is not None
        return PickledOutput(envelope.data, envelope.type_name)
    if envelope.kind == "io":
        raise InvalidOptionError(envelope.message)
    if envelope.kind == "unpicklable":
        raise TaskOutputError(
            f"task {task.cache_key!r} returned a {envelope.type_name} that cannot be stored "
            f"({envelope.message}): return picklable data instead (a dict, a dataclass or "
            "pydantic model defined in a module or the notebook, a DataFrame, bytes)",
            cache_key=task.cache_key,
            output_type=envelope.type_name,
            task_id=task.id,
        )
    raise _remote_error(envelope)


def _print_here(printed: Printed) -> None:
    """What a remote attempt printed, printed once, now that it has arrived: in the child's own
    task frame, so the kernel's stream tee (``console.py``) shows it in the cell and keeps it in
    this attempt's capture, stored and replayed like a local child's. A flush where the stream
    changes keeps stdout and stderr in the order they were written."""
    if not printed:
        return
    last = None
    for stream_name, text in printed:
        stream = sys.stdout if stream_name == "stdout" else sys.stderr
        if last is not None and last is not stream:
            _flush(last)
        stream.write(text)
        last = stream
    _flush(last)


def _flush(stream: Any) -> None:
    flush = getattr(stream, "flush", None)
    if flush is not None:
        with contextlib.suppress(Exception):  # a closed or odd stream: the text is kept anyway
            flush()


def _remote_error(envelope: Envelope) -> BaseException:
    """The child's exception as raised on the worker, with the worker's frames."""
    import pickle

    error: BaseException | None = None
    if envelope.data is not None:
        try:
            error = pickle.loads(envelope.data)
        except Exception:
            error = None
    if not isinstance(error, BaseException):
        error = RuntimeError(f"{envelope.type_name}: {envelope.message}")
    if envelope.traceback is not None:
        try:
            import tblib

            error = error.with_traceback(
                tblib.Traceback.from_dict(envelope.traceback).as_traceback()
            )
        except Exception:
            pass
    return error


def _pickle_function(fn: Callable[..., Any]) -> bytes:
    """``fn`` with cloudpickle (lambdas, closures and notebook functions travel by value), the
    kernel's ``io`` and loggers replaced by their worker stand-ins."""
    import cloudpickle

    from trigger_nb._engine.context import Context
    from trigger_nb._engine.handle import TaskHandle
    from trigger_nb._engine.io import IO
    from trigger_nb._engine.logger import Logger

    class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, (IO, TaskHandle)):
                return (WorkerIO, ())
            if isinstance(obj, Logger):
                return (WorkerKernelLogger, ())
            if isinstance(obj, Context):  # its client (and store) stay here
                return (Context, (obj.job, obj.run, obj.event, WorkerClient()))
            return super().reducer_override(obj)

    buffer = io_module.BytesIO()
    _Pickler(buffer, protocol=5).dump(fn)
    return buffer.getvalue()


def _label(cache_key: object) -> str:
    return repr(cache_key)
