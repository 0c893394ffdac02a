"""Runs: looking at one (``JobRun``; its tasks are ``TaskView``s) and acting on it.

Executing one is ``trigger_nb._engine.runner.execute_run``, which returns a ``RunOutcome``;
``finished_run`` makes it the ``JobRun`` a user holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from trigger_nb._client.task_ref import refresh_selection, rerun_selection, resolve_task
from trigger_nb._client.task_view import RunTasks, TaskView, captured_outputs
from trigger_nb._core.clock import SYSTEM_CLOCK, Clock
from trigger_nb._core.codec import deserialize
from trigger_nb._core.model import (
    CountedList,
    ErrorInfo,
    ExecutionRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    stale_reasons,
)
from trigger_nb._engine.events import Listener, RunObserver, as_observer
from trigger_nb._engine.outcome import MISSING, RunOutcome
from trigger_nb._render.data import RunData
from trigger_nb._store.backend import Value
from trigger_nb._store.run_records import parse_run
from trigger_nb._store.snapshot import RunSnapshot
from trigger_nb._store.store import Store
from trigger_nb.errors import CacheReadError, JobDefinitionError, NotFoundError

# ``on_waiting(run, listeners)``: a run's re-execution by its handle ended WAITING; the
# listeners are those that watched it (a kernel's resume timer sets one, so the execution due
# later is watched by the same view).
WaitingHook = Callable[["JobRun", tuple["Listener | RunObserver", ...]], None]


class RunOwner(Protocol):
    """What a run's handle needs of its client (``TriggerClient`` has this shape): its clock,
    its store, and executing a stored run again."""

    @property
    def clock(self) -> Clock: ...

    @property
    def store(self) -> Store: ...

    def execute_again(
        self,
        record: RunRecord,
        *,
        observers: Iterable[RunObserver] = (),
        refresh: bool = False,
        replay_output: bool = True,
    ) -> RunOutcome: ...

    def check_runnable(self, record: RunRecord, action: str) -> object:
        """Raise ``JobDefinitionError`` (saying ``action`` needs it) unless the run's job is
        defined here, with a run function."""


__all__ = ["JobRun", "TaskView", "finished_run"]

_ENDED = (RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED)
_NO_CLIENT = (
    "run {run}: this handle has no client to execute it with; load it with "
    "client.load_run(run_id) on a client that defines its job, then {action}"
)


class JobRun(RunTasks):
    """One run of a job: status, output, error, executions, and the task tree.

    A handle, not a snapshot (SPEC section 2): what it shows is re-read from the store whenever
    the run's record changed there, so a run resumed by another handle, ``resume_due``, the
    kernel's resume timer or another process shows its new state here. Each access costs one
    key read; the record is parsed again only when its stored text changed.
    """

    def __init__(
        self,
        store: Store,
        record: RunRecord,
        *,
        client: RunOwner | None = None,
        output: Any = MISSING,
        exception: BaseException | None = None,
    ) -> None:
        self._store = store
        self._record = record
        # The stored text ``_record`` was parsed from. None: not known yet (the record came from
        # elsewhere), so the first access parses the stored text once.
        self._raw: Value | None = None
        self._client = client
        # The output and exception of an execution in this process (the output also once read
        # from the store), valid only for the execution that ``_outcome`` names.
        self._output = output
        self._exception = exception
        self._outcome = _execution_of(record)
        self._snapshot: RunSnapshot | None = None

    def __repr__(self) -> str:
        return f"<JobRun {self.id} job={self.job_id!r} {self.status.value}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The run as static HTML and text (nbconvert, GitHub, a terminal). In a notebook the
        page with its kernel actions is shown instead: ``%load_ext trigger_nb``, or
        ``import trigger_nb`` in a running IPython, registers it as the display formatter for
        ``JobRun``."""
        from trigger_nb._render.bundle import static_mimebundle

        return static_mimebundle(self.run_data())

    def run_data(self, now: datetime | None = None) -> RunData:
        """What every rendering of the run reads, read once: its record, its task records (not
        their outputs), its logs, and ``now`` (default: its client's clock)."""
        record = self._current()  # once: the header and the rows show the same state
        snapshot = self._load()
        return RunData(
            record,
            self._task_records(),
            list(snapshot.logs),
            now if now is not None else self._clock.now(),
            captured_outputs(snapshot.captures),
        )

    # keeping up with the store
    def _current(self) -> RunRecord:
        """The run's record as stored now: one key read, parsed only if its text changed.

        A run deleted meanwhile (cleared, pruned) keeps its last known state, and so does one
        whose stored record became unreadable: looking at a handle never raises for either;
        ``reload()`` does."""
        raw = self._store.load_run_raw(self.id)
        if raw is not None and raw != self._raw:
            try:
                record = parse_run(self.id, raw)
            except CacheReadError:
                self._raw = raw  # remembered, so each access does not parse it again
            else:
                self._take(record, raw)
        return self._record

    def _take(self, record: RunRecord, raw: Value | None) -> None:
        """Show ``record`` from now on (``raw``: its stored text, if known)."""
        if _execution_of(record) != self._outcome:
            # Another execution ran since: the output and exception held here are its
            # predecessor's. The output is read from the store again when asked for.
            self._output, self._exception = MISSING, None
            self._outcome = _execution_of(record)
        self._record, self._raw, self._snapshot = record, raw, None

    def _adopt(self, other: JobRun) -> JobRun:
        """Become the handle ``execute_run`` returned: its record, output and exception."""
        self._record, self._raw, self._snapshot = other._record, other._raw, None
        self._output, self._exception = other._output, other._exception
        self._outcome = other._outcome
        return self

    @property
    def _clock(self) -> Clock:
        """The clock of the client that holds this run (a FakeClock in tests)."""
        return self._client.clock if self._client is not None else SYSTEM_CLOCK

    # identity and status
    @property
    def id(self) -> str:
        return self._record.id

    @property
    def job_id(self) -> str:
        return self._record.job_id

    @property
    def record(self) -> RunRecord:
        return self._current()

    @property
    def status(self) -> RunStatus:
        return self._current().status

    @property
    def error(self) -> ErrorInfo | None:
        return self._current().error

    @property
    def exception(self) -> BaseException | None:
        """The exception the run's latest execution raised, if it ran in this process."""
        self._current()
        return self._exception

    @property
    def executions(self) -> CountedList[ExecutionRecord]:
        """Every execution of the run (``executed``, ``replayed``, ``failed``, time saved);
        compares with an int as its count: ``run.executions == 2``."""
        return CountedList(self._current().execution_history)

    @property
    def execution_history(self) -> list[ExecutionRecord]:
        return self._current().execution_history

    @property
    def started_at(self) -> datetime:
        return self._record.created_at  # never changes: no need to look

    @property
    def completed_at(self) -> datetime | None:
        return self._current().completed_at

    @property
    def wait_until(self) -> datetime | None:
        return self._current().wait_until

    @property
    def payload(self) -> Any:
        return self._record.event.payload  # never changes: no need to look

    @property
    def output(self) -> Any:
        record = self._current()
        if self._output is not MISSING:
            return self._output
        if record.status is not RunStatus.SUCCESS:
            return None
        data = self._store.read_run_output(self.id)
        if data is None:
            if self._store.load_run_raw(self.id) is None:
                raise NotFoundError(f"run {self.id} no longer exists (cleared?): its output too")
            raise CacheReadError(
                f"run {self.id}: its output ({record.output_type}) could not be stored; "
                "re-run it to see the output in this process"
            )
        self._output = deserialize(data, f"run {self.id}", "re-run the job")
        return self._output

    def raise_for_status(self) -> JobRun:
        """Raise the run's exception if it failed (this process), else return the run."""
        record = self._current()
        if self._exception is not None:
            raise self._exception
        if record.status is RunStatus.FAILURE and record.error is not None:
            raise JobDefinitionError(f"run {self.id} failed: {record.error.summary()}")
        return self

    @property
    def stale_tasks(self) -> list[TaskView]:
        """The tasks the latest execution replayed although their code or inputs changed since
        they ran (``on_code_change="warn"``), in the order they first ran; each says why in
        ``stale_reasons``."""
        latest = self._latest_execution()
        if latest is None or not latest.stale:
            return []
        return [view for view in self.all_tasks if stale_reasons(view.record, latest)]

    # tasks and logs: read by ``RunTasks``
    def _latest_execution(self) -> ExecutionRecord | None:
        return self._current().latest_execution

    def _load(self) -> RunSnapshot:
        record = self._current()  # drops the snapshot if the record changed
        # While the run executes (elsewhere), its tasks complete without its record changing:
        # read them afresh each time rather than show the first ones forever.
        if self._snapshot is None or record.status is RunStatus.RUNNING:
            self._snapshot = self._store.load_snapshot(self.id)
        return self._snapshot

    def reload(self) -> JobRun:
        """Re-read the run and its tasks now; NotFoundError if it no longer exists, and
        CacheReadError if its stored record is unreadable."""
        raw = self._store.load_run_raw(self.id)
        if raw is None:
            raise NotFoundError(f"run {self.id} no longer exists (cleared?)")
        self._take(parse_run(self.id, raw), raw)
        self._snapshot = None  # even if the record did not change: its tasks may have
        return self

    def resume(self) -> JobRun:
        """Execute the run again: replay completed tasks, continue past due waits. Updates
        this handle (status, output, exception, ...) and returns it."""
        if self._client is None:
            raise JobDefinitionError(_NO_CLIENT.format(run=self.id, action="resume"))
        self._adopt(finished_run(self._client.execute_again(self._record), self._client))
        return self._waiting((), self._client)

    def refresh_task(self, task: object) -> JobRun:
        """Make ``task`` and its subtasks no longer cached: the run's next execution (the cell
        run again, ``resume()``, ``rerun()``, another process) runs them again; everything else
        is replayed. ``task``: a ``TaskView``, a task id, or a top-level cache key
        (``TaskNotFoundError`` naming the closest tasks if the run has no such task).

        A subtask is reached by running its parent again, so its ancestors run again too (their
        other subtasks replay). Nothing is lost: each earlier output stays readable in the
        task's ``history``, its attempt marked superseded. Updates this handle and returns it.
        """
        records = self._fresh_records()
        target = resolve_task(records, self.id, task)
        self._mark(refresh_selection(records, target))
        return self

    def rerun(
        self,
        from_task: object = None,
        *,
        listeners: Iterable[Listener | RunObserver] = (),
    ) -> JobRun:
        """Execute the run again, running ``from_task`` and every task that started after it in
        the latest execution (with their subtasks, and the parents that reach them) instead of
        replaying them; earlier tasks are replayed. Without ``from_task``, every task runs
        again. ``from_task`` is named as for ``refresh_task``.

        The run's job must be defined in this process (``JobDefinitionError`` otherwise,
        before anything is marked). Earlier outputs stay in each task's ``history``.
        ``listeners`` watch the execution (as for ``job.trigger``). Updates this handle
        (status, output, tasks, ...) and returns it."""
        client = self._client
        if client is None:
            raise JobDefinitionError(_NO_CLIENT.format(run=self.id, action="rerun"))
        record = self._current()
        client.check_runnable(record, "rerun")
        if from_task is not None:
            records = self._fresh_records()
            target = resolve_task(records, self.id, from_task)
            self._mark(rerun_selection(records, target, record.latest_execution))
        observers = [as_observer(listener) for listener in listeners]
        outcome = client.execute_again(self._record, observers=observers, refresh=from_task is None)
        self._adopt(finished_run(outcome, client))
        return self._waiting(tuple(listeners), client)

    def _waiting(self, listeners: tuple[Listener | RunObserver, ...], client: RunOwner) -> JobRun:
        """Tell the client's ``on_waiting`` (a kernel's resume timer) when the execution ended
        WAITING, as a ``%%trigger_job`` cell's own execution does."""
        hook: WaitingHook | None = getattr(client, "on_waiting", None)  # TriggerClient's
        if hook is not None and self._record.status is RunStatus.WAITING:
            hook(self, listeners)
        return self

    def _fresh_records(self) -> list[TaskRecord]:
        self._snapshot = None  # marks and tasks as stored now
        return self._task_records()

    def _mark(self, task_ids: list[str]) -> None:
        self._store.mark_refresh(self.id, task_ids, self._clock.now().isoformat())
        self._snapshot = None  # the views show the marks

    def cancel(self) -> JobRun:
        """Stop the run: a WAITING run will not resume by itself (status CANCELED); a run
        executing in another thread or process stops before its next task. Triggering or
        resuming it again continues where it stopped. A finished run is left as it is.
        Updates this handle and returns it."""
        record = self._current()
        if record.status in _ENDED:
            return self
        self._store.request_cancel(self.id)
        if record.status is RunStatus.WAITING:
            with self._store.lock_run(self.id):  # not executing: the lock is free at once
                # Read again under the lock: it may have resumed, or been cleared (then there
                # is nothing to cancel, and saving would bring it back).
                stored = self._store.load_run(self.id)
                if stored is not None and stored.status is RunStatus.WAITING:
                    stored.status, stored.completed_at = RunStatus.CANCELED, self._clock.now()
                    stored.wait_until = None
                    self._store.save_run(stored)
        self._current()
        return self


def _execution_of(record: RunRecord) -> tuple[str, datetime, int]:
    """Which execution of which run a record shows: the run's event id and creation time tell a
    run re-created under the same id (cleared, triggered again) from the one before it."""
    return record.event.id, record.created_at, record.executions


def finished_run(outcome: RunOutcome, client: RunOwner) -> JobRun:
    """The handle of an execution that just ended in this process, holding its output and
    exception. A Ctrl-C that ended it is raised again, once the run is recorded: it stops the
    caller (the cell) as it would have without trigger_nb."""
    if isinstance(outcome.exception, KeyboardInterrupt):
        raise outcome.exception
    return JobRun(
        client.store,
        outcome.record,
        client=client,
        output=outcome.output,
        exception=outcome.exception,
    )
