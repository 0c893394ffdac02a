"""A task call and the ``task`` handle its function receives (SPEC 3.2)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from trigger_nb._core.model import TaskRecord
from trigger_nb._core.retry import RetryOptions
from trigger_nb._engine.capture import Capture
from trigger_nb._engine.execution import Execution
from trigger_nb._engine.logger import Logger
from trigger_nb._store.task_entries import Superseded


class TaskHandle:
    """The ``task`` argument of a task function: ``id``, ``cache_key``, ``idempotency_key``
    (the same on every attempt and execution: pass it to external APIs), ``name``, ``attempt``
    (1-based), ``run_id``, ``output_properties`` (a list to fill, shown in the tree) and
    ``logger`` (logs attached to this task)."""

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
    # The fingerprint before the function ran, when its run could change a part (it reads a
    # list, dict, set or bytearray): ``_complete`` looks at those again.
    parts: dict[str, str] | None = None
    # Keep what the function prints and displays (``capture_output=False``: no); the current
    # attempt's capture, made when it first prints (``console.capture_of``).
    capture_output: bool = True
    capture: Capture | None = None
    # ``mmap=True``: the output's big buffers come back memory-mapped, read-only, on every
    # execution (this one included, so it sees what replays will).
    mmap: bool = False
    # A completed task run again: its earlier completion, whose output goes to its history
    # when the first new attempt is written (with ``unmark``: its refresh mark deleted).
    superseded: Superseded | None = None
    unmark: bool = False
    _handle: TaskHandle | None = dataclasses.field(default=None, init=False, repr=False)

    @property
    def ordered_children(self) -> bool:
        return self.record.kind == "parallel"

    @property
    def handle(self) -> TaskHandle:
        """Made when first needed: most task functions take no argument (~1.5 µs a task)."""
        if self._handle is None:
            self._handle = TaskHandle(self)
        return self._handle

    @property
    def label(self) -> str:
        return f"task {self.record.name!r}" if self.record.name else f"task {self.cache_key!r}"
