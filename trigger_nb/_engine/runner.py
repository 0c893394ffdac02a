"""Executing one run: replay what completed, execute the rest, record the outcome.

``execute_run`` is the one entry point; it returns a ``RunOutcome`` (``trigger_nb._client`` wraps
it in a ``JobRun``). It takes the job and the client as the protocols of
``trigger_nb._engine.host``, and the views watching as ``RunObserver``s.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from trigger_nb._core.model import EventInfo, ExecutionRecord, RunRecord, RunStatus
from trigger_nb._core.storable import storable_data, storable_text
from trigger_nb._engine.console import install_streams, uninstall_streams
from trigger_nb._engine.context import Context, EventContext, JobContext, RunContext
from trigger_nb._engine.events import RunEvents, RunObserver
from trigger_nb._engine.execution import Execution
from trigger_nb._engine.executor import resolve_executor
from trigger_nb._engine.host import JobSpec, RunHost
from trigger_nb._engine.outcome import MISSING, RunOutcome, finish_run
from trigger_nb.errors import RunConflictError

PAYLOAD_SHOWN_CHARS = 80


def execute_run(
    job: JobSpec,
    host: RunHost,
    run_id: str,
    payload: Any,
    payload_json: Any,
    *,
    raw_payload: Any = MISSING,
    replace: bool = False,
    event_name: str | None = None,
    event_id: str | None = None,
    observers: Iterable[RunObserver] = (),
    run_fn: Callable[..., Any] | None = None,
    refresh: bool = False,
    on_code_change: str = "warn",
    refresh_stale: bool = False,
    replay_output: bool = True,
    executor: object = None,
) -> RunOutcome:
    """One execution of a run of ``job`` by ``host``: replay what completed, execute the rest,
    record the outcome.

    ``raw_payload``: the payload as sent (``ctx.event.payload``), when this execution was
    triggered with one. ``replace``: an existing run under ``run_id`` is deleted first and a
    fresh one starts (``job.trigger(run_id=..., new_run=True)``); otherwise an existing run must
    belong to this job and payload (``RunConflictError``, nothing written). ``refresh=True``
    runs every task again instead of replaying it. ``on_code_change``: the job's policy for a
    completed task whose code or inputs changed (a task's own option wins); ``refresh_stale``:
    run those again in this execution. ``replay_output=False``: a replayed task's captured
    output is not shown again. ``executor``: where ``io.parallel``'s children run unless the
    call says (None: threads). ``observers`` see the execution as it goes.

    Whatever happens inside, the run ends recorded in a final state (or WAITING) and its lock
    is released: a run is never left RUNNING by this process.
    """
    store, clock = host.store, host.clock
    with store.lock_run(run_id):
        now = clock.now()
        existing = store.load_run(run_id)
        if existing is not None and replace:
            store.delete_run(run_id)  # the user asked for a fresh run under this id
            existing = None
        if existing is not None:
            _check_same_run(existing, job, payload_json)
        record = existing or RunRecord(
            id=run_id,
            job_id=job.id,
            job_name=storable_text(job.name),
            job_version=job.version,
            client_id=host.id,
            event=EventInfo(
                name=event_name,
                id=event_id or uuid.uuid4().hex,
                timestamp=now,
                payload=payload_json,
                raw_payload=_raw_json(raw_payload, payload_json),
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
        # From here on the run is RUNNING in the store: every path ends in finish_run.
        outcome = RunOutcome(record)
        x: Execution | None = None
        install_streams()  # tasks' prints are captured from here on (see console.py)
        try:
            events = RunEvents(observers)
            # Watched (a live view shows every replayed record): whole entries, each parsed as
            # it is replayed. Else lean: what replays need, the records left in the store.
            snapshot = store.load_snapshot(
                run_id, lean=not events.observers, digests=on_code_change != "ignore"
            )
            x = Execution(run_id, history.number, store, snapshot, clock, events, host.send_event)
            x.refresh = refresh
            x.on_code_change, x.refresh_stale = on_code_change, refresh_stale
            x.replay_output = replay_output
            x.executor = resolve_executor(executor, f"job {job.id!r}:")
            x.events.run_started(record)
            fn = run_fn or job.run_fn
            assert fn is not None, "checked by Job.trigger"
            event_payload = raw_payload if raw_payload is not MISSING else record.event.raw
            ctx = Context(
                job=JobContext(job.id, job.name, job.version),
                run=RunContext(run_id, x.number, record.created_at),
                event=EventContext(
                    record.event.name, record.event.id, record.event.timestamp, event_payload
                ),
                client=host,
            )
            _call_run_function(fn, payload, x, job.integrations, ctx, outcome)
        except BaseException as error:  # the engine's own failure around the run function
            outcome.fail(error)
        finally:
            uninstall_streams()
            finish_run(store, outcome, history, x, clock.now())
    return outcome


def _call_run_function(
    fn: Callable[..., Any],
    payload: Any,
    x: Execution,
    integrations: dict[str, Any],
    ctx: Context,
    outcome: RunOutcome,
) -> None:
    from trigger_nb._engine.invocation import run_coroutine
    from trigger_nb._engine.io import IO

    io = IO(x, integrations)
    try:
        result = fn(payload, io, ctx)
        if inspect.isawaitable(result):
            result = run_coroutine(result)
    except BaseException as error:
        outcome.fail(error)
        return
    outcome.succeed(x.store, result, x.big_outputs)


def _check_same_run(existing: RunRecord, job: JobSpec, payload_json: Any) -> None:
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
