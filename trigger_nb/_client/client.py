"""The client: holds a notebook's or script's jobs and the store their runs persist in; sends
events, lists and loads runs, resumes waiting ones. ``default_client()`` is the kernel's one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from trigger_nb._client.comparison import (
    DURATION_RATIO,
    MIN_DURATION_CHANGE,
    RunComparison,
    compare_runs,
)
from trigger_nb._client.job import DEFAULT_VERSION, Job, check_id
from trigger_nb._client.run import JobRun, WaitingHook
from trigger_nb._core.clock import SYSTEM_CLOCK, Clock
from trigger_nb._core.model import RunRecord
from trigger_nb._core.status import RunStatus, parse_run_status
from trigger_nb._core.trigger import EventTrigger, plain_json
from trigger_nb._engine.events import Listener, RunObserver, as_observer
from trigger_nb._engine.executor import resolve_executor
from trigger_nb._engine.outcome import RunOutcome
from trigger_nb._engine.runner import execute_run
from trigger_nb._engine.task_options import check_code_change_policy
from trigger_nb._store.store import Store, open_store
from trigger_nb.errors import (
    InvalidOptionError,
    InvalidPayloadError,
    JobDefinitionError,
    NotFoundError,
)


class TriggerClient:
    """Holds the jobs of a notebook or script and the store their runs persist in."""

    def __init__(
        self,
        id: str = "default",
        *,
        store: Store | str | None = None,
        clock: Clock | None = None,
        on_code_change: str = "warn",
        executor: object = None,
    ) -> None:
        self.id = check_id(id, "TriggerClient id")
        # What a replay does with a completed task whose code or inputs changed since it ran:
        # "warn", "rerun", "ignore" or "error" (a job's or a task's own choice wins).
        self.on_code_change: str = (
            check_code_change_policy(on_code_change, "TriggerClient") or "warn"
        )
        # Where io.parallel's children run unless a job or the call says: None (threads),
        # "threads", "dask" or a trigger_nb.DaskExecutor (trigger_nb._engine.executor).
        resolve_executor(executor, "TriggerClient")
        self.executor: object = executor
        self.store = open_store(store)
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.jobs: dict[str, Job] = {}
        self.observers: list[RunObserver] = []
        # Called when ``run.rerun()``/``run.resume()`` ended WAITING: a kernel sets its resume
        # timer here (``_jupyter.resume``), as it does for a ``%%trigger_job`` cell's run.
        self.on_waiting: WaitingHook | None = None

    def __repr__(self) -> str:
        return f"<TriggerClient {self.id!r} store={self.store.location}>"

    def define_job(
        self,
        id: str,
        name: str | None = None,
        version: str = DEFAULT_VERSION,
        trigger: EventTrigger | None = None,
        integrations: dict[str, Any] | None = None,
        run: Callable[..., Any] | None = None,
        on_code_change: str | None = None,
        executor: object = None,
    ) -> Job:
        """Define (or redefine, e.g. when a notebook cell runs again) a job. ``on_code_change``:
        what its replays do with a task whose code changed (None: the client's policy).
        ``executor``: where its ``io.parallel`` children run (None: the client's choice)."""
        check_code_change_policy(on_code_change, f"job {id!r}:")
        resolve_executor(executor, f"job {id!r}:")
        check_id(id, "job id")
        if not isinstance(version, str) or not version:
            raise InvalidOptionError(f"job {id!r}: version={version!r} must be a non-empty string")
        if trigger is not None and not isinstance(trigger, EventTrigger):
            raise InvalidOptionError(
                f"job {id!r}: trigger={trigger!r} is invalid: use event_trigger(name, schema=...)"
            )
        integrations = dict(integrations or {})
        from trigger_nb._engine.io import IO

        for key in integrations:
            if not key.isidentifier() or key.startswith("_") or hasattr(IO, key) or key == "logger":
                raise InvalidOptionError(
                    f"job {id!r}: integration name {key!r} is invalid: it must be a Python "
                    "identifier that is not already an io member (run_task, wait, logger, ...)"
                )
        job = Job(self, id, name or id, version, trigger, integrations, on_code_change, executor)
        if run is not None:
            job.run(run)
        self.jobs[id] = job
        return job

    def get_job(self, job_id: str) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise NotFoundError(
                f"job {job_id!r} is not defined in this client (defined: {known})"
            ) from None

    def subscribe(self, listener: Listener | RunObserver) -> Callable[[], None]:
        """Watch every execution of this client's runs: a ``RunObserver``, or a function called
        as ``listener(kind, payload)`` for every run/task/log event. Returns unsubscribe."""
        observer = as_observer(listener)
        self.observers.append(observer)
        return lambda: self.observers.remove(observer) if observer in self.observers else None

    def send_event(
        self,
        name: str,
        payload: Any = None,
        *,
        event_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> list[JobRun]:
        """Run every job whose trigger matches; every payload is validated before any runs."""
        if not isinstance(name, str) or not name:
            raise InvalidOptionError(f"send_event name={name!r} is invalid: give an event name")
        matching = [
            job
            for job in self.jobs.values()
            if job.trigger_spec is not None
            and job.run_fn is not None
            and job.trigger_spec.matches(name, _plain_or_none(payload))
        ]
        for job in matching:
            job.validate(payload)
        event_id = event_id or uuid.uuid4().hex
        return [job.trigger(payload, event_name=name, event_id=event_id) for job in matching]

    def resume_due(self) -> list[JobRun]:
        """Resume every WAITING run of this client's jobs whose wait is over."""
        now = self.clock.now()
        resumed = []
        for record in self.store.list_runs():
            due = record.wait_until is not None and record.wait_until <= now
            if record.status is RunStatus.WAITING and due and record.job_id in self.jobs:
                resumed.append(self.load_run(record.id).resume())
        return resumed

    def list_runs(self, job: str | None = None, status: str | None = None) -> list[JobRun]:
        """Runs in the store, newest first; ``status`` is any case ("failure" or "FAILURE")."""
        wanted = None if status is None else parse_run_status(status)
        return [
            JobRun(self.store, r, client=self)
            for r in self.store.list_runs()
            if (job is None or r.job_id == job) and (wanted is None or r.status is wanted)
        ]

    def load_run(self, run_id: str) -> JobRun:
        return JobRun(self.store, self.store.find_run(run_id), client=self)

    def compare(
        self,
        run_a: JobRun | str,
        run_b: JobRun | str,
        *,
        min_duration_change: float = MIN_DURATION_CHANGE,
        duration_ratio: float = DURATION_RATIO,
    ) -> RunComparison:
        """What differs between two runs' tasks: added, removed, or changed (status, output,
        code fingerprint, duration: one counts as changed when it moved by at least
        ``min_duration_change`` seconds and by a factor of ``duration_ratio``). Runs are
        ``JobRun``s or run ids (a unique prefix will do). Prints as a table, displays as HTML."""
        a, b = (r if isinstance(r, JobRun) else self.load_run(r) for r in (run_a, run_b))
        return compare_runs(
            a._store,
            a.id,
            [view.record for view in a.all_tasks],
            b._store,
            b.id,
            [view.record for view in b.all_tasks],
            min_duration_change=min_duration_change,
            duration_ratio=duration_ratio,
        )

    def check_runnable(self, record: RunRecord, action: str = "resume") -> Job:
        """The job of ``record``, defined here with a run function; else ``JobDefinitionError``
        saying that ``action`` needs it, and how to get there."""
        job = self.jobs.get(record.job_id)
        if job is None or job.run_fn is None:
            raise JobDefinitionError(
                f"run {record.id}: job {record.job_id!r} is not defined in this process, so "
                f"it cannot execute here; define it (run its cell, or define_job + @job.run on "
                f"this client), then {action} again"
                + (
                    "; or mark the tasks with run.refresh_task(...) or `trigger-nb refresh "
                    f"{record.id} TASK --and-later`, and execute the run where its job is defined"
                    if action == "rerun"
                    else ""
                )
            )
        return job

    def execute_again(
        self,
        record: RunRecord,
        *,
        observers: Iterable[RunObserver] = (),
        refresh: bool = False,
        replay_output: bool = True,
    ) -> RunOutcome:
        """Execute a stored run once more, for its stored payload (``JobRun.resume``, the
        kernel's resume timer): its job must be defined here. ``observers`` watch this
        execution besides the client's own; ``refresh``: every task runs again;
        ``replay_output=False``: replayed tasks do not show their captured output again (a
        resume in the background has no cell of its own to show it in)."""
        job = self.check_runnable(record, "resume")
        value, payload_json = job.validate(record.event.payload)
        return execute_run(
            job,
            self,
            record.id,
            value,
            payload_json,
            event_name=record.event.name,
            event_id=record.event.id,
            observers=[*self.observers, *observers],
            refresh=refresh,
            on_code_change=job.code_change_policy,
            replay_output=replay_output,
            executor=job.executor_choice,
        )


def _plain_or_none(payload: Any) -> Any:
    try:
        return plain_json(payload, "?")
    except InvalidPayloadError:
        return None


_default: TriggerClient | None = None


def default_client() -> TriggerClient:
    """The one client per process (kernel) on the default store, shared with the magics."""
    global _default
    if _default is None:
        _default = TriggerClient("notebook")
    return _default


def send_event(name: str, payload: Any = None, **options: Any) -> list[JobRun]:
    """``default_client().send_event(...)``: run the notebook's jobs listening for ``name``."""
    return default_client().send_event(name, payload, **options)
