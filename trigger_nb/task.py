"""Executing one task: its attempts, retries, timeouts and durable records (replaying a completed
one is ``trigger_nb.replay``).

Every decision of the attempt loop (record an attempt, retry or give up, complete) is a function
shared by its two short drivers, ``run_sync`` and ``run_async``: ``run_task`` and ``arun_task``
behave identically without two copies of the retry logic.

Calling the function itself (its argument, its frame, its timeout) lives in
``trigger_nb.invocation``.
"""

from __future__ import annotations

import dataclasses
import functools
import pickle
import time
from collections.abc import Callable
from typing import Any

from trigger_nb.codec import deserialize, serialize
from trigger_nb.errors import (
    RunSuspended,
    TaskError,
    TaskTimedOutError,
    TaskTimeoutError,
    TriggerNbError,
)
from trigger_nb.execution import Execution, Logger

# check_timeout and run_coroutine are re-exported (``X as X``): they were defined here before.
from trigger_nb.invocation import check_timeout as check_timeout
from trigger_nb.invocation import invoke_async, invoke_sync
from trigger_nb.invocation import run_coroutine as run_coroutine
from trigger_nb.model import (
    AttemptRecord,
    CountedList,
    ErrorInfo,
    TaskRecord,
    TaskStatus,
    assign,
    build,
)
from trigger_nb.preview import preview, type_name
from trigger_nb.replay import refresh_hint
from trigger_nb.retry import SKIP_RETRYING, RetryAt, RetryOptions, compute_delay, should_retry

_NO_RETRY = RetryOptions(limit=1)
# Read once: an enum member's attribute lookup costs ~0.4 µs, and every executed task makes four.
_RUNNING, _COMPLETED = TaskStatus.RUNNING, TaskStatus.COMPLETED
# Outputs whose unpickled copy is indistinguishable from themselves (immutable, exact builtin
# types): handed back as they are instead of unpickling what was stored.
_IMMUTABLE_OUTPUTS = frozenset({int, float, str, bytes, bool, type(None)})
_RETRY_AT_LIMIT = RetryOptions().limit


class TaskHandle:
    """The ``task`` argument of a task function."""

    def __init__(self, call: TaskCall) -> None:
        record = call.record
        self.id = record.id
        self.cache_key = call.cache_key
        self.idempotency_key = record.idempotency_key
        self.name = record.name
        self.run_id = record.run_id
        self.output_properties: list[dict[str, Any]] = []
        self._call = call
        self._record = record

    @property
    def attempt(self) -> int:
        """1 on the first attempt, 2 on the first retry, ..."""
        return self._call.attempt

    @functools.cached_property
    def logger(self) -> Logger:
        return Logger(self._call.execution, self.id, bound=True)

    def __repr__(self) -> str:
        return f"<task {self.name!r} key={self.cache_key!r} attempt={self.attempt}>"


@dataclasses.dataclass(slots=True)
class TaskCall:
    """One ``run_task`` call, validated, with its record ready to execute."""

    execution: Execution
    record: TaskRecord
    cache_key: object
    fn: Callable[..., Any]
    retry: RetryOptions | None = None
    timeout: float | None = None
    on_error: Callable[[BaseException, TaskHandle], Any] | None = None
    refresh: bool = False
    attempt: int = 0
    _handle: TaskHandle | None = dataclasses.field(default=None, init=False, repr=False)

    @property
    def handle(self) -> TaskHandle:
        """Made when first needed: most task functions take no argument (~1.5 µs a task)."""
        if self._handle is None:
            self._handle = TaskHandle(self)
        return self._handle

    @property
    def label(self) -> str:
        return f"task {self.record.name!r}" if self.record.name else f"task {self.cache_key!r}"

    @property
    def refresh_hint(self) -> str:
        return refresh_hint(self.cache_key, self.record.run_id)


def _begin(call: TaskCall, number: int) -> AttemptRecord:
    """Record the start of attempt ``number``."""
    x, rec = call.execution, call.record
    call.attempt = number
    started = x.clock.now()
    attempt = build(AttemptRecord, {"number": number, "execution": x.number, "started_at": started})
    rec.attempts.append(attempt)
    assign(rec, status=_RUNNING, started_at=started, error=None)
    if call.refresh and number == 1:
        # Now, not late: the stale output must be gone before the side effect runs again.
        x.writer.write(rec, drop_output=True)
    else:
        x.writer.started(rec)  # a RUNNING entry only if it is still running a moment later
    x.publish("task_started", rec)
    return attempt


def _failed(call: TaskCall, attempt: AttemptRecord, error: BaseException) -> float:
    """Record a failed attempt; the seconds to wait before the next one, or raise: the task
    failed for good (``TaskError``), was suspended or interrupted (that error, unchanged)."""
    x, rec = call.execution, call.record
    if isinstance(error, RunSuspended):
        _finish(call, attempt, TaskStatus.WAITING, None)
        raise error
    if isinstance(error, TriggerNbError) and not (
        isinstance(error, TaskTimeoutError) and getattr(error, "task_id", None) == rec.id
    ):
        # A child task's failure (or a usage error inside): the parent fails with it, unchanged,
        # and is not retried for it.
        _finish(call, attempt, TaskStatus.FAILED, error)
        raise error
    if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit, asyncio cancellation
        _finish(call, attempt, TaskStatus.INTERRUPTED, error)
        raise error
    delay, failure = _decide(call, call.retry or _NO_RETRY, attempt.number, error)
    if delay is None:
        _finish(call, attempt, TaskStatus.FAILED, failure)
        these = CountedList(a for a in rec.attempts if a.execution == x.number)
        plural = "attempt" if len(these) == 1 else "attempts"
        info = rec.error or ErrorInfo.from_exception(failure)
        # A last attempt that timed out is both: `except TaskTimeoutError` catches it too.
        kind = TaskTimedOutError if isinstance(failure, TaskTimeoutError) else TaskError
        raise kind(
            f"{call.label} failed after {len(these)} {plural}: {info.summary()}",
            cache_key=call.cache_key,
            task_id=rec.id,
            attempts=these,
            error=info,
        ) from failure
    attempt.status, attempt.finished_at = TaskStatus.FAILED, x.clock.now()
    attempt.error = ErrorInfo.from_exception(failure)
    x.writer.write(rec)
    x.publish("task_retrying", rec)
    return delay


def _decide(
    call: TaskCall, options: RetryOptions, number: int, error: BaseException
) -> tuple[float | None, BaseException]:
    """Seconds to wait before the next attempt (None: give up), and the error to record."""
    try:
        decision = call.on_error(error, call.handle) if call.on_error is not None else None
    except Exception as hook_error:  # a broken on_error fails the task with its own error
        hook_error.__cause__ = error
        return None, hook_error
    if isinstance(decision, BaseException):
        decision.__cause__ = decision.__cause__ or error
        error = decision
    if decision is SKIP_RETRYING:
        return None, error
    if isinstance(decision, RetryAt):
        limit = call.retry.limit if call.retry is not None else _RETRY_AT_LIMIT
        now = call.execution.clock.now()
        return (decision.delay_from(now) if number < limit else None), error
    if number < options.limit and should_retry(error, options):
        return compute_delay(number, options), error
    return None, error


def _finish(
    call: TaskCall, attempt: AttemptRecord, status: TaskStatus, error: BaseException | None
) -> None:
    x, rec = call.execution, call.record
    attempt.status, attempt.finished_at = status, x.clock.now()
    info = None
    if error is not None:
        child = getattr(error, "error", None)
        info = child if isinstance(child, ErrorInfo) else ErrorInfo.from_exception(error)
        attempt.error = info
    rec.status, rec.error = status, info
    if status is TaskStatus.FAILED:
        with x.lock:
            x.failed += 1
    x.writer.write(rec)
    x.publish(f"task_{status.value.lower()}", rec)


def _complete(call: TaskCall, attempt: AttemptRecord, result: Any, seconds: float) -> Any:
    x, rec = call.execution, call.record
    try:
        data = serialize(result, call.cache_key)
    except TriggerNbError as error:
        _finish(call, attempt, TaskStatus.FAILED, error)
        raise
    now = x.clock.now()
    assign(attempt, status=_COMPLETED, finished_at=now)
    assign(
        rec,
        status=_COMPLETED,
        completed_at=now,
        completed_execution=x.number,
        duration_seconds=seconds if rec.kind != "wait" else 0.0,
        output_type=type_name(result),
        output_size=len(data),
        output_preview=preview(result, rec.redact),
        output_properties=list(call._handle.output_properties) if call._handle else [],
    )
    x.writer.write(rec, data)
    with x.lock:
        x.executed += 1
    x.publish("task_completed", rec)
    # Hand back what was stored, so the first execution and every replay see the same value.
    if type(result) in _IMMUTABLE_OUTPUTS:
        return result
    try:
        return pickle.loads(data)
    except Exception:  # fails again, now with the message that helps (built only on failure)
        return deserialize(data, call.label, call.refresh_hint)


# The attempt loop, once for sync and once for async code: all it decides lives in _begin,
# _failed and _complete. (A generator shared by both drivers cost ~3 µs of every task.)


def run_sync(call: TaskCall) -> Any:
    number = 0
    while True:
        number += 1
        attempt = _begin(call, number)
        began = time.perf_counter()
        try:
            try:
                result = invoke_sync(call)
            finally:
                call.execution.writer.settle(call.record.id)  # no late RUNNING entry now
        except BaseException as error:
            delay = _failed(call, attempt, error)
            call.execution.clock.sleep(delay)
            continue
        return _complete(call, attempt, result, time.perf_counter() - began)


async def run_async(call: TaskCall) -> Any:
    number = 0
    while True:
        number += 1
        attempt = _begin(call, number)
        began = time.perf_counter()
        try:
            try:
                result = await invoke_async(call)
            finally:
                call.execution.writer.settle(call.record.id)  # no late RUNNING entry now
        except BaseException as error:
            delay = _failed(call, attempt, error)
            await call.execution.clock.asleep(delay)
            continue
        return _complete(call, attempt, result, time.perf_counter() - began)
