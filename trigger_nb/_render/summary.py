"""The header of every view of a run: ``RunSummary``, the same for the static HTML, the text
outline, the live and the interactive tree."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from trigger_nb._core.model import RunRecord
from trigger_nb._render.format import format_duration, format_time, run_duration_text, short_run_id
from trigger_nb._render.keys import task_label
from trigger_nb._render.tree import TaskNode, failure_origin, replayed_count, stale_count


@dataclasses.dataclass
class RunSummary:
    """The header of a run view."""

    job_name: str
    job_version: str
    run_id: str
    short_id: str
    status: str
    executions: int
    started: str
    duration: str
    executed: int
    replayed: int
    failed: int
    time_saved: str
    task_count: int
    wait_until: datetime | None
    # "error in task X" when a task raised the run's error (its row shows the error, once);
    # else "error: Type: message", and the traceback to show folded.
    error: str | None
    traceback: str | None
    output_preview: str | None
    # tasks replayed although their code or inputs changed (``tree.stale_count``)
    stale: int = 0
    # the label of the task that raised the run's error (``error`` names it), else None
    error_task: str | None = None
    # while a run executes: "412/1,010 done · 3 failed · about 2 s left" (``progress``)
    progress: str | None = None

    @property
    def counts_line(self) -> str:
        return self.counts_base + self.stale_part

    @property
    def counts_base(self) -> str:
        return (
            f"{self.executed} executed · {self.replayed} replayed · {self.failed} failed · "
            f"{self.time_saved} saved"
        )

    @property
    def stale_part(self) -> str:
        """`` · 2 stale``, or nothing when no task is."""
        return f" · {self.stale} stale" if self.stale else ""


def summarize_run(
    record: RunRecord, *, now: datetime, nodes: list[TaskNode] | None = None
) -> RunSummary:
    """The header of ``record`` at ``now`` (a running run's duration grows); with its tree
    (``nodes``) it names the task that failed it."""
    latest = record.latest_execution
    error, traceback, error_task = None, None, None
    if record.error is not None:
        origin = failure_origin(nodes or [], record.error)
        if origin is not None:
            error_task = task_label(origin.record)
            error = f"error in task {error_task}"
        else:
            error, traceback = f"error: {record.error.summary()}", record.error.traceback or None
    return RunSummary(
        job_name=record.job_name,
        job_version=record.job_version,
        run_id=record.id,
        short_id=short_run_id(record.id),
        status=record.status.value,
        executions=record.executions,
        started=format_time(record.created_at),
        duration=run_duration_text(record, now),
        executed=latest.executed if latest else 0,
        replayed=replayed_count(record),
        failed=latest.failed if latest else 0,
        time_saved=format_duration(latest.time_saved_seconds if latest else 0.0),
        task_count=record.task_count,
        wait_until=record.wait_until,
        error=error,
        traceback=traceback,
        output_preview=record.output_preview,
        stale=stale_count(record),
        error_task=error_task,
    )
