"""Executing one task: its attempts, retries and durable records (replaying a completed one is
``trigger_nb._engine.replay``; the call and its ``task`` handle are ``trigger_nb._engine.handle``,
its stored output ``trigger_nb._engine.output``).

Every decision of the attempt loop (record an attempt, retry or give up, complete) is a function
shared by its two short drivers, ``run_sync`` and ``run_async``: ``run_task`` and ``arun_task``
behave identically without two copies of the retry logic.

Calling the function itself (its argument, its frame, its timeout) lives in
``trigger_nb._engine.invocation``.
"""

from __future__ import annotations

import time
from typing import Any

from trigger_nb._core.builder import assign, build
from trigger_nb._core.codec import loads
from trigger_nb._core.model import AttemptRecord, CountedList, ErrorInfo, TaskStatus
from trigger_nb._core.preview import preview, type_name
from trigger_nb._core.retry import SKIP_RETRYING, RetryAt, RetryOptions, compute_delay, should_retry
from trigger_nb._engine.capture import pack
from trigger_nb._engine.fingerprint import digest_of
from trigger_nb._engine.handle import TaskCall
from trigger_nb._engine.invocation import invoke_async, invoke_sync
from trigger_nb._engine.item_order import wait_to_run
from trigger_nb._engine.output import output_properties, stored_form
from trigger_nb._store.framed import Pickled, stored_size
from trigger_nb.errors import (
    InternalError,
    RunSuspended,
    TaskError,
    TaskOutputError,
    TaskTimedOutError,
    TaskTimeoutError,
    TriggerNbError,
)

_NO_RETRY = RetryOptions(limit=1)
# Read once: an enum member's attribute lookup costs ~0.4 µs, and every executed task makes four.
_RUNNING, _COMPLETED = TaskStatus.RUNNING, TaskStatus.COMPLETED
_RETRY_AT_LIMIT = RetryOptions().limit


def _begin(call: TaskCall, number: int) -> AttemptRecord:
    """Record the start of this execution's attempt ``number``.

    Attempts are numbered across executions (a task that failed twice in one execution and
    succeeded in the next has attempts 1, 2 and 3); the retry limit counts this execution's.
    """
    x, rec = call.execution, call.record
    call.attempt = overall = len(rec.attempts) + 1
    started = x.clock.now()
    attempt = build(
        AttemptRecord, {"number": overall, "execution": x.number, "started_at": started}
    )
    rec.attempts.append(attempt)
    # ``attempts`` marked as set (the entry keeps only fields set: see write_task); ``error``
    # only when there is one to clear, not set to its default for nothing.
    # ``started_at`` unmarked: it is the last attempt's start (see ``TaskRecord``).
    rec.__dict__["started_at"] = started
    if rec.error is None:
        assign(rec, status=_RUNNING, attempts=rec.attempts)
    else:
        assign(rec, status=_RUNNING, attempts=rec.attempts, error=None)
    if call.refresh and number == 1:
        # Now, not late: the stale output must be out of the task's slot (into its history)
        # before the side effect runs again, and its refresh mark gone with it.
        x.writer.write(rec, drop_output=True, superseded=call.superseded, unmark=call.unmark)
        x.refreshed_ids.append(rec.id)
    else:
        x.writer.started(rec)  # a RUNNING entry only if it is still running a moment later
    x.events.task_started(rec)
    return attempt


def _failed(call: TaskCall, attempt: AttemptRecord, number: int, error: BaseException) -> float:
    """Record a failed attempt; the seconds to wait before the next one, or raise: the task
    failed for good (``TaskError``), was suspended or interrupted (that error, unchanged).

    Anything else escaping from here is trigger_nb failing to record the failure: it becomes an
    ``InternalError`` that names the task and its own error, so the run still ends FAILURE
    with a message saying what to report instead of some internal exception's text."""
    try:
        return _record_failure(call, attempt, number, error)
    except Exception as raised:
        if raised is error or isinstance(raised, TriggerNbError):
            raise
        own = ErrorInfo.from_exception(error).summary()
        problem = ErrorInfo.from_exception(raised).summary()
        raise InternalError(
            f"internal error in trigger_nb while recording the failure of {call.label} "
            f"({problem}); the task itself failed with {own}. This is a bug in trigger_nb, "
            "not in your code: please report it with this message and the traceback"
        ) from raised


def _record_failure(
    call: TaskCall, attempt: AttemptRecord, number: int, error: BaseException
) -> float:
    x, rec = call.execution, call.record
    if isinstance(error, RunSuspended):
        _finish(call, attempt, TaskStatus.WAITING, None)
        raise error
    if isinstance(error, TaskOutputError) and not error.retryable:
        _finish(call, attempt, TaskStatus.FAILED, error)  # cannot be pickled: retrying won't help
        raise error
    if isinstance(error, TriggerNbError) and getattr(error, "task_id", None) != rec.id:
        # A child task's failure (or a usage error inside): the parent fails with it, unchanged,
        # and is not retried for it.
        _finish(call, attempt, TaskStatus.FAILED, error)
        raise error
    if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit, asyncio cancellation
        _finish(call, attempt, TaskStatus.INTERRUPTED, error)
        raise error
    delay, failure = _decide(call, call.retry or _NO_RETRY, number, error)
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
    x.writer.write(rec, capture=_captured(call, attempt))
    x.events.task_retrying(rec)
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
    x.writer.write(rec, capture=_captured(call, attempt))
    x.events.task_finished(rec)


def _complete(
    call: TaskCall, attempt: AttemptRecord, data: bytes | Pickled, value: Any, seconds: float
) -> Any:
    """Record the task COMPLETED with ``data``; ``seconds`` covers all of this execution's
    attempts and the back-off between them (the time a replay saves)."""
    x, rec = call.execution, call.record
    if call.parts is not None:
        changed = x.fingerprints.changed_by_run(call.fn, call.parts)
        if changed:  # the kernel now holds these values: the quick check compares with them
            before = {name: call.parts[name] for name in changed}
            after = digest_of({**call.parts, **changed})
            assign(rec, fingerprint_before=before, fingerprint=after)
    now = x.clock.now()
    assign(attempt, status=_COMPLETED, finished_at=now)
    # Unmarked (see ``TaskRecord``): the end of the last attempt, and the seconds the entry's
    # header holds with the output.
    rec.__dict__.update(completed_at=now, duration_seconds=seconds if rec.kind != "wait" else 0.0)
    assign(
        rec,
        status=_COMPLETED,
        completed_execution=x.number,
        output_type=type_name(value),
        output_size=stored_size(data),
        output_preview=preview(value, rec.redact),
    )
    if call._handle is not None and call._handle.output_properties:
        assign(rec, output_properties=output_properties(call))
    x.writer.write(rec, data, capture=_captured(call, attempt) if call.capture else None)
    x.executed_ids.append(rec.id)  # atomic: no lock
    x.events.task_finished(rec)
    if isinstance(data, Pickled):
        if call.mmap:  # what replays will return: mapped, read-only
            value = loads(x.store.read_output(x.run_id, rec.id, mapped=True))
        x.big_outputs[id(value)] = (value, rec)
    return value


def _captured(call: TaskCall, attempt: AttemptRecord) -> tuple[int, bytes] | None:
    """What the attempt printed and displayed, packed to be stored with its record (None if
    nothing). Capture never fails a task: output that cannot be packed is not kept."""
    capture = call.capture
    if capture is None or not capture.has_output():
        return None
    try:
        packed = pack(capture.events())
    except Exception:
        return None
    attempt.captured = True
    return attempt.number, packed


# The attempt loop, once for sync and once for async code: all it decides lives in _begin,
# _failed, stored_form and _complete. (A generator shared by both drivers cost ~3 µs of every
# task.)


def run_sync(call: TaskCall) -> Any:
    number, spent = 0, 0.0
    wait_to_run()  # a parallel task's child: after the earlier children's replayed output
    while True:
        number += 1
        attempt = _begin(call, number)
        began = time.perf_counter()
        try:
            try:
                result = invoke_sync(call)
            finally:
                call.execution.writer.settle(call.record.id)  # no late RUNNING entry now
            data, value = stored_form(call, result)
        except BaseException as error:
            delay = _failed(call, attempt, number, error)
            spent += time.perf_counter() - began + delay
            call.execution.clock.sleep(delay)
            continue
        return _complete(call, attempt, data, value, spent + time.perf_counter() - began)


async def run_async(call: TaskCall) -> Any:
    number, spent = 0, 0.0
    while True:
        number += 1
        attempt = _begin(call, number)
        began = time.perf_counter()
        try:
            try:
                result = await invoke_async(call)
            finally:
                call.execution.writer.settle(call.record.id)  # no late RUNNING entry now
            data, value = stored_form(call, result)
        except BaseException as error:
            delay = _failed(call, attempt, number, error)
            spent += time.perf_counter() - began + delay
            await call.execution.clock.asleep(delay)
            continue
        return _complete(call, attempt, data, value, spent + time.perf_counter() - began)
