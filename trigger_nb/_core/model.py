"""The records trigger_nb persists: runs, tasks, attempts, logs and errors, as pydantic models.

Records hold metadata only. A task's output lives under its own store key so that the task tree,
the CLI and the explorer read status, timings and a short preview without unpickling anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from trigger_nb._core.keys import idempotency_key
from trigger_nb._core.status import RunStatus as RunStatus
from trigger_nb._core.status import TaskStatus as TaskStatus
from trigger_nb._core.storable import storable_text
from trigger_nb._core.tracebacks import format_traceback, qualified_name

# Build each record's pydantic schema on first use, not at import: keeps `import trigger_nb` and
# `trigger-nb --help` fast (about 40 ms of schema building otherwise).
_DEFERRED = ConfigDict(defer_build=True)


T = TypeVar("T")


class CountedList(list[T]):
    """A list that also compares with ints as its length.

    ``TaskError.attempts`` and ``JobRun.executions`` hold records, yet "how many" is the usual
    question: ``err.attempts == 3`` and ``len(err.attempts) == 3`` both hold, ``int()`` works.
    """

    __hash__ = None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int) and not isinstance(other, bool):
            return len(self) == other
        return list.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __lt__(self, other: object) -> bool:
        return len(self) < other if isinstance(other, int) else list.__lt__(self, other)  # type: ignore[operator]

    def __le__(self, other: object) -> bool:
        return len(self) <= other if isinstance(other, int) else list.__le__(self, other)  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        return len(self) > other if isinstance(other, int) else list.__gt__(self, other)  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        return len(self) >= other if isinstance(other, int) else list.__ge__(self, other)  # type: ignore[operator]

    def __int__(self) -> int:
        return len(self)

    __index__ = __int__


class ErrorInfo(BaseModel):
    """An exception kept as data: it survives the process that raised it."""

    model_config = _DEFERRED

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, error: BaseException) -> ErrorInfo:
        """The error as data, whatever the exception does: a ``__str__`` that raises, text
        UTF-8 cannot hold, a traceback that cannot be formatted. It never raises itself: it
        runs while a failure is being recorded, where raising would leave the run unrecorded.
        """
        kind = type(error)
        name = storable_text(qualified_name(kind))
        try:
            message = storable_text(str(error))
        except Exception as broken:
            message = f"<unprintable {kind.__name__}: its __str__ raised {type(broken).__name__}>"
        return cls(type=name, message=message, traceback=format_traceback(error))

    def summary(self) -> str:
        short = self.type.rsplit(".", 1)[-1]
        return f"{short}: {self.message}" if self.message else short


class AttemptRecord(BaseModel):
    model_config = _DEFERRED

    number: int
    execution: int
    started_at: datetime
    finished_at: datetime | None = None
    status: TaskStatus = TaskStatus.RUNNING
    error: ErrorInfo | None = None
    # What the attempt printed or displayed is stored beside the record (see Store.capture).
    captured: bool = False
    # A COMPLETED attempt whose output a later run of the task replaced (the task was refreshed,
    # re-run from an earlier task, or re-run because its code changed): its output is kept in
    # the task's history (``Store.read_superseded_output``), described by these three.
    superseded: bool = False
    output_type: str | None = None
    output_size: int | None = None
    output_preview: str | None = None


class LogRecord(BaseModel):
    model_config = _DEFERRED

    run_id: str
    task_id: str | None = None
    execution: int
    seq: int
    level: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
    time: datetime


class TaskRecord(BaseModel):
    """A task, as stored in its entry and shown in every view.

    A stored entry leaves out what follows from the rest (``DERIVED_FIELDS``: a third of an
    entry, which every executed task writes and every replay reads): ``restore_derived`` puts
    it back when the entry is read. The engine leaves those fields *unmarked* (out of
    ``model_fields_set``) exactly when they can be derived, and entries are written with the
    fields marked as set only. ``id``, ``run_id``, ``idempotency_key`` and ``name`` have
    empty defaults for that reason alone: every record has them.
    """

    model_config = _DEFERRED

    id: str = ""  # the entry's key holds it
    run_id: str = ""  # the entry's key holds it
    parent_id: str | None = None
    key: str
    cache_key: Any
    idempotency_key: str = ""  # sha256 of run id, parent and key, when the key is ASCII
    kind: str = "task"
    seq: int = 0
    name: str = ""  # the cache key, when it is a str and no name was given
    icon: str | None = None
    description: str | None = None
    properties: list[dict[str, Any]] = Field(default_factory=list)
    params: Any = None
    output_properties: list[dict[str, Any]] = Field(default_factory=list)
    redact: list[str] = Field(default_factory=list)
    status: TaskStatus = TaskStatus.RUNNING
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    first_execution: int = 1
    completed_execution: int | None = None
    attempts: list[AttemptRecord] = Field(default_factory=list)
    error: ErrorInfo | None = None
    output_type: str | None = None
    output_size: int | None = None
    output_preview: str | None = None
    wait_until: datetime | None = None
    # What the last executed attempt ran, in named parts ("code", "closure:threshold",
    # "global:clean", "python", ...): their names here, their values (short texts or hashes,
    # never holding '|') joined in ``fingerprint``. See ``trigger_nb._engine.fingerprint``.
    fingerprint_names: str | None = None
    # Parts whose value the task itself changed while it ran (an accumulator it appends to):
    # their values before it ran. ``fingerprint`` holds the values after, which the kernel
    # holds next; either counts as unchanged, so neither re-executing the cell nor a restart
    # makes the task stale.
    fingerprint_before: dict[str, str] | None = None
    # Why a replayed task is stale (its code or inputs changed since it ran), set on the record
    # the live view receives; what is stored is ``ExecutionRecord.stale``. Never written.
    stale_reasons: list[str] = Field(default_factory=list, exclude=True)
    # Marked to run again on the run's next execution (``JobRun.refresh_task``, ``rerun``,
    # ``trigger-nb refresh``): set from the run's refresh marks when the record is read
    # (``RunSnapshot.task``). Never written: the mark is a key of its own.
    refresh_pending: bool = Field(default=False, exclude=True)
    # The part values joined by '|': the replay's quick check compares it with the current one.
    # The LAST field, so a replay finds it at the end of the stored record without parsing it
    # (``trigger_nb._store.sealed.stored_digest``).
    fingerprint: str | None = None

    @property
    def fingerprint_parts(self) -> dict[str, str] | None:
        """The fingerprint as named parts (None: none recorded)."""
        if self.fingerprint is None or self.fingerprint_names is None:
            return None
        return dict(
            zip(self.fingerprint_names.split("|"), self.fingerprint.split("|"), strict=False)
        )

    @property
    def is_completed(self) -> bool:
        return self.status is TaskStatus.COMPLETED


# Left out of a stored task entry when derivable (see TaskRecord); ``started_at`` and
# ``completed_at`` are the last attempt's start and end, ``duration_seconds`` is in the entry's
# header when it holds an output.
DERIVED_FIELDS = frozenset(
    {"id", "run_id", "idempotency_key", "name", "started_at", "completed_at", "duration_seconds"}
)


def restore_derived(
    record: TaskRecord, run_id: str, task_id: str, duration: float | None
) -> TaskRecord:
    """Fill in the fields a stored entry left out (``duration``: the one in the entry's header
    when the entry holds an output, else None). Fields the entry has are left as they are, so
    entries written in full (format 2, tests) read the same."""
    fields = record.__dict__
    if not record.id:
        fields["id"] = task_id
    if not record.run_id:
        fields["run_id"] = run_id
    if not record.idempotency_key:
        fields["idempotency_key"] = idempotency_key(run_id, record.parent_id, record.key)
    if not record.name:
        fields["name"] = record.cache_key if isinstance(record.cache_key, str) else ""
    attempts = record.attempts
    if attempts and record.started_at is None:
        fields["started_at"] = attempts[-1].started_at
    # Completed by the engine (which always records the execution that completed it):
    if record.completed_execution is not None and record.status is TaskStatus.COMPLETED:
        if record.completed_at is None and attempts:
            fields["completed_at"] = attempts[-1].finished_at
        if record.duration_seconds is None and duration is not None:
            fields["duration_seconds"] = duration
    return record


class ExecutionRecord(BaseModel):
    model_config = _DEFERRED

    number: int
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus = RunStatus.RUNNING
    executed: int = 0
    replayed: int = 0
    failed: int = 0
    time_saved_seconds: float = 0.0
    # Tasks completed by an earlier execution that this one neither returned from the store nor
    # reached inside a replayed parent (code that no longer calls them, a failure before them).
    # Usually empty, so the record stays small; see ``is_replayed``.
    untouched: list[str] = Field(default_factory=list)
    # Tasks this execution replayed although their code or inputs changed since they ran
    # (``on_code_change="warn"``): task id -> reasons ("closure value 'threshold' changed").
    stale: dict[str, list[str]] = Field(default_factory=dict)

    @property
    def active_seconds(self) -> float | None:
        """How long this execution ran (None while it runs)."""
        if self.finished_at is None:
            return None
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)


class EventInfo(BaseModel):
    model_config = _DEFERRED

    name: str | None = None
    id: str
    timestamp: datetime
    payload: Any = None  # the validated payload's canonical JSON: the run's identity
    raw_payload: Any = None  # the payload as first sent, when it differs from ``payload``

    @property
    def raw(self) -> Any:
        """The payload as sent (``ctx.event.payload``)."""
        return self.raw_payload if self.raw_payload is not None else self.payload


class RunRecord(BaseModel):
    model_config = _DEFERRED

    id: str
    job_id: str
    job_name: str
    job_version: str
    client_id: str
    status: RunStatus = RunStatus.RUNNING
    event: EventInfo
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    execution_history: list[ExecutionRecord] = Field(default_factory=list)
    error: ErrorInfo | None = None
    output_type: str | None = None
    output_preview: str | None = None
    output_size: int | None = None
    wait_until: datetime | None = None
    task_count: int = 0

    @property
    def executions(self) -> int:
        return len(self.execution_history)

    @property
    def started_at(self) -> datetime:
        return self.created_at

    @property
    def duration_seconds(self) -> float | None:
        """The run's *active* time: its executions' durations added up (None until it ended).

        Not first start to last finish: a run that waited two days for ``io.wait`` or was
        re-executed a week later did not work for a week. That span is ``wall_seconds``."""
        if self.completed_at is None:
            return None
        return self.active_seconds

    @property
    def active_seconds(self) -> float:
        """The finished executions' durations added up."""
        return sum(e.active_seconds or 0.0 for e in self.execution_history)

    @property
    def wall_seconds(self) -> float:
        """From the first execution's start to the last one's end (or the last update)."""
        end = self.completed_at or self.updated_at
        return max((end - self.created_at).total_seconds(), 0.0)

    @property
    def latest_execution(self) -> ExecutionRecord | None:
        return self.execution_history[-1] if self.execution_history else None


def stale_reasons(record: TaskRecord, execution: ExecutionRecord | None) -> list[str]:
    """Why ``record`` is stale in ``execution`` (empty: it is not). The one definition every
    view uses: a task replayed in that execution whose code or inputs had changed."""
    if execution is None:
        return []
    return list(execution.stale.get(record.id, ()))


def is_replayed(record: TaskRecord, execution: ExecutionRecord | None) -> bool:
    """The one definition of "replayed" every view and count uses.

    A task is replayed in an execution when its completed result was used instead of running it
    again: it was returned from the store, or it sits inside a task that was. That is: COMPLETED
    by an earlier execution, and not in that execution's ``untouched`` list.
    ``ExecutionRecord.replayed`` counts exactly these tasks.
    """
    if execution is None or record.status is not TaskStatus.COMPLETED:
        return False
    done = record.completed_execution
    return done is not None and done < execution.number and record.id not in execution.untouched
