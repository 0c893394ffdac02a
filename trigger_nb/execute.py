"""Executing one run: replay what completed, execute the rest, record the outcome.

``execute_run`` is the one entry point (``Job.trigger`` and ``JobRun.resume`` call it);
``Context`` is the run function's ``ctx``. Looking at a run afterwards is ``trigger_nb.run``.
"""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trigger_nb.codec import serialize
from trigger_nb.errors import RunCanceled, RunSuspended, TriggerNbError
from trigger_nb.execution import Execution, Listener
from trigger_nb.model import (
    ErrorInfo,
    EventInfo,
    ExecutionRecord,
    RunRecord,
    RunStatus,
)
from trigger_nb.preview import preview, type_name
from trigger_nb.store import Store

if TYPE_CHECKING:
    from trigger_nb.job import Job, TriggerClient
    from trigger_nb.run import JobRun

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
    event_name: str | None = None,
    event_id: str | None = None,
    listeners: list[Listener] | None = None,
    run_fn: Any = None,
    refresh: bool = False,
) -> JobRun:
    """One execution of a run: replay what completed, execute the rest, record the outcome.

    ``refresh=True`` runs every task again instead of replaying it.
    """
    from trigger_nb.invocation import run_coroutine
    from trigger_nb.io import IO
    from trigger_nb.run import JobRun  # here, not at the top: trigger_nb.run imports this module

    client, store, clock = job.client, job.client.store, job.client.clock
    with store.lock_run(run_id):
        now = clock.now()
        record = store.load_run(run_id) or RunRecord(
            id=run_id,
            job_id=job.id,
            job_name=job.name,
            job_version=job.version,
            client_id=client.id,
            event=EventInfo(
                name=event_name,
                id=event_id or uuid.uuid4().hex,
                timestamp=now,
                payload=payload_json,
            ),
            created_at=now,
            updated_at=now,
        )
        store.clear_cancel(run_id)  # triggering (or resuming) a canceled run continues it
        number = record.executions + 1
        history = ExecutionRecord(number=number, started_at=now)
        record.execution_history.append(history)
        record.status, record.updated_at, record.error = RunStatus.RUNNING, now, None
        record.wait_until = record.completed_at = None
        store.save_run(record)
        snapshot = store.load_snapshot(run_id)
        x = Execution(run_id, number, store, snapshot, clock, client, list(listeners or []))
        x.refresh = refresh
        io = IO(x, job.integrations)
        ctx = Context(
            job=JobContext(job.id, job.name, job.version),
            run=RunContext(run_id, number, record.created_at),
            event=EventContext(
                record.event.name, record.event.id, record.event.timestamp, record.event.payload
            ),
            client=client,
        )
        x.publish("run_started", record)
        output: Any = MISSING
        exception: BaseException | None = None
        try:
            fn = run_fn or job.run_fn
            assert fn is not None, "checked by Job.trigger"
            result = fn(payload, io, ctx)
            if inspect.isawaitable(result):
                result = run_coroutine(result)
            output = result
        except RunSuspended as suspended:
            record.status, record.wait_until = RunStatus.WAITING, suspended.resume_at
        except RunCanceled as canceled:
            record.status, record.error = RunStatus.CANCELED, ErrorInfo.from_exception(canceled)
        except KeyboardInterrupt as error:
            record.status, record.error = RunStatus.CANCELED, ErrorInfo.from_exception(error)
            exception = error
        except Exception as error:
            record.status, record.error = RunStatus.FAILURE, ErrorInfo.from_exception(error)
            exception = error
        else:
            _record_output(store, record, output)
        finally:
            if record.status is RunStatus.WAITING and store.is_cancel_requested(run_id):
                record.status = RunStatus.CANCELED  # canceled while running: no resume
            x.writer.close()
            _close_execution(record, history, x, clock.now())
            store.save_run(record)
            x.publish("run_finished", record)
    run = JobRun(store, record, client=client, output=output, exception=exception)
    if isinstance(exception, KeyboardInterrupt):
        raise exception
    return run


def _record_output(store: Store, record: RunRecord, output: Any) -> None:
    record.status = RunStatus.SUCCESS
    record.output_type, record.output_preview = type_name(output), preview(output)
    try:
        data = serialize(output, "run output")
    except TriggerNbError:
        record.output_size = None  # kept in this process only; views say it was not stored
        return
    record.output_size = len(data)
    store.save_run_output(record.id, data)


def _close_execution(
    record: RunRecord, history: ExecutionRecord, x: Execution, now: datetime
) -> None:
    history.finished_at, history.status = now, record.status
    history.executed, history.replayed, history.failed = x.executed, x.replayed, x.failed
    history.time_saved_seconds = x.time_saved_seconds
    record.updated_at = now
    if record.status in (RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED):
        record.completed_at = now
    record.task_count = len(x.snapshot.entries.keys() | x.used_task_ids.keys())
