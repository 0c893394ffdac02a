"""Executing one run: replay what completed, execute the rest, record the outcome.

``execute_run`` is the one entry point (``Job.trigger`` and ``JobRun.resume`` call it);
``Context`` is the run function's ``ctx``. Looking at a run afterwards is
``trigger_nb._client.run``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trigger_nb._core.codec import serialize
from trigger_nb._core.model import (
    ErrorInfo,
    EventInfo,
    ExecutionRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskStatus,
)
from trigger_nb._core.preview import preview, type_name
from trigger_nb._core.storable import storable_data, storable_text
from trigger_nb._core.tracebacks import PACKAGE_DIR
from trigger_nb._engine.execution import Execution, Listener
from trigger_nb._engine.replay import count_replayed
from trigger_nb._store.store import Store
from trigger_nb.errors import (
    ControlFlow,
    InternalError,
    RunCanceled,
    RunConflictError,
    RunSuspended,
    TriggerNbError,
)

if TYPE_CHECKING:
    from trigger_nb._client.job import Job, TriggerClient
    from trigger_nb._client.run import JobRun

# A run's output not produced in (or not loaded into) this process; shared with ``JobRun``.
MISSING: Any = object()


@dataclasses.dataclass(frozen=True)
class JobContext:
    id: str
    name: str
    version: str


@dataclasses.dataclass(frozen=True)
class RunContext:
    id: str
    execution: int  # 1 on the first execution, 2 on the first re-execution, ...
    started_at: datetime

    @property
    def execution_number(self) -> int:
        return self.execution

    @property
    def is_replay(self) -> bool:
        """True from the second execution on: completed tasks are being replayed."""
        return self.execution > 1


@dataclasses.dataclass(frozen=True)
class EventContext:
    name: str | None
    id: str
    timestamp: datetime
    payload: Any  # the raw (JSON) payload, as sent; the run function gets the validated one

    @property
    def raw_payload(self) -> Any:
        return self.payload


@dataclasses.dataclass(frozen=True)
class Context:
    """``ctx``, the run function's third argument."""

    job: JobContext
    run: RunContext
    event: EventContext
    client: TriggerClient


def execute_run(
    job: Job,
    run_id: str,
    payload: Any,
    payload_json: Any,
    *,
    raw_payload: Any = MISSING,
    replace: bool = False,
    event_name: str | None = None,
    event_id: str | None = None,
    listeners: list[Listener] | None = None,
    run_fn: Any = None,
    refresh: bool = False,
) -> JobRun:
    """One execution of a run: replay what completed, execute the rest, record the outcome.

    ``raw_payload``: the payload as sent (``ctx.event.payload``), when this execution was
    triggered with one. ``replace``: an existing run under ``run_id`` is deleted first and a
    fresh one starts (``job.trigger(run_id=..., new_run=True)``); otherwise an existing run must
    belong to this job and payload (``RunConflictError``, nothing written). ``refresh=True``
    runs every task again instead of replaying it.

    Whatever happens inside, the run ends recorded in a final state (or WAITING) and its lock
    is released: a run is never left RUNNING by this process.
    """
    from trigger_nb._client.run import (
        JobRun,  # here, not at the top: trigger_nb._client.run imports this module
    )

    client, store, clock = job.client, job.client.store, job.client.clock
    with store.lock_run(run_id):
        now = clock.now()
        existing = store.load_run(run_id)
        if existing is not None and replace:
            store.delete_run(run_id)  # the user asked for a fresh run under this id
            existing = None
        if existing is not None:
            _check_same_run(existing, job, payload_json)
        raw_json = _raw_json(raw_payload, payload_json)
        record = existing or RunRecord(
            id=run_id,
            job_id=job.id,
            job_name=storable_text(job.name),
            job_version=job.version,
            client_id=client.id,
            event=EventInfo(
                name=event_name,
                id=event_id or uuid.uuid4().hex,
                timestamp=now,
                payload=payload_json,
                raw_payload=raw_json,
            ),
            created_at=now,
            updated_at=now,
        )
        store.clear_cancel(run_id)  # triggering (or resuming) a canceled run continues it
        history = ExecutionRecord(number=record.executions + 1, started_at=now)
        record.execution_history.append(history)
        record.status, record.updated_at, record.error = RunStatus.RUNNING, now, None
        record.wait_until = record.completed_at = None
        store.save_run(record)
        # From here on the run is RUNNING in the store: every path ends in _finish_run.
        outcome = _Outcome()
        x: Execution | None = None
        try:
            x = Execution(
                run_id,
                history.number,
                store,
                store.load_snapshot(run_id),
                clock,
                client,
                list(listeners or []),
            )
            x.refresh = refresh
            x.publish("run_started", record)
            fn = run_fn or job.run_fn
            assert fn is not None, "checked by Job.trigger"
            event_payload = raw_payload if raw_payload is not MISSING else record.event.raw
            _call_run_function(fn, payload, x, job, record, event_payload, outcome)
        except BaseException as error:  # the engine's own failure around the run function
            outcome.fail(record, error)
        finally:
            _finish_run(store, record, history, x, clock.now(), outcome)
    run = JobRun(store, record, client=client, output=outcome.output, exception=outcome.exception)
    if isinstance(outcome.exception, KeyboardInterrupt):
        raise outcome.exception
    return run


class _Outcome:
    """What the run function produced: its output, or the exception it ended with."""

    def __init__(self) -> None:
        self.output: Any = MISSING
        self.exception: BaseException | None = None

    def fail(self, record: RunRecord, error: BaseException) -> None:
        if isinstance(error, RunSuspended):
            record.status, record.wait_until = RunStatus.WAITING, error.resume_at
            return
        if isinstance(error, RunCanceled):
            record.status, record.error = RunStatus.CANCELED, ErrorInfo.from_exception(error)
            return
        if isinstance(error, KeyboardInterrupt):
            record.status, record.error = RunStatus.CANCELED, ErrorInfo.from_exception(error)
        else:
            record.status, record.error = RunStatus.FAILURE, ErrorInfo.from_exception(error)
            if _is_internal_error(error):
                record.error = _internal_error_info(error, "while executing the run")
        self.exception = error


def _call_run_function(
    fn: Any,
    payload: Any,
    x: Execution,
    job: Job,
    record: RunRecord,
    event_payload: Any,
    outcome: _Outcome,
) -> None:
    from trigger_nb._engine.invocation import run_coroutine
    from trigger_nb._engine.io import IO

    io = IO(x, job.integrations)
    ctx = Context(
        job=JobContext(job.id, job.name, job.version),
        run=RunContext(x.run_id, x.number, record.created_at),
        event=EventContext(
            record.event.name, record.event.id, record.event.timestamp, event_payload
        ),
        client=x.client,  # type: ignore[arg-type]  # always set by execute_run
    )
    try:
        result = fn(payload, io, ctx)
        if inspect.isawaitable(result):
            result = run_coroutine(result)
    except BaseException as error:
        outcome.fail(record, error)
        return
    outcome.output = result
    _record_output(x.store, record, result)


def _finish_run(
    store: Store,
    record: RunRecord,
    history: ExecutionRecord,
    x: Execution | None,
    now: datetime,
    outcome: _Outcome,
) -> None:
    """Record how the execution ended. If that fails (a bug, a broken store), record at least a
    FAILURE naming the internal error, so the run is never left RUNNING."""
    try:
        if record.status is RunStatus.RUNNING:  # an exception escaped before an outcome was set
            record.status = RunStatus.FAILURE
        if record.status is RunStatus.WAITING and store.is_cancel_requested(record.id):
            record.status = RunStatus.CANCELED  # canceled while running: no resume
        if x is not None:
            _record_lost_outcomes(x, x.writer.close(), record, now)
        _close_execution(record, history, x, now)
        store.save_run(record)
    except Exception as error:
        record.status, record.completed_at, record.wait_until = RunStatus.FAILURE, now, None
        history.status, history.finished_at = RunStatus.FAILURE, now
        record.error = _internal_error_info(error, "while recording how the run ended")
        outcome.exception = outcome.exception or InternalError(record.error.message)
        store.save_run(record)  # if even this fails, the store itself is broken: StoreError
    if x is not None:
        x.publish("run_finished", record)


def _record_lost_outcomes(
    x: Execution, tasks: list[TaskRecord], record: RunRecord, now: datetime
) -> None:
    """Tasks still stored as RUNNING when the execution ends: writing their outcome failed (the
    run's error says why). Record them FAILED, so they run again next time like any failure,
    rather than looking as if they were still running."""
    for task in tasks:
        error = ErrorInfo(
            type="trigger_nb.errors.InternalError",
            message=(
                "trigger_nb could not record how this task ended"
                + (f" ({record.error.summary()})" if record.error else "")
                + "; it runs again when the run is executed again"
            ),
        )
        if task.attempts and task.attempts[-1].finished_at is None:
            task.attempts[-1].status, task.attempts[-1].finished_at = TaskStatus.FAILED, now
            task.attempts[-1].error = error
        task.status, task.error = TaskStatus.FAILED, error
        x.store.write_task(task)
        x.publish("task_failed", task)


def _check_same_run(existing: RunRecord, job: Job, payload_json: Any) -> None:
    """An existing run may only be executed again by its own job, for its own payload."""
    if existing.job_id != job.id:
        raise RunConflictError(
            f"run id {existing.id!r} already belongs to job {existing.job_id!r}, not to job "
            f"{job.id!r}: runs never mix. Give job {job.id!r} another run_id, or pass "
            "new_run=True to delete that run and start a fresh one under this id",
            run_id=existing.id,
            existing_job_id=existing.job_id,
        )
    stored, given = _canonical(existing.event.payload), _canonical(payload_json)
    if stored != given:
        raise RunConflictError(
            f"run id {existing.id!r} of job {job.id!r} was started with payload "
            f"{_shorten(stored)}, not {_shorten(given)}: its tasks' results were computed from "
            "the first one. Give another run_id for this payload, or pass new_run=True to "
            "delete that run and start a fresh one under this id",
            run_id=existing.id,
            existing_job_id=existing.job_id,
        )


def _canonical(payload_json: Any) -> str:
    return json.dumps(payload_json, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


PAYLOAD_SHOWN_CHARS = 80


def _shorten(text: str) -> str:
    if len(text) <= PAYLOAD_SHOWN_CHARS:
        return text
    return text[: PAYLOAD_SHOWN_CHARS - 1] + "…"


def _raw_json(raw_payload: Any, payload_json: Any) -> Any:
    """The payload as sent, as JSON, when it differs from the validated form (else None: the
    validated form stands for it, and the record stays small)."""
    if raw_payload is MISSING or raw_payload is None:
        return None
    try:
        from trigger_nb._core.trigger import plain_json

        raw = storable_data(plain_json(raw_payload, "?"))
    except Exception:  # the validated form is what the run is identified by; raw is a courtesy
        return None
    return None if _canonical(raw) == _canonical(payload_json) else raw


def _is_internal_error(error: BaseException) -> bool:
    """An exception raised by trigger_nb's own code that is none of its documented errors."""
    if isinstance(error, (TriggerNbError, ControlFlow)) or not isinstance(error, Exception):
        return False
    tb = error.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return last is not None and last.tb_frame.f_code.co_filename.startswith(PACKAGE_DIR)


def _internal_error_info(error: BaseException, where: str) -> ErrorInfo:
    info = ErrorInfo.from_exception(error)
    return ErrorInfo(
        type="trigger_nb.errors.InternalError",
        message=(
            f"internal error in trigger_nb {where}: {info.summary()}. This is a bug in "
            f"trigger_nb {_version()}, not in your code: please report it with this message "
            "and the traceback. The run is recorded as failed; re-run it to continue."
        ),
        traceback=info.traceback,
    )


def _version() -> str:
    from trigger_nb import __version__

    return __version__


def _record_output(store: Store, record: RunRecord, output: Any) -> None:
    record.status = RunStatus.SUCCESS
    record.output_type = storable_text(type_name(output))
    record.output_preview = storable_text(preview(output))
    try:
        data = serialize(output, "run output")
    except TriggerNbError:
        record.output_size = None  # kept in this process only; views say it was not stored
        return
    record.output_size = len(data)
    store.save_run_output(record.id, data)


def _close_execution(
    record: RunRecord, history: ExecutionRecord, x: Execution | None, now: datetime
) -> None:
    history.finished_at, history.status = now, record.status
    record.updated_at = now
    if record.status in (RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED):
        record.completed_at = now
    if x is None:
        return
    history.executed, history.failed = x.executed, x.failed
    history.replayed, history.untouched = count_replayed(x)
    history.time_saved_seconds = x.time_saved_seconds
    record.task_count = len(x.snapshot.entries.keys() | x.used_task_ids.keys())
