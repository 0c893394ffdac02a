"""``io``: the object a run function uses for every side effect.

Each member is a task: cached under its key in the current scope (the run, or the parent task)
and replayed from the store on later executions. Checking ``run_task``'s options and building a
task's record live in ``trigger_nb._engine.task_options``; running the task in
``trigger_nb._engine.task``.
"""

from __future__ import annotations

import math
import random as random_module
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from trigger_nb._core.codec import to_jsonable
from trigger_nb._core.keys import TASK_ID_CHARS, encode_key, idempotency_key
from trigger_nb._core.model import TaskRecord, TaskStatus
from trigger_nb._engine.execution import Execution, current_frame
from trigger_nb._engine.executor import ChildBatch, resolve_executor
from trigger_nb._engine.fingerprint import digest_of, explain
from trigger_nb._engine.handle import TaskCall, TaskHandle
from trigger_nb._engine.logger import Logger
from trigger_nb._engine.parallel import fan_out
from trigger_nb._engine.replay import Replay, replay
from trigger_nb._engine.task import run_async, run_sync
from trigger_nb._engine.task_options import DEFAULT_OPTIONS, TaskOptions, new_record
from trigger_nb._store.sealed import Completed, completed_output, refresh_hint
from trigger_nb._store.snapshot import parse_task
from trigger_nb._store.task_entries import Superseded
from trigger_nb.errors import (
    CacheReadError,
    DuplicateCacheKeyError,
    InvalidOptionError,
    RunSuspended,
    StaleTaskError,
    TaskError,
)

if TYPE_CHECKING:
    from trigger_nb._engine.integration import IntegrationProxy


class IO:
    """Tasks, waits, logs, random numbers, events, fan-out and integrations for one execution."""

    def __init__(self, execution: Execution, integrations: dict[str, Any] | None = None) -> None:
        self._execution = execution
        self._integrations = dict(integrations or {})
        self.logger = Logger(execution)

    def __getattr__(self, name: str) -> IntegrationProxy:
        integrations = self.__dict__.get("_integrations", {})
        if name in integrations:
            from trigger_nb._engine.integration import IntegrationProxy

            return IntegrationProxy(self, name, integrations[name])
        known = ", ".join(sorted(integrations)) or "none"
        raise AttributeError(
            f"io has no attribute {name!r}; integrations of this job: {known} "
            f"(add one with define_job(..., integrations={{{name!r}: client}}))"
        )

    @property
    def run_id(self) -> str:
        return self._execution.run_id

    # --- tasks -------------------------------------------------------------------------------

    def run_task(self, cache_key: object, fn: Callable[..., Any], **options: Any) -> Any:
        """Run ``fn`` once for this key in this scope; later executions replay its output."""
        call = self._prepare(cache_key, fn, options)
        if type(call) is tuple:
            return replay(
                self._execution, call, cache_key, options.get("name"), options.get("mmap")
            )
        assert isinstance(call, TaskCall)
        return run_sync(call)

    async def arun_task(self, cache_key: object, fn: Callable[..., Any], **options: Any) -> Any:
        """The awaitable twin of ``run_task``, for concurrent fan-out with ``asyncio.gather``."""
        call = self._prepare(cache_key, fn, options)
        if type(call) is tuple:
            return replay(
                self._execution, call, cache_key, options.get("name"), options.get("mmap")
            )
        assert isinstance(call, TaskCall)
        return await run_async(call)

    def _prepare(
        self, cache_key: object, fn: Callable[..., Any], options: dict[str, Any]
    ) -> TaskCall | Replay:
        """A TaskCall to execute, or the entry of a completed task to replay.

        This is on the path of every replay, which must cost about one raw diskcache read: the
        common case (an intact COMPLETED entry, no refresh) takes no detours.
        """
        x = self._execution
        if not callable(fn):
            raise InvalidOptionError(
                f"run_task({cache_key!r}, fn): fn must be a function, got {type(fn).__name__}; "
                "wrap the side effect, e.g. lambda task: send_email(...)"
            )
        opts = TaskOptions.parse(cache_key, options) if options else DEFAULT_OPTIONS
        encoded = encode_key(cache_key)
        frame = current_frame.get()  # the parent task (x.parent_id(), inline: every call)
        parent = frame.task_id if frame is not None and frame.execution is x else None
        idem = idempotency_key(x.run_id, parent, encoded)
        task_id = idem[:TASK_ID_CHARS]  # task_id_for
        # Claimed for this call: ``dict.setdefault`` is atomic, so two threads racing for one
        # key cannot both win, and no lock is taken on this path of every replay.
        claim = object()
        if x.used_task_ids.setdefault(task_id, claim) is not claim:
            where = "at the top level of the run" if parent is None else "in this parent task"
            raise DuplicateCacheKeyError(
                f"cache key {cache_key!r} is used twice {where} in one execution: each task "
                "needs its own key, so put the loop variable in it, e.g. "
                f"io.run_task([{cache_key!r}, item_id], ...)",
                cache_key=cache_key,
            )
        policy = opts.on_code_change or x.on_code_change
        checked = policy != "ignore" and opts.kind == "task"
        marked = task_id in x.marks  # marked to run again (SPEC 3.7); the set is usually empty
        refresh = opts.refresh or x.refresh or marked
        if not refresh:
            blob = x.snapshot.entries.get(task_id)
            found: Completed | tuple[bytes | None, float] | None
            if type(blob) is tuple:  # a lean snapshot's COMPLETED entry (``sealed.Completed``)
                found = blob
            elif type(blob) is bytes:
                found = completed_output(blob)
            else:
                found = x.snapshot.completed(task_id)
            if found is not None:
                replay = (task_id, found[0], found[1])
                if not checked:
                    return replay
                # The quick check, inline (it is on the path of every replay): the key stored
                # at the end of the entry against the current one. Replayed as it is when none
                # is stored, or when the current one cannot be made.
                stored = found[2] if type(blob) is tuple else None  # type: ignore[misc]
                if type(stored) is not bytes:  # not lean, or read without the keys
                    stored = x.snapshot.digest(task_id)
                if stored is None:
                    return replay
                try:
                    declared = opts.fingerprint
                    current = x.fingerprints.key_of(fn) if declared is None else digest_of(declared)
                except Exception:
                    return replay
                if stored == current.encode("ascii"):
                    return replay
                if not self._is_stale(task_id, cache_key, fn, opts, policy):
                    return replay
                refresh = True  # stale, and to be run again: "rerun" or --refresh-stale
        names = key = None
        mutable = False
        if checked:
            try:
                if opts.fingerprint is not None:
                    names, key = "|".join(opts.fingerprint), digest_of(opts.fingerprint)
                else:
                    names, key, mutable = x.fingerprints.record_of(fn)
            except Exception:  # fingerprinting never fails a task: it runs unfingerprinted
                names = key = None
        known = task_id in x.snapshot.entries
        previous = self._previous(task_id, cache_key, refresh) if known else None
        x.check_canceled()
        fingerprint = (names, key) if key is not None and names is not None else None
        record = new_record(
            x, task_id, idem, parent, encoded, cache_key, opts, previous, fingerprint
        )
        superseded = None
        if refresh and previous is not None and previous.is_completed:
            superseded = _supersede(x, record, previous)
        return TaskCall(
            execution=x,
            record=record,
            cache_key=cache_key,
            fn=fn,
            retry=opts.retry,
            timeout=opts.timeout,
            on_error=opts.on_error,
            refresh=refresh,
            parts=record.fingerprint_parts if mutable else None,  # looked at again at the end
            capture_output=opts.capture_output,
            mmap=opts.mmap,
            superseded=superseded,
            unmark=marked,
        )

    def _fingerprint_of(self, fn: Callable[..., Any]) -> dict[str, str] | None:
        """``fn``'s fingerprint parts in this execution (None: none is kept, or it cannot be
        made): an executor running a child elsewhere stores what a thread would."""
        try:
            return self._execution.fingerprints.of_task(fn)
        except Exception:
            return None

    def _is_stale(
        self,
        task_id: str,
        cache_key: object,
        fn: Callable[..., Any],
        opts: TaskOptions,
        policy: str,
    ) -> bool:
        """Whether a completed task whose fingerprint key differs must run again.

        Called when the quick check in ``_prepare`` found the keys different: the change is
        explained part by part: under "warn" it is replayed and reported (``x.stale``), under
        "error" it raises, under "rerun" (or ``--refresh-stale``) it runs again."""
        x = self._execution
        try:
            parts = opts.fingerprint or x.fingerprints.of_task(fn)
        except Exception:
            return False  # replayed, as when the quick check cannot make the key
        try:
            record = x.snapshot.task(task_id)
        except CacheReadError:
            return False  # the replay reports a damaged record, with the fix
        if record is None:
            return False
        reasons = explain(record.fingerprint_parts, parts, record.fingerprint_before)
        if not reasons:
            return False  # another Python minor version: unknown, never "changed"
        if x.refresh_stale:
            return True  # asked for this execution: it wins over every policy
        if policy == "error":
            raise StaleTaskError(
                f"task {cache_key!r} changed since it ran ({'; '.join(reasons)}) and "
                "on_code_change='error': refresh it with run_task(..., refresh=True) or "
                "%%trigger_job --refresh-stale, or choose on_code_change='warn' or 'rerun'",
                cache_key=cache_key,
                reasons=reasons,
            )
        if policy == "rerun":
            return True
        x.stale[task_id] = reasons
        return False

    def _previous(self, task_id: str, cache_key: object, refresh: bool) -> TaskRecord | None:
        """The record an earlier execution left for a task that runs again (FAILED, RUNNING,
        WAITING, or refreshed); CacheReadError naming the key if it is damaged, unless the
        task is being refreshed, which repairs it."""
        x = self._execution

        def what() -> str:
            return f"task {cache_key!r}"

        try:
            entry = x.snapshot.entry(task_id, what)
            return None if entry is None else parse_task(entry, what, x.run_id, task_id)
        except CacheReadError as error:
            if refresh:
                return None
            raise CacheReadError(
                f"{error}; {refresh_hint(x.run_id, cache_key)}",
                cache_key=cache_key,
                task_id=task_id,
                reason=error.reason,
            ) from error

    # --- waits -------------------------------------------------------------------------------

    def wait(self, cache_key: object, seconds: float | timedelta, *, block: bool = False) -> None:
        """Durably wait: suspend the run until ``seconds`` from the first call have passed.

        With ``block=True`` sleep in place instead (interruptible).
        """
        delay = _check_seconds(seconds)
        x = self._execution

        def wait_task(task: TaskHandle) -> None:
            record = task._record
            resume_at = record.wait_until
            if resume_at is None:
                resume_at = record.wait_until = x.clock.now() + timedelta(seconds=delay)
                x.writer.write(record)
            remaining = (resume_at - x.clock.now()).total_seconds()
            if remaining > 0:
                if not block:
                    raise RunSuspended(resume_at, cache_key)
                x.clock.sleep(remaining)

        self.run_task(cache_key, wait_task, name=f"wait {_human(delay)}", _kind="wait")

    # --- values ------------------------------------------------------------------------------

    def random(
        self, cache_key: object, min: float = 0, max: float = 1, round: bool = False
    ) -> float:
        """A random number in [min, max], the same on every replay."""
        for label, value in (("min", min), ("max", max)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidOptionError(f"io.random {label}={value!r} is invalid: use a number")
        if min > max:
            raise InvalidOptionError(f"io.random min={min!r} is above max={max!r}: swap them")

        def draw() -> float:
            value = random_module.uniform(min, max)
            return int(value + 0.5) if round else value

        result: float = self.run_task(
            cache_key, draw, name="random", params={"min": min, "max": max}, _kind="random"
        )
        return result

    def send_event(
        self, cache_key: object, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> dict[str, Any]:
        """Trigger the client's jobs listening for ``name``, once."""
        send_event = self._execution.send_event
        if send_event is None:
            raise InvalidOptionError("io.send_event needs a run started by a TriggerClient")

        def send() -> dict[str, Any]:
            runs = send_event(name, payload, event_id=event_id)
            return {"name": name, "runs": [run.id for run in runs]}

        params = {"name": name, "payload": to_jsonable(payload)}
        result: dict[str, Any] = self.run_task(
            cache_key, send, name=f"send event {name}", params=params, _kind="send_event"
        )
        return result

    def parallel(
        self,
        cache_key: object,
        items: Iterable[Any],
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        max_workers: int | None = None,
        executor: object = None,
        **options: Any,
    ) -> list[Any]:
        """Run ``fn(item)`` (or ``fn(item, task)``) for every item as child tasks keyed by index,
        concurrently; results come back in item order.

        ``executor``: where the children run (``trigger_nb._engine.executor``): None, the
        job's or client's choice (threads unless set); ``"threads"``; ``"dask"`` or a
        ``DaskExecutor``. ``max_workers``: children in flight at once (threads: 8 by default;
        Dask: unlimited by default)."""
        values = list(items)
        chosen = resolve_executor(executor, "io.parallel") or self._execution.executor

        def batch(child: Callable[[Any], Callable[..., Any]], takes_task: bool) -> ChildBatch:
            return ChildBatch(
                self, cache_key, values, fn, options, max_workers, takes_task, child,
                self._fingerprint_of, self._execution.check_canceled,
            )  # fmt: skip

        result: list[Any] = self.run_task(
            cache_key,
            fan_out(self, values, fn, max_workers, options, chosen, batch),
            name=name or "parallel",
            params={"items": len(values)},
            _kind="parallel",
        )
        return result


def _supersede(x: Execution, record: TaskRecord, previous: TaskRecord) -> Superseded | None:
    """A completed task runs again: the attempt that completed it is marked superseded in
    ``record`` (with what its output was), and its output is to be kept in the task's history.
    None when the earlier entry cannot be read (a damaged one is repaired by the refresh)."""
    try:
        entry = x.snapshot.entry(previous.id)
    except CacheReadError:
        entry = None
    done = [i for i, a in enumerate(record.attempts) if a.status is TaskStatus.COMPLETED]
    if not done or entry is None:
        return None
    index = done[-1]
    attempt = record.attempts[index].model_copy(
        update={
            "superseded": True,
            "output_type": previous.output_type,
            "output_size": previous.output_size,
            "output_preview": previous.output_preview,
        }
    )
    record.attempts[index] = attempt
    return Superseded(attempt.number, entry)


def _check_seconds(seconds: object) -> float:
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        raise InvalidOptionError(
            f"io.wait seconds={seconds!r} is invalid: give a finite number of seconds >= 0 "
            "or a timedelta"
        )
    return float(seconds)


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


__all__ = ["IO", "TaskError"]
