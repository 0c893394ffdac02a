"""Jobs and the client: define a job, trigger it, send events, resume waiting runs.

A run's id is derived from (client id, job id, job version, canonical JSON of the validated
payload), so triggering the same job with the same payload again *resumes the same run* and
replays its completed tasks; ``new_run=True`` or a new ``version`` starts afresh.

Triggers and payload JSON live in ``trigger_nb._core.trigger``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from trigger_nb._client.run import JobRun
from trigger_nb._core.clock import SYSTEM_CLOCK, Clock
from trigger_nb._core.trigger import EventTrigger, plain_json, storable_json
from trigger_nb._engine.execution import Listener
from trigger_nb._engine.runner import execute_run
from trigger_nb._store.store import Store, open_store
from trigger_nb.errors import (
    InvalidOptionError,
    InvalidPayloadError,
    JobDefinitionError,
    NotFoundError,
)

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
DEFAULT_VERSION = "0.0.1"


class Job:
    """A named, versioned unit of work. Decorate its run function with ``@job.run``."""

    def __init__(
        self,
        client: TriggerClient,
        id: str,
        name: str,
        version: str,
        trigger: EventTrigger | None,
        integrations: dict[str, Any],
    ) -> None:
        self.client = client
        self.id = id
        self.name = name
        self.version = version
        self.trigger_spec = trigger
        self.integrations = integrations
        self.run_fn: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return f"<Job {self.id!r} v{self.version}>"

    @property
    def schema(self) -> Any:
        return self.trigger_spec.schema if self.trigger_spec is not None else None

    def run(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register the run function ``fn(payload, io, ctx)`` (sync or async)."""
        if not callable(fn):
            raise JobDefinitionError(f"job {self.id!r}: @job.run needs a function")
        self.run_fn = fn
        return fn

    def validate(self, payload: Any) -> tuple[Any, Any]:
        """The validated payload and its canonical JSON form; InvalidPayloadError if invalid."""
        from pydantic import ValidationError

        if self.schema is None:
            return payload, storable_json(plain_json(payload, self.id), self.id)
        assert self.trigger_spec is not None  # a schema comes with a trigger
        adapter = self.trigger_spec.adapter
        try:
            value = adapter.validate_python(payload)
        except ValidationError as error:
            problems = [
                {"path": ".".join(str(p) for p in e["loc"]) or "(payload)", "message": e["msg"]}
                for e in error.errors()
            ]
            lines = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
            raise InvalidPayloadError(
                f"payload for job {self.id!r} is invalid ({len(problems)} error"
                f"{'s' if len(problems) != 1 else ''}): {lines}",
                errors=problems,
            ) from None
        try:
            dumped = adapter.dump_python(value, mode="json")
        except (ValueError, TypeError):  # text UTF-8 cannot hold, an unserializable value
            dumped = plain_json(value, self.id)  # raises InvalidPayloadError saying which
        return value, storable_json(dumped, self.id)

    def run_id_for(self, payload_json: Any) -> str:
        material = json.dumps(
            [self.client.id, self.id, self.version, payload_json],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return "run_" + hashlib.sha256(material.encode()).hexdigest()[:20]

    def resolve_run_id(
        self, payload_json: Any, *, run_id: str | None = None, new_run: bool = False
    ) -> str:
        """The run a trigger executes: ``run_id`` if given (checked), a fresh one for
        ``new_run``, else the deterministic id of this payload.

        With both, ``run_id`` is kept and ``trigger`` replaces any run already under it."""
        if run_id is not None:
            return _check_id(run_id, "run_id")
        if new_run:
            return "run_" + uuid.uuid4().hex[:20]
        return self.run_id_for(payload_json)

    def trigger(
        self,
        payload: Any = None,
        *,
        run_id: str | None = None,
        new_run: bool = False,
        event_name: str | None = None,
        event_id: str | None = None,
        listeners: Iterable[Listener] = (),
        refresh: bool = False,
    ) -> JobRun:
        """Start this job's run for ``payload``, or resume it if it already exists.

        An explicit ``run_id`` that belongs to another job, or to this job with another payload,
        raises ``RunConflictError`` (nothing runs, nothing is written); with ``new_run=True``
        that run is deleted and a fresh one starts under the id. ``refresh=True`` runs every
        task of this execution again instead of replaying it.
        """
        if self.run_fn is None:
            raise JobDefinitionError(
                f"job {self.id!r} has no run function: decorate one with @job.run"
            )
        value, payload_json = self.validate(payload)
        return execute_run(
            self,
            self.resolve_run_id(payload_json, run_id=run_id, new_run=new_run),
            value,
            payload_json,
            raw_payload=payload,
            replace=new_run and run_id is not None,
            event_name=event_name,
            event_id=event_id,
            listeners=[*self.client.listeners, *listeners],
            refresh=refresh,
        )


def _check_id(value: object, label: str) -> str:
    if not isinstance(value, str) or not _ID_PATTERN.match(value):
        raise InvalidOptionError(
            f"{label}={value!r} is invalid: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return value


class TriggerClient:
    """Holds the jobs of a notebook or script and the store their runs persist in."""

    def __init__(
        self, id: str = "default", *, store: Store | str | None = None, clock: Clock | None = None
    ) -> None:
        self.id = _check_id(id, "TriggerClient id")
        self.store = open_store(store)
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.jobs: dict[str, Job] = {}
        self.listeners: list[Listener] = []

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
    ) -> Job:
        """Define (or redefine, e.g. when a notebook cell runs again) a job."""
        _check_id(id, "job id")
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
        job = Job(self, id, name or id, version, trigger, integrations)
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

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(kind, payload)`` for every run/task/log event; returns unsubscribe."""
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

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
            if record.status == "WAITING" and due and record.job_id in self.jobs:
                resumed.append(self.load_run(record.id).resume())
        return resumed

    def list_runs(self, job: str | None = None, status: str | None = None) -> list[JobRun]:
        """Runs in the store, newest first; ``status`` is any case ("failure" or "FAILURE")."""
        if status is not None:
            status = _run_status(status)
        records = self.store.list_runs()
        return [
            JobRun(self.store, r, client=self)
            for r in records
            if (job is None or r.job_id == job) and (status is None or r.status == status)
        ]

    def load_run(self, run_id: str) -> JobRun:
        return JobRun(self.store, self.store.find_run(run_id), client=self)


def _run_status(status: object) -> str:
    from trigger_nb._core.model import RunStatus

    names = [s.value for s in RunStatus]
    if not isinstance(status, str) or status.upper() not in names:
        raise InvalidOptionError(
            f"status={status!r} is not a run status: use one of {', '.join(names)}"
        )
    return status.upper()


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
