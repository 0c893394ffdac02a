"""Jobs: define one, validate its payload, derive its run id, trigger it.

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
from typing import Any, Protocol

from trigger_nb._client.run import JobRun, RunOwner, finished_run
from trigger_nb._core.trigger import EventTrigger, plain_json, storable_json
from trigger_nb._engine.events import Listener, RunObserver, as_observer
from trigger_nb._engine.host import RunHost
from trigger_nb._engine.runner import execute_run
from trigger_nb.errors import (
    InvalidOptionError,
    InvalidPayloadError,
    JobDefinitionError,
)

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
DEFAULT_VERSION = "0.0.1"


class JobOwner(RunHost, RunOwner, Protocol):
    """What a job needs of the client that defined it (``TriggerClient``, in
    ``trigger_nb._client.client``, which imports this module): named by shape, so the two
    modules do not import each other."""

    @property
    def observers(self) -> list[RunObserver]: ...

    @property
    def on_code_change(self) -> str: ...

    @property
    def executor(self) -> object: ...

    def load_run(self, run_id: str) -> JobRun: ...


class Job:
    """A named, versioned unit of work. Decorate its run function with ``@job.run``."""

    def __init__(
        self,
        client: JobOwner,
        id: str,
        name: str,
        version: str,
        trigger: EventTrigger | None,
        integrations: dict[str, Any],
        on_code_change: str | None = None,
        executor: object = None,
    ) -> None:
        self.client = client
        # Where io.parallel's children run (None: the client's choice; see ``executor_choice``)
        self.executor = executor
        # None: the client's policy (see ``code_change_policy``)
        self.on_code_change = on_code_change
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
            return check_id(run_id, "run_id")
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
        listeners: Iterable[Listener | RunObserver] = (),
        refresh: bool = False,
        refresh_stale: bool = False,
        replay_output: bool = True,
    ) -> JobRun:
        """Start this job's run for ``payload``, or resume it if it already exists.

        An explicit ``run_id`` that belongs to another job, or to this job with another payload,
        raises ``RunConflictError`` (nothing runs, nothing is written); with ``new_run=True``
        that run is deleted and a fresh one starts under the id. ``refresh=True`` runs every
        task of this execution again instead of replaying it. ``listeners`` watch this
        execution, after the client's: ``RunObserver``s, or functions ``listener(kind, payload)``.
        ``refresh_stale=True`` runs again, in this execution, the completed tasks whose code or
        inputs changed since they ran. ``replay_output=False``: replayed tasks do not show
        again what they printed and displayed when they ran.
        """
        if self.run_fn is None:
            raise JobDefinitionError(
                f"job {self.id!r} has no run function: decorate one with @job.run"
            )
        value, payload_json = self.validate(payload)
        outcome = execute_run(
            self,
            self.client,
            self.resolve_run_id(payload_json, run_id=run_id, new_run=new_run),
            value,
            payload_json,
            raw_payload=payload,
            replace=new_run and run_id is not None,
            event_name=event_name,
            event_id=event_id,
            observers=[*self.client.observers, *map(as_observer, listeners)],
            refresh=refresh,
            on_code_change=self.code_change_policy,
            refresh_stale=refresh_stale,
            replay_output=replay_output,
            executor=self.executor_choice,
        )
        return finished_run(outcome, self.client)

    @property
    def code_change_policy(self) -> str:
        """What replays do with a task whose code changed: the job's ``on_code_change``, else
        the client's (a task's own option wins over both)."""
        return self.on_code_change or self.client.on_code_change

    @property
    def executor_choice(self) -> object:
        """Where io.parallel's children run unless the call says: the job's ``executor``, else
        the client's (None: threads)."""
        return self.executor if self.executor is not None else self.client.executor


def check_id(value: object, label: str) -> str:
    if not isinstance(value, str) or not _ID_PATTERN.match(value):
        raise InvalidOptionError(
            f"{label}={value!r} is invalid: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return value
