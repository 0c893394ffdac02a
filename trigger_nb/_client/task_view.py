"""A run's tasks as a user reads them: ``TaskView`` (one task, its children, its output and
logs) and ``RunTasks``, the part of ``JobRun`` that lists them (flat, as a tree, as rows)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from trigger_nb._core.codec import deserialize
from trigger_nb._core.model import (
    AttemptRecord,
    ExecutionRecord,
    LogRecord,
    TaskRecord,
    TaskStatus,
    stale_reasons,
)
from trigger_nb._engine.capture import Event, displays, stream_text, unpack
from trigger_nb._render.tree import build_tree
from trigger_nb._store.backend import Lazy, Value
from trigger_nb._store.sealed import refresh_hint
from trigger_nb._store.snapshot import RunSnapshot, load_value
from trigger_nb._store.store import Store
from trigger_nb.errors import CacheReadError, NotFoundError

_COMPLETED = TaskStatus.COMPLETED


class TaskView:
    """A task of a stored run: its record's fields, its children, and lazy output and logs."""

    def __init__(self, run: RunTasks, record: TaskRecord) -> None:
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
            data, f"task {record.name!r}", refresh_hint(record.run_id, record.cache_key)
        )

    @property
    def logs(self) -> list[LogRecord]:
        return [log for log in self._run.logs if log.task_id == self.record.id]

    @property
    def stdout(self) -> str:
        """What the task's last attempt printed (its subtasks' prints included); "" if none."""
        return stream_text(self.captured_output(), "stdout")

    @property
    def stderr(self) -> str:
        """What the task's last attempt wrote to stderr (its subtasks' included)."""
        return stream_text(self.captured_output(), "stderr")

    @property
    def displays(self) -> list[dict[str, Any]]:
        """The rich displays of the task's last attempt, as mime bundles (``{mime: data}``,
        images base64): DataFrames, HTML, matplotlib figures."""
        return displays(self.captured_output())

    def captured_output(self, attempt: int | None = None) -> list[Event]:
        """Everything attempt number ``attempt`` (default: the last) printed and displayed,
        in order: ``("stdout" | "stderr", text)`` and ``("display", {"data", "metadata"})``.
        A failed attempt's output is kept too. CacheReadError if it is damaged."""
        attempts = self.record.attempts
        if not attempts:
            return []
        number = attempts[-1].number if attempt is None else attempt
        chosen = [a for a in attempts if a.number == number]
        if not chosen or not chosen[0].captured:
            return []
        record = self.record
        blob = self._run._store.read_capture(record.run_id, record.id, number)
        if blob is None:
            return []
        return unpack(blob, f"the output of task {record.name!r}, attempt {number}")

    @property
    def attempts(self) -> list[AttemptRecord]:
        return self.record.attempts

    @property
    def history(self) -> list[AttemptView]:
        """Every attempt of the task, across executions, oldest first, each with the output it
        produced: a completed attempt whose output a later run replaced (``superseded``) keeps
        it here, readable as ``history[i].output``."""
        return [AttemptView(self, attempt) for attempt in self.record.attempts]

    @property
    def stale_reasons(self) -> list[str]:
        """Why the run's latest execution replayed this task although its code or inputs had
        changed since it ran (``"closure value 'threshold' changed"``); empty: it is not stale."""
        return stale_reasons(self.record, self._run._latest_execution())

    @property
    def stale(self) -> bool:
        """The run's latest execution replayed this task although its code or inputs changed."""
        return bool(self.stale_reasons)

    def walk(self) -> list[TaskView]:
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


class AttemptView:
    """One attempt of a task in its history: the attempt's fields (``number``, ``execution``,
    ``status``, ``started_at``, ``finished_at``, ``error``, ``superseded``) and its output."""

    def __init__(self, task: TaskView, record: AttemptRecord) -> None:
        self._task = task
        self.record = record

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["record"], name)

    def __repr__(self) -> str:
        mark = ", superseded" if self.record.superseded else ""
        return f"<attempt {self.record.number} {self.record.status.value}{mark}>"

    @property
    def output(self) -> Any:
        """What this attempt returned: a superseded output from the task's history, the task's
        current output for the attempt that completed it, else None (it did not complete)."""
        task = self._task.record
        attempt = self.record
        if attempt.superseded:
            data = self._task._run._store.read_superseded_output(
                task.run_id, task.id, attempt.number
            )
            label = f"task {task.name!r} attempt {attempt.number} (superseded)"
            return deserialize(data, label, "its class may have moved: import it again")
        current = [a for a in task.attempts if a.status is _COMPLETED and not a.superseded]
        if task.is_completed and current and current[-1] is attempt:
            return self._task.output
        return None


class RunTasks:
    """A run's tasks and logs, read from its snapshot: the part of ``JobRun`` that lists them
    (``JobRun`` provides the store, the id and the snapshot, as fresh as it needs to be)."""

    _store: Store

    @property
    def id(self) -> str:
        raise NotImplementedError

    def _load(self) -> RunSnapshot:
        raise NotImplementedError

    def _latest_execution(self) -> ExecutionRecord | None:
        """The execution a task's marks (stale) are as of: the run's latest."""
        raise NotImplementedError

    def _task_records(self) -> list[TaskRecord]:
        """Every readable task record, in the order they first ran."""
        snapshot = self._load()  # once: every record of the list comes from the same read
        records = []
        for task_id in snapshot.entries:
            with contextlib.suppress(CacheReadError):
                record = snapshot.task(task_id)
                if record is not None:
                    records.append(record)
        return sorted(records, key=lambda r: r.seq)

    @property
    def all_tasks(self) -> list[TaskView]:
        """Every task, flat, in the order they first ran."""
        return [TaskView(self, r) for r in self._task_records()]

    @property
    def tasks(self) -> list[TaskView]:
        """The task tree: top-level tasks, each with ``children`` (the tree every view shows,
        ``trigger_nb._render.tree.build_tree``)."""
        nodes = build_tree(self._task_records(), None)
        roots = [TaskView(self, node.record) for node in nodes]
        pending = list(zip(nodes, roots, strict=True))
        while pending:
            node, view = pending.pop()
            view.children = [TaskView(self, child.record) for child in node.children]
            pending.extend(zip(node.children, view.children, strict=True))
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


def captured_outputs(captures: Mapping[str, Value | Lazy]) -> dict[str, list[Event]]:
    """What a run's task attempts printed and displayed, "task id:attempt" -> events, from
    the stored captures (a damaged one is left out: views show what they can)."""
    found = {}
    for key, value in captures.items():
        with contextlib.suppress(CacheReadError):
            found[key] = unpack(load_value(value, key), key)
    return found
