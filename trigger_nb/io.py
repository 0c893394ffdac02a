"""``io``: the object a run function uses for every side effect.

Each member is a task: cached under its key in the current scope (the run, or the parent task)
and replayed from the store on later executions.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import math
import random as random_module
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from trigger_nb.codec import to_jsonable
from trigger_nb.errors import (
    CacheReadError,
    DuplicateCacheKeyError,
    InvalidOptionError,
    RunSuspended,
    TaskError,
)
from trigger_nb.execution import Execution, Logger
from trigger_nb.keys import (
    display_key,
    encode_key,
    idempotency_key,
    storable_text,
    task_id_for,
)
from trigger_nb.model import TaskRecord, TaskStatus
from trigger_nb.retry import RetryOptions
from trigger_nb.task import (
    TaskCall,
    TaskHandle,
    check_timeout,
    replay,
    run_async,
    run_coroutine,
    run_sync,
)

if TYPE_CHECKING:
    import concurrent.futures

    from trigger_nb.integration import IntegrationProxy

DEFAULT_PARALLEL_WORKERS = 8


class IO:
    """Tasks, waits, logs, random numbers, events, fan-out and integrations for one execution."""

    def __init__(self, execution: Execution, integrations: dict[str, Any] | None = None) -> None:
        self._execution = execution
        self._integrations = dict(integrations or {})
        self.logger = Logger(execution)

    def __getattr__(self, name: str) -> IntegrationProxy:
        integrations = self.__dict__.get("_integrations", {})
        if name in integrations:
            from trigger_nb.integration import IntegrationProxy

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
        if not isinstance(call, TaskCall):
            return replay(self._execution, call, cache_key, options.get("name"))
        return run_sync(call)

    async def arun_task(self, cache_key: object, fn: Callable[..., Any], **options: Any) -> Any:
        """The awaitable twin of ``run_task``, for concurrent fan-out with ``asyncio.gather``."""
        call = self._prepare(cache_key, fn, options)
        if not isinstance(call, TaskCall):
            return replay(self._execution, call, cache_key, options.get("name"))
        return await run_async(call)

    def _prepare(
        self, cache_key: object, fn: Callable[..., Any], options: dict[str, Any]
    ) -> TaskCall | str:
        """A TaskCall to execute, or the id of a completed task to replay."""
        x = self._execution
        if not callable(fn):
            raise InvalidOptionError(
                f"run_task({cache_key!r}, fn): fn must be a function, got {type(fn).__name__}; "
                "wrap the side effect, e.g. lambda task: send_email(...)"
            )
        opts = _TaskOptions.parse(cache_key, options) if options else _DEFAULTS
        refresh = opts.refresh or x.refresh
        encoded = encode_key(cache_key)
        parent = x.parent_id()
        idem = idempotency_key(x.run_id, parent, encoded)
        task_id = task_id_for(idem)
        with x.lock:
            if task_id in x.used_task_ids:
                where = "at the top level of the run" if parent is None else "in this parent task"
                raise DuplicateCacheKeyError(
                    f"cache key {cache_key!r} is used twice {where} in one execution: each task "
                    "needs its own key, so put the loop variable in it, e.g. "
                    f"io.run_task([{cache_key!r}, item_id], ...)",
                    cache_key=cache_key,
                )
            x.used_task_ids.add(task_id)
        if not refresh and task_id in x.snapshot.outputs:
            return task_id
        previous = None
        if task_id in x.snapshot.raw_tasks:
            try:
                previous = x.snapshot.task(task_id)
            except CacheReadError as error:
                if not refresh:
                    raise CacheReadError(
                        f"task {cache_key!r}: {error} (pass refresh=True to run it again)",
                        cache_key=cache_key,
                        task_id=task_id,
                    ) from error
        record = _new_record(x, task_id, idem, parent, encoded, cache_key, opts, previous)
        return TaskCall(
            execution=x,
            record=record,
            cache_key=cache_key,
            fn=fn,
            retry=opts.retry,
            timeout=opts.timeout,
            on_error=opts.on_error,
            refresh=refresh,
        )

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
                x.store.save_task(record)
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
        client = self._execution.client
        if client is None:
            raise InvalidOptionError("io.send_event needs a run started by a TriggerClient")

        def send() -> dict[str, Any]:
            runs = client.send_event(name, payload, event_id=event_id)
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
        max_workers: int = DEFAULT_PARALLEL_WORKERS,
        **options: Any,
    ) -> list[Any]:
        """Run ``fn(item)`` (or ``fn(item, task)``) for every item as child tasks keyed by index,
        concurrently; results come back in item order."""
        values = list(items)
        takes_task = _positional_count(fn) >= 2

        def child(item: Any) -> Callable[..., Any]:
            if takes_task:
                return lambda task: fn(item, task)
            return lambda: fn(item)

        def fan_out() -> list[Any]:
            if inspect.iscoroutinefunction(fn):
                return list(run_coroutine(self._gather(values, child, options)))
            # Imported here, not at the top: with asyncio it adds ~30 ms to `import trigger_nb`.
            import concurrent.futures

            workers = max(1, min(max_workers, len(values) or 1))
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                futures = [
                    pool.submit(contextvars.copy_context().run, self._child, i, child(v), options)
                    for i, v in enumerate(values)
                ]
                outcomes = [_outcome(f) for f in futures]
            return _results_or_raise(outcomes)

        result: list[Any] = self.run_task(
            cache_key,
            fan_out,
            name=name or "parallel",
            params={"items": len(values)},
            _kind="parallel",
        )
        return result

    def _child(self, index: int, fn: Callable[..., Any], options: dict[str, Any]) -> Any:
        return self.run_task(index, fn, name=f"item {index}", **options)

    async def _gather(
        self, values: list[Any], child: Callable[[Any], Callable[..., Any]], options: dict[str, Any]
    ) -> list[Any]:
        coroutines = [
            self.arun_task(i, child(v), name=f"item {i}", **options) for i, v in enumerate(values)
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


class _TaskOptions:
    """The keyword options of ``run_task``, checked once with messages naming the option."""

    KNOWN = (
        "name", "icon", "description", "properties", "params", "retry", "timeout", "on_error",
        "redact", "refresh", "retry_on", "no_retry_on", "_kind",
    )  # fmt: skip

    def __init__(self) -> None:
        self.name: str | None = None
        self.icon: str | None = None
        self.description: str | None = None
        self.properties: list[dict[str, Any]] = []
        self.params: Any = None
        self.retry: RetryOptions | None = None
        self.timeout: float | None = None
        self.on_error: Callable[..., Any] | None = None
        self.redact: list[str] = []
        self.refresh = False
        self.kind = "task"

    @classmethod
    def parse(cls, cache_key: object, options: dict[str, Any]) -> _TaskOptions:
        unknown = sorted(set(options) - set(cls.KNOWN))
        if unknown:
            raise InvalidOptionError(
                f"run_task({cache_key!r}) got unknown option(s) {', '.join(unknown)}; "
                f"known options: {', '.join(k for k in cls.KNOWN if not k.startswith('_'))}"
            )
        o = cls()
        for label in ("name", "icon", "description"):
            value = options.get(label)
            if value is not None and not isinstance(value, str):
                raise InvalidOptionError(f"run_task {label}={value!r} is invalid: use a string")
            setattr(o, label, _storable(label, value))
        o.properties = _storable("properties", _check_properties(options.get("properties")))
        o.params = _storable("params", to_jsonable(options.get("params")))
        o.retry = _check_retry(options)
        o.timeout = check_timeout(options.get("timeout"))
        on_error = options.get("on_error")
        if on_error is not None and not callable(on_error):
            raise InvalidOptionError(
                f"run_task on_error={on_error!r} is invalid: give a function (error, task)"
            )
        o.on_error = on_error
        redact = options.get("redact") or []
        if isinstance(redact, str):
            redact = [redact]
        if not isinstance(redact, (list, tuple)) or not all(
            isinstance(path, str) and path for path in _storable("redact", redact)
        ):
            raise InvalidOptionError(
                f"run_task redact={redact!r} is invalid: give dotted paths, e.g. ['user.token']"
            )
        o.redact = list(redact)
        o.refresh = bool(options.get("refresh", False))
        o.kind = options.get("_kind", "task")
        return o


_DEFAULTS = _TaskOptions()


def _storable(label: str, value: Any) -> Any:
    """``value``, once checked to fit in the task record (UTF-8 JSON): text with a lone surrogate
    (or an int too long to write) would otherwise fail deep inside the store."""
    if not value or (isinstance(value, str) and value.isascii()):
        return value
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
        raise InvalidOptionError(
            f"run_task {label} cannot be stored ({type(error).__name__}: {error}): use valid "
            "Unicode text and JSON-able values"
        ) from None
    return value


def _check_retry(options: dict[str, Any]) -> RetryOptions | None:
    retry = options.get("retry")
    if retry is not None and not isinstance(retry, RetryOptions):
        raise InvalidOptionError(
            f"run_task retry={retry!r} is invalid: use RetryOptions(limit=..., ...) or a preset "
            "such as trigger_nb.retry.standard_backoff"
        )
    retry_on, no_retry_on = options.get("retry_on"), options.get("no_retry_on")
    if retry_on is None and no_retry_on is None:
        return retry
    import dataclasses

    base = retry or RetryOptions()
    changes = {"retry_on": retry_on, "no_retry_on": no_retry_on}
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})


def _check_properties(properties: object) -> list[dict[str, Any]]:
    if properties is None:
        return []
    ok = isinstance(properties, list) and all(
        isinstance(p, dict) and "label" in p and "text" in p for p in properties
    )
    if not ok:
        raise InvalidOptionError(
            f"run_task properties={properties!r} is invalid: give a list of "
            "{'label': ..., 'text': ..., 'url': optional} dicts"
        )
    checked: list[dict[str, Any]] = properties  # type: ignore[assignment]
    return [{k: to_jsonable(v) for k, v in p.items()} for p in checked]


def _new_record(
    x: Execution,
    task_id: str,
    idem: str,
    parent: str | None,
    encoded: str,
    cache_key: object,
    opts: _TaskOptions,
    previous: TaskRecord | None,
) -> TaskRecord:
    shown = display_key(cache_key)
    name = opts.name or (shown if isinstance(shown, str) else str(shown))
    record = TaskRecord(
        id=task_id,
        run_id=x.run_id,
        parent_id=parent,
        key=storable_text(encoded),
        cache_key=shown,
        idempotency_key=idem,
        kind=opts.kind,
        seq=previous.seq if previous is not None else x.next_seq(),
        name=name,
        icon=opts.icon,
        description=opts.description,
        properties=opts.properties,
        params=opts.params,
        redact=opts.redact,
        status=TaskStatus.RUNNING,
        created_at=previous.created_at if previous is not None else x.clock.now(),
        first_execution=previous.first_execution if previous is not None else x.number,
        attempts=list(previous.attempts) if previous is not None else [],
        wait_until=previous.wait_until if previous is not None else None,
    )
    return record


__all__ = ["IO", "TaskError"]
