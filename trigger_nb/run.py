"""Runs: looking at one (``JobRun``, ``TaskView``).

Executing one (``execute_run``, ``Context``) lives in ``trigger_nb.execute``.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trigger_nb.codec import deserialize
from trigger_nb.errors import CacheReadError, JobDefinitionError, NotFoundError

# Re-exported (``X as X``) so that ``from trigger_nb.run import Context, execute_run`` still works.
from trigger_nb.execute import MISSING
from trigger_nb.execute import Context as Context
from trigger_nb.execute import EventContext as EventContext
from trigger_nb.execute import JobContext as JobContext
from trigger_nb.execute import RunContext as RunContext
from trigger_nb.execute import execute_run as execute_run
from trigger_nb.model import (
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
from trigger_nb.replay import refresh_hint
from trigger_nb.snapshot import RunSnapshot
from trigger_nb.store import Store

if TYPE_CHECKING:
    from trigger_nb.job import TriggerClient


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
    """One run of a job: status, output, error, executions, and the task tree."""

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
        self._client = client
        self._output = output
        self.exception = exception
        self._snapshot: RunSnapshot | None = None

    def __repr__(self) -> str:
        return f"<JobRun {self.id} job={self.job_id!r} {self.status.value}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """In a notebook: the task-tree widget, plus static HTML and text for kernel-free views."""
        from trigger_nb.widget import run_mimebundle

        return run_mimebundle(self)

    # identity and status
    id = property(lambda self: self._record.id)
    job_id = property(lambda self: self._record.job_id)
    record = property(lambda self: self._record)

    @property
    def status(self) -> RunStatus:
        return self._record.status

    @property
    def error(self) -> ErrorInfo | None:
        return self._record.error

    @property
    def executions(self) -> CountedList[ExecutionRecord]:
        """Every execution of the run (``executed``, ``replayed``, ``failed``, time saved);
        compares with an int as its count: ``run.executions == 2``."""
        return CountedList(self._record.execution_history)

    @property
    def execution_history(self) -> list[ExecutionRecord]:
        return self._record.execution_history

    @property
    def started_at(self) -> datetime:
        return self._record.created_at

    @property
    def completed_at(self) -> datetime | None:
        return self._record.completed_at

    @property
    def wait_until(self) -> datetime | None:
        return self._record.wait_until

    @property
    def payload(self) -> Any:
        return self._record.event.payload

    @property
    def output(self) -> Any:
        if self._output is not MISSING:
            return self._output
        if self._record.status is not RunStatus.SUCCESS:
            return None
        data = self._store.read_run_output(self.id)
        if data is None:
            raise CacheReadError(
                f"run {self.id}: its output ({self._record.output_type}) could not be stored; "
                "re-run it to see the output in this process"
            )
        self._output = deserialize(data, f"run {self.id}", "re-run the job")
        return self._output

    def raise_for_status(self) -> JobRun:
        """Raise the run's exception if it failed (this process), else return the run."""
        if self.exception is not None:
            raise self.exception
        if self.status is RunStatus.FAILURE and self.error is not None:
            raise JobDefinitionError(f"run {self.id} failed: {self.error.summary()}")
        return self

    # tasks and logs
    def _load(self) -> RunSnapshot:
        if self._snapshot is None:
            self._snapshot = self._store.load_snapshot(self.id)
        return self._snapshot

    @property
    def all_tasks(self) -> list[TaskView]:
        """Every task, flat, in the order they first ran."""
        records = []
        for task_id in self._load().entries:
            with contextlib.suppress(CacheReadError):
                record = self._load().task(task_id)
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
        record = self._store.load_run(self.id)
        if record is None:
            raise NotFoundError(f"run {self.id} no longer exists (cleared?)")
        self._record, self._snapshot = record, None
        return self

    def resume(self) -> JobRun:
        """Execute the run again: replay completed tasks, continue past due waits."""
        if self._client is None or self.job_id not in self._client.jobs:
            raise JobDefinitionError(
                f"run {self.id}: job {self.job_id!r} is not defined in this process; define it "
                "(run its cell or define_job + @job.run) on a client, then resume"
            )
        job = self._client.jobs[self.job_id]
        value, payload_json = job.validate(self._record.event.payload)
        return execute_run(
            job,
            self.id,
            value,
            payload_json,
            event_name=self._record.event.name,
            event_id=self._record.event.id,
            listeners=list(self._client.listeners),
        )

    def cancel(self) -> JobRun:
        """Stop the run: a WAITING run will not resume by itself (status CANCELED); a run
        executing in another thread or process stops before its next task. Triggering or
        resuming it again continues where it stopped. A finished run is left as it is."""
        record = self._store.load_run(self.id) or self._record
        if record.status in (RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED):
            self._record = record
            return self
        self._store.request_cancel(self.id)
        if record.status is RunStatus.WAITING:
            with self._store.lock_run(self.id):  # not executing: the lock is free at once
                record = self._store.load_run(self.id) or record
                if record.status is RunStatus.WAITING:
                    now = self._client.clock.now() if self._client is not None else utcnow()
                    record.status, record.completed_at = RunStatus.CANCELED, now
                    record.wait_until = None
                    self._store.save_run(record)
        self._record = record
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


def _index(key: Any) -> tuple[int, str]:
    return (key, "") if isinstance(key, int) else (1 << 62, str(key))
