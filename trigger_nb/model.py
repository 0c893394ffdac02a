"""The records trigger_nb persists: runs, tasks, attempts, logs and errors, as pydantic models.

Records hold metadata only. A task's output lives under its own store key so that the task tree,
the CLI and the explorer read status, timings and a short preview without unpickling anything.
"""

from __future__ import annotations

import os
import traceback as traceback_module
from datetime import datetime, timezone
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from trigger_nb.status import RunStatus as RunStatus
from trigger_nb.status import TaskStatus as TaskStatus

# Build each record's pydantic schema on first use, not at import: keeps `import trigger_nb` and
# `trigger-nb --help` fast (about 40 ms of schema building otherwise).
_DEFERRED = ConfigDict(defer_build=True)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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


def assign(model: BaseModel, **values: Any) -> None:
    """Set fields of a record the engine built itself, in one step.

    pydantic's ``__setattr__`` costs about 1 µs per field and executing a task sets a dozen; it
    validates nothing here (``validate_assignment`` is off), so writing ``__dict__`` and the
    fields-set bookkeeping directly is the same result, ten times faster.
    """
    model.__dict__.update(values)
    model.__pydantic_fields_set__.update(values)


M = TypeVar("M", bound=BaseModel)
_TEMPLATES: dict[type[BaseModel], tuple[dict[str, Any], tuple[str, ...]]] = {}


def build(cls: type[M], values: dict[str, Any]) -> M:
    """A record the engine builds from values it made or checked itself, without validation.

    Validating them again cost ~2.5 µs of every executed task (``model_construct``, which does
    the same job generically, costs more than validating). The result equals the validated
    record: every field present in field order, fresh lists for list defaults, ``values`` marked
    as set. Only for plain defaults and list factories, which is what the records use.
    """
    template = _TEMPLATES.get(cls)
    if template is None:
        template = _TEMPLATES[cls] = _template(cls)
    defaults, lists = template
    fields = defaults.copy()
    for name in lists:
        fields[name] = []
    fields.update(values)
    record = cls.__new__(cls)
    object.__setattr__(record, "__dict__", fields)
    object.__setattr__(record, "__pydantic_fields_set__", set(values))
    object.__setattr__(record, "__pydantic_extra__", None)
    object.__setattr__(record, "__pydantic_private__", None)
    return record


def _template(cls: type[BaseModel]) -> tuple[dict[str, Any], tuple[str, ...]]:
    if not cls.__pydantic_complete__:  # deferred (see _DEFERRED): serializing needs the schema
        cls.model_rebuild()
    defaults: dict[str, Any] = {}
    lists = []
    for name, info in cls.model_fields.items():
        if info.default_factory is list:
            lists.append(name)
        elif info.default_factory is not None:  # pragma: no cover - no record has one yet
            raise TypeError(f"build() cannot fill {cls.__name__}.{name}: give it a list default")
        defaults[name] = None if info.is_required() else info.default
    return defaults, tuple(lists)


class ErrorInfo(BaseModel):
    """An exception kept as data: it survives the process that raised it."""

    model_config = _DEFERRED

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, error: BaseException) -> ErrorInfo:
        kind = type(error)
        name = kind.__qualname__
        if kind.__module__ not in ("builtins", "__main__"):
            name = f"{kind.__module__}.{name}"
        report = traceback_module.TracebackException.from_exception(error)
        _drop_internal_frames(report)
        return cls(type=name, message=str(error), traceback="".join(report.format()))

    def summary(self) -> str:
        short = self.type.rsplit(".", 1)[-1]
        return f"{short}: {self.message}" if self.message else short


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _drop_internal_frames(report: traceback_module.TracebackException, depth: int = 0) -> None:
    """Keep the user's frames: trigger_nb's own (the attempt loop, drivers) are noise to them.

    A traceback made only of our frames is kept whole, so an internal bug still shows where.
    """
    mine = [f for f in report.stack if not (f.filename or "").startswith(_PACKAGE_DIR)]
    if mine:
        report.stack = traceback_module.StackSummary.from_list(mine)
    for linked in (report.__cause__, report.__context__):
        if linked is not None and depth < 20:
            _drop_internal_frames(linked, depth + 1)


class AttemptRecord(BaseModel):
    model_config = _DEFERRED

    number: int
    execution: int
    started_at: datetime
    finished_at: datetime | None = None
    status: TaskStatus = TaskStatus.RUNNING
    error: ErrorInfo | None = None


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
    model_config = _DEFERRED

    id: str
    run_id: str
    parent_id: str | None = None
    key: str
    cache_key: Any
    idempotency_key: str
    kind: str = "task"
    seq: int = 0
    name: str
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

    @property
    def is_completed(self) -> bool:
        return self.status is TaskStatus.COMPLETED


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


class EventInfo(BaseModel):
    model_config = _DEFERRED

    name: str | None = None
    id: str
    timestamp: datetime
    payload: Any = None


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
        if self.completed_at is None:
            return None
        return (self.completed_at - self.created_at).total_seconds()
