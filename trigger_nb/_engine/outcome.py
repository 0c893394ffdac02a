"""How an execution ends: the outcome the engine hands back, and the run's record of it.

Whatever happens inside, a run ends recorded in a final state (or WAITING) and every task it
left RUNNING is recorded FAILED: a run is never left RUNNING by this process.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import datetime
from typing import Any

from trigger_nb._core.model import (
    ErrorInfo,
    ExecutionRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskStatus,
)
from trigger_nb._core.preview import preview, type_name
from trigger_nb._core.storable import storable_text
from trigger_nb._core.tracebacks import PACKAGE_DIR
from trigger_nb._core.version import __version__
from trigger_nb._engine.execution import Execution
from trigger_nb._engine.replay import count_replayed
from trigger_nb._store.framed import pickle_out_of_band, stored_size
from trigger_nb._store.store import Store
from trigger_nb.errors import ControlFlow, InternalError, RunCanceled, RunSuspended, TriggerNbError

# A run's output not produced in (or not loaded into) this process; shared with ``JobRun``.
MISSING: Any = object()

_ENDED = (RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED)


@dataclasses.dataclass
class RunOutcome:
    """What one execution of a run came to: the run's record as stored at its end, the run
    function's output (``MISSING`` if it returned none) and the exception it ended with.

    ``Job.trigger`` and ``JobRun.resume`` wrap it in a ``JobRun``."""

    record: RunRecord
    output: Any = MISSING
    exception: BaseException | None = None

    def succeed(self, store: Store, output: Any, big_outputs: dict[int, Any] | None = None) -> None:
        """The run function returned ``output``: stored, if it pickles (the handle of this
        process holds it either way; views say when it was not stored). ``big_outputs``: the
        big task outputs of this execution by ``id``: a run returning one of them (a cell
        ending with the DataFrame a task loaded) stores a reference to it, not a second copy."""
        record = self.record
        self.output = output
        record.status = RunStatus.SUCCESS
        record.output_type = storable_text(type_name(output))
        record.output_preview = storable_text(preview(output))
        found = (big_outputs or {}).get(id(output))
        if found is not None and found[0] is output:
            task = found[1]
            record.output_size = task.output_size
            store.save_run_output_ref(record.id, task.id)
            return
        try:
            data = pickle_out_of_band(output)  # big buffers streamed to a file, not copied
        except Exception:
            record.output_size = None
            return
        record.output_size = stored_size(data)
        store.save_run_output(record.id, data)

    def fail(self, error: BaseException) -> None:
        """``error`` ended the run function (or the engine around it): suspended, canceled,
        interrupted or failed, recorded as such."""
        record = self.record
        if isinstance(error, RunSuspended):
            record.status, record.wait_until = RunStatus.WAITING, error.resume_at
            return
        if isinstance(error, RunCanceled):
            record.status, record.error = RunStatus.CANCELED, ErrorInfo.from_exception(error)
            return
        if isinstance(error, KeyboardInterrupt):
            record.status, record.error = RunStatus.CANCELED, ErrorInfo.from_exception(error)
        else:
            record.status, record.error = RunStatus.FAILURE, ErrorInfo.from_exception(error)
            if _is_internal_error(error):
                record.error = _internal_error_info(error, "while executing the run")
        self.exception = error


def finish_run(
    store: Store,
    outcome: RunOutcome,
    history: ExecutionRecord,
    x: Execution | None,
    now: datetime,
) -> None:
    """Record how the execution ended. If that fails (a bug, a broken store), record at least a
    FAILURE naming the internal error, so the run is never left RUNNING."""
    record = outcome.record
    try:
        if record.status is RunStatus.RUNNING:  # an exception escaped before an outcome was set
            record.status = RunStatus.FAILURE
        if record.status is RunStatus.WAITING and store.is_cancel_requested(record.id):
            record.status = RunStatus.CANCELED  # canceled while running: no resume
        if x is not None:
            _record_lost_outcomes(x, x.writer.close(), record, now)
        _close_execution(record, history, x, now)
        store.save_run(record)
    except Exception as error:
        record.status, record.completed_at, record.wait_until = RunStatus.FAILURE, now, None
        history.status, history.finished_at = RunStatus.FAILURE, now
        record.error = _internal_error_info(error, "while recording how the run ended")
        outcome.exception = outcome.exception or InternalError(record.error.message)
        store.save_run(record)  # if even this fails, the store itself is broken: StoreError
    if x is not None:
        x.events.run_finished(record)


def _record_lost_outcomes(
    x: Execution, tasks: list[TaskRecord], record: RunRecord, now: datetime
) -> None:
    """Tasks still stored as RUNNING when the execution ends: writing their outcome failed (the
    run's error says why). Record them FAILED, so they run again next time like any failure,
    rather than looking as if they were still running."""
    for task in tasks:
        error = ErrorInfo(
            type="trigger_nb.errors.InternalError",
            message=(
                "trigger_nb could not record how this task ended"
                + (f" ({record.error.summary()})" if record.error else "")
                + "; it runs again when the run is executed again"
            ),
        )
        if task.attempts and task.attempts[-1].finished_at is None:
            task.attempts[-1].status, task.attempts[-1].finished_at = TaskStatus.FAILED, now
            task.attempts[-1].error = error
        task.status, task.error = TaskStatus.FAILED, error
        x.store.write_task(task)
        x.events.task_finished(task)


def _close_execution(
    record: RunRecord, history: ExecutionRecord, x: Execution | None, now: datetime
) -> None:
    history.finished_at, history.status = now, record.status
    record.updated_at = now
    if record.status in _ENDED:
        record.completed_at = now
    if x is None:
        return
    history.executed, history.failed = len(x.executed_ids), x.failed
    history.replayed, history.untouched = count_replayed(x)
    history.stale = dict(x.stale)
    if x.stale:
        _warn_stale(x, record)
    history.time_saved_seconds = sum(x.replayed_seconds)
    used = x.used_task_ids  # counted without a set of every task (100,000 tasks: 8 MiB)
    record.task_count = len(used) + sum(1 for t in x.snapshot.entries if t not in used)


def _warn_stale(x: Execution, record: RunRecord) -> None:
    """Say once per execution which tasks were replayed although their code or inputs changed,
    what changed, and how to refresh them (on stderr: shown in the cell, kept out of its
    output value)."""
    names = []
    for task_id, reasons in x.stale.items():
        task = x.snapshot.task(task_id)
        name = task.name if task is not None else task_id
        names.append(f"{name!r} ({'; '.join(reasons)})")
    count = len(names)
    sys.stderr.write(
        f"trigger_nb: run {record.id} replayed {count} stale task{'s' if count != 1 else ''} "
        f"whose code or inputs changed since {'they' if count != 1 else 'it'} ran: "
        f"{', '.join(names)}. Refresh with run_task(..., refresh=True), "
        "job.trigger(..., refresh_stale=True) or %%trigger_job --refresh-stale, or "
        "on_code_change='rerun'.\n"
    )


def _is_internal_error(error: BaseException) -> bool:
    """An exception raised by trigger_nb's own code that is none of its documented errors."""
    if isinstance(error, (TriggerNbError, ControlFlow)) or not isinstance(error, Exception):
        return False
    tb = error.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return last is not None and last.tb_frame.f_code.co_filename.startswith(PACKAGE_DIR)


def _internal_error_info(error: BaseException, where: str) -> ErrorInfo:
    info = ErrorInfo.from_exception(error)
    return ErrorInfo(
        type="trigger_nb.errors.InternalError",
        message=(
            f"internal error in trigger_nb {where}: {info.summary()}. This is a bug in "
            f"trigger_nb {__version__}, not in your code: please report it with this message "
            "and the traceback. The run is recorded as failed; re-run it to continue."
        ),
        traceback=info.traceback,
    )
