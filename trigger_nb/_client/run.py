"""Runs: looking at one (``JobRun``, ``TaskView``).

Executing one (``execute_run``, ``Context``) lives in ``trigger_nb._engine.runner``.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trigger_nb._core.codec import deserialize
from trigger_nb._core.model import (
    AttemptRecord,
    CountedList,
    ErrorInfo,
    ExecutionRecord,
    LogRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    utcnow,
)
from trigger_nb._engine.replay import refresh_hint
from trigger_nb._engine.runner import MISSING, execute_run
from trigger_nb._store.backend import Value
from trigger_nb._store.snapshot import RunSnapshot
from trigger_nb._store.store import Store, parse_run
from trigger_nb.errors import CacheReadError, JobDefinitionError, NotFoundError

if TYPE_CHECKING:
    from trigger_nb._client.job import TriggerClient


class TaskView:
    """A task of a stored run: its record's fields, its children, and lazy output and logs."""

    def __init__(self, run: JobRun, record: TaskRecord) -> None:
        self._run = run
        self.record = record
        self.children: list[TaskView] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["record"], name)

    def __repr__(self) -> str:
        return f"<task {self.record.name!r} {self.record.status.value}>"

    @property
    def output(self) -> Any:
        """The stored output, unpickled on first access (None until the task completed)."""
        if not self.record.is_completed:
            return None
        record = self.record
        data = self._run._store.read_output(record.run_id, record.id)
        return deserialize(
            data, f"task {record.name!r}", refresh_hint(record.cache_key, record.run_id)
        )

    @property
    def logs(self) -> list[LogRecord]:
        return [log for log in self._run.logs if log.task_id == self.record.id]

    @property
    def attempts(self) -> list[AttemptRecord]:
        return self.record.attempts

    def walk(self) -> list[TaskView]:
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


class JobRun:
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
        client: TriggerClient | None = None,
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
        """In a notebook: the task-tree widget, plus static HTML and text for kernel-free views."""
        from trigger_nb._widgets.live import run_mimebundle

        return run_mimebundle(self)

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

    # identity and status
    id = property(lambda self: self._record.id)
    job_id = property(lambda self: self._record.job_id)

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

    # tasks and logs
    def _load(self) -> RunSnapshot:
        record = self._current()  # drops the snapshot if the record changed
        # While the run executes (elsewhere), its tasks complete without its record changing:
        # read them afresh each time rather than show the first ones forever.
        if self._snapshot is None or record.status is RunStatus.RUNNING:
            self._snapshot = self._store.load_snapshot(self.id)
        return self._snapshot

    @property
    def all_tasks(self) -> list[TaskView]:
        """Every task, flat, in the order they first ran."""
        snapshot = self._load()  # once: every record of the list comes from the same read
        records = []
        for task_id in snapshot.entries:
            with contextlib.suppress(CacheReadError):
                record = snapshot.task(task_id)
                if record is not None:
                    records.append(record)
        return [TaskView(self, r) for r in sorted(records, key=lambda r: r.seq)]

    @property
    def tasks(self) -> list[TaskView]:
        """The task tree: top-level tasks, each with ``children``."""
        views = self.all_tasks
        by_id = {v.record.id: v for v in views}
        roots: list[TaskView] = []
        for view in views:
            parent = by_id.get(view.record.parent_id or "")
            (parent.children if parent is not None else roots).append(view)
        for view in views:
            if view.record.kind == "parallel":
                view.children.sort(key=lambda c: _index(c.record.cache_key))
        return roots

    @property
    def logs(self) -> list[LogRecord]:
        return list(self._load().logs)

    def task(self, cache_key: object) -> TaskView:
        """The first task (depth-first) whose cache key or name equals ``cache_key``."""
        for view in (v for root in self.tasks for v in root.walk()):
            if cache_key in (view.record.cache_key, view.record.name, view.record.id):
                return view
        raise NotFoundError(f"run {self.id} has no task with key or name {cache_key!r}")

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
        if self._client is None or self.job_id not in self._client.jobs:
            raise JobDefinitionError(
                f"run {self.id}: job {self.job_id!r} is not defined in this process; define it "
                "(run its cell or define_job + @job.run) on a client, then resume"
            )
        job = self._client.jobs[self.job_id]
        event = self._record.event  # the run's event never changes
        value, payload_json = job.validate(event.payload)
        executed = execute_run(
            job,
            self.id,
            value,
            payload_json,
            event_name=event.name,
            event_id=event.id,
            listeners=list(self._client.listeners),
        )
        return self._adopt(executed)

    def cancel(self) -> JobRun:
        """Stop the run: a WAITING run will not resume by itself (status CANCELED); a run
        executing in another thread or process stops before its next task. Triggering or
        resuming it again continues where it stopped. A finished run is left as it is.
        Updates this handle and returns it."""
        record = self._current()
        if record.status in (RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED):
            return self
        self._store.request_cancel(self.id)
        if record.status is RunStatus.WAITING:
            with self._store.lock_run(self.id):  # not executing: the lock is free at once
                # Read again under the lock: it may have resumed, or been cleared (then there
                # is nothing to cancel, and saving would bring it back).
                stored = self._store.load_run(self.id)
                if stored is not None and stored.status is RunStatus.WAITING:
                    now = self._client.clock.now() if self._client is not None else utcnow()
                    stored.status, stored.completed_at = RunStatus.CANCELED, now
                    stored.wait_until = None
                    self._store.save_run(stored)
        self._current()
        return self

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per task (flat), for tables and DataFrames."""
        rows = []
        for view in self.all_tasks:
            r = view.record
            rows.append(
                {
                    "run_id": r.run_id,
                    "task_id": r.id,
                    "parent_id": r.parent_id,
                    "cache_key": r.cache_key,
                    "name": r.name,
                    "kind": r.kind,
                    "status": r.status.value,
                    "attempts": len(r.attempts),
                    "started_at": r.started_at,
                    "completed_at": r.completed_at,
                    "duration_seconds": r.duration_seconds,
                    "output_type": r.output_type,
                    "output_preview": r.output_preview,
                    "error": r.error.summary() if r.error else None,
                }
            )
        return rows

    def to_dataframe(self) -> Any:
        try:
            import pandas  # type: ignore[import-untyped]
        except ImportError as error:
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from error
        return pandas.DataFrame(self.to_records())


def _execution_of(record: RunRecord) -> tuple[str, datetime, int]:
    """Which execution of which run a record shows: the run's event id and creation time tell a
    run re-created under the same id (cleared, triggered again) from the one before it."""
    return record.event.id, record.created_at, record.executions


def _index(key: Any) -> tuple[int, str]:
    return (key, "") if isinstance(key, int) else (1 << 62, str(key))
