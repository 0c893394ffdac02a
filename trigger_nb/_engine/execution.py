"""The state of one execution of a run, shared by ``io``, the task engine and the logger.

The current parent task lives in a ``ContextVar`` so nesting is tracked through plain calls,
threads started by ``io.parallel`` and asyncio tasks alike.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from trigger_nb._core.clock import Clock
from trigger_nb._core.codec import to_jsonable
from trigger_nb._core.model import LogRecord
from trigger_nb._core.storable import storable_data, storable_text
from trigger_nb._engine.capture import Owner
from trigger_nb._engine.events import RunEvents
from trigger_nb._engine.fingerprint import Fingerprinter
from trigger_nb._engine.task_writer import TaskWriter
from trigger_nb._store.snapshot import RunSnapshot
from trigger_nb._store.store import Store
from trigger_nb.errors import RunCanceled

CANCEL_CHECK_SECONDS = 0.25


class Identified(Protocol):
    """Anything with an id (a run ``send_event`` executed)."""

    @property
    def id(self) -> str: ...


class EventSender(Protocol):
    """``io.send_event``'s way out: trigger the jobs listening for ``name`` (the client's
    ``send_event``); returns the runs it executed."""

    def __call__(
        self, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> Sequence[Identified]: ...


class Frame(NamedTuple):
    """Where code is running: which execution, under which parent task (None: the run's root).

    A tuple: one is made for every task call (a frozen dataclass cost ~1 µs of it)."""

    execution: Execution
    task_id: str | None
    # The task call running here (None at a run's top level): its capture keeps what it
    # prints and displays; and the frame this one runs in, whose capture holds this one's.
    call: Owner | None = None
    parent: Frame | None = None


current_frame: ContextVar[Frame | None] = ContextVar("trigger_nb_frame", default=None)


@dataclass
class Execution:
    run_id: str
    number: int
    store: Store
    snapshot: RunSnapshot
    clock: Clock
    events: RunEvents = field(default_factory=RunEvents)
    # None: the run was not started by a client (``io.send_event`` then says so).
    send_event: EventSender | None = None
    # Every task of this execution runs again (``%%trigger_job --refresh``), as if refresh=True.
    refresh: bool = False
    # What to do with a completed task whose code or inputs changed (the job's or client's
    # ``on_code_change``; a task's own option wins), and whether to re-run those for this
    # execution only (``--refresh-stale``).
    on_code_change: str = "warn"
    refresh_stale: bool = False
    # Show a replayed task's captured output again (``%%trigger_job --no-replay-output``: no).
    replay_output: bool = True
    # Big task outputs of this execution (executed or replayed), by id: value and record. A
    # run returning one stores a reference to it (``RunOutcome.succeed``).
    big_outputs: dict[int, Any] = field(default_factory=dict)
    # Where io.parallel's children run unless the call says (the job's or client's executor=;
    # None: threads). An ``Executor`` of ``trigger_nb._engine.executor``.
    executor: Any = None
    fingerprints: Fingerprinter = field(default_factory=Fingerprinter)
    # Tasks replayed although stale (policy "warn"): task id -> reasons.
    stale: dict[str, list[str]] = field(default_factory=dict)
    # Tasks this execution ran to completion (appended, atomically: no lock per task).
    executed_ids: list[str] = field(default_factory=list)
    # Tasks this execution runs again although they were found completed (refreshed, marked,
    # or stale under "rerun"): reached, so never counted as untouched.
    refreshed_ids: list[str] = field(default_factory=list)
    # Tasks returned from the store, in call order (counted, with what they stand for, by
    # ``replay.count_replayed`` when the execution ends), and the seconds each took when it ran
    # (the time the execution saved): two lists, not one of pairs, as a pair would cost 64
    # bytes a task more. ``list.append`` is atomic: no lock on the path of every replay.
    replayed: list[str] = field(default_factory=list)
    replayed_seconds: list[float] = field(default_factory=list)
    failed: int = 0
    # task id -> a marker unique to the call that claimed it (``IO._prepare``)
    used_task_ids: dict[str, object] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    writer: TaskWriter = field(init=False)
    marks: set[str] = field(init=False)
    _log_seq: int = 0
    _cancel_checked_at: float = float("-inf")
    _prior_root_logs: collections.Counter[tuple[str, str]] = field(
        default_factory=collections.Counter
    )

    def __post_init__(self) -> None:
        # Tasks marked to run again (``JobRun.refresh_task``, ``trigger-nb refresh``): each runs
        # as if ``refresh=True`` once, its mark deleted when its first new attempt is written.
        self.marks = self.snapshot.marks
        self._prior_root_logs.update(
            (log.level, log.message) for log in self.snapshot.logs if log.task_id is None
        )
        self._seqs = itertools.count(len(self.snapshot.entries) + 1)
        self.writer = TaskWriter(self.store)

    def check_canceled(self) -> None:
        """Stop here if ``run.cancel()`` was called, from any process.

        Checked before each task that executes (replays have no side effects to spare), at most
        every ``CANCEL_CHECK_SECONDS``, so a cheap task does not pay a store read each.
        """
        now = time.monotonic()
        if now - self._cancel_checked_at < CANCEL_CHECK_SECONDS:
            return
        self._cancel_checked_at = now
        if self.store.is_cancel_requested(self.run_id):
            raise RunCanceled(f"run {self.run_id} was canceled with run.cancel()")

    def parent_id(self) -> str | None:
        frame = current_frame.get()
        return frame.task_id if frame is not None and frame.execution is self else None

    def next_seq(self) -> int:
        # ``next`` on an ``itertools.count`` is atomic under the GIL: no lock for every task
        return next(self._seqs)

    def log(self, level: str, message: str, data: dict[str, Any], task_id: str | None) -> None:
        text = _log_text(message)
        with self.lock:
            if task_id is None and self._prior_root_logs[(level, text)] > 0:
                # The same top-level log written by an earlier execution: a replay, not news.
                self._prior_root_logs[(level, text)] -= 1
                return
            self._log_seq += 1
            seq = self._log_seq
        record = LogRecord(
            run_id=self.run_id,
            task_id=task_id,
            execution=self.number,
            seq=seq,
            level=level,
            message=text,
            data={storable_text(str(k)): storable_data(to_jsonable(v)) for k, v in data.items()},
            time=self.clock.now(),
        )
        self.store.append_log(record)
        self.events.log_written(record)


def _log_text(message: object) -> str:
    """A log message as storable text, whatever was passed (its ``__str__`` may raise)."""
    if type(message) is str:
        return storable_text(message)
    try:
        return storable_text(str(message))
    except Exception as error:
        return f"<unprintable {type(message).__name__}: its __str__ raised {type(error).__name__}>"
