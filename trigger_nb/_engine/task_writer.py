"""Every write of a task's entry during one execution, and the late RUNNING record.

A task's entry is written when its attempt ends (COMPLETED with its output, FAILED, WAITING, ...).
Writing a RUNNING entry *before* every side effect too would double the cost of executing a
cheap task (two commits instead of one) to record something that only matters for a task that
is still running when someone looks or the process dies. So a RUNNING entry is written by a
watchdog thread, only for attempts still running ``RUNNING_RECORD_DELAY`` (0.1 s) after they
started: a kernel killed during a slow task leaves it RUNNING in the store (its attempt visible,
re-run at least once), a kernel killed during a millisecond task leaves it absent (also re-run:
SPEC 6 allows either).

Invariants, kept under one lock per execution:
- once a task's attempt has ended (``settle``), the watchdog never writes it again, so a late
  RUNNING entry can never overwrite a COMPLETED one;
- a task's entry is never written before the RUNNING entries of its pending ancestors, so the
  stored tree has no orphans (a child's parent is always there).
"""

from __future__ import annotations

import threading
import time

from trigger_nb._core.model import TaskRecord, TaskStatus
from trigger_nb._store.framed import Pickled
from trigger_nb._store.store import Store
from trigger_nb._store.task_entries import Superseded

# A RUNNING entry is written for attempts running longer than this, 1-2 delays after they start:
# the watchdog wakes once per delay (waking more often cost a cheap task's run ~5%, the GIL
# passing back and forth).
RUNNING_RECORD_DELAY = 0.1
_RUNNING = TaskStatus.RUNNING  # read once: an enum member lookup costs ~0.4 µs


class TaskWriter:
    def __init__(self, store: Store, delay: float = RUNNING_RECORD_DELAY) -> None:
        self._store = store
        self._delay = delay
        self._lock = threading.Lock()
        # task id -> (when its RUNNING entry is due, its record)
        self._pending: dict[str, tuple[float, TaskRecord]] = {}
        # Tasks whose last stored entry is a RUNNING one this writer wrote: an attempt's end
        # always writes again, so any left at ``close`` lost their outcome (see ``close``).
        self._running: dict[str, TaskRecord] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def started(self, record: TaskRecord) -> None:
        """An attempt began: its RUNNING entry is written if it is still running after the delay.

        The record must not change until ``settle`` (the watchdog may be serializing it).
        """
        with self._lock:
            self._pending[record.id] = (time.monotonic() + self._delay, record)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="trigger_nb-running-records", daemon=True
                )
                self._thread.start()

    def settle(self, task_id: str) -> None:
        """The attempt ended: cancel its RUNNING entry (waits if it is being written now)."""
        with self._lock:
            self._pending.pop(task_id, None)

    def write(
        self,
        record: TaskRecord,
        output: bytes | Pickled | None = None,
        *,
        drop_output: bool = False,
        capture: tuple[int, bytes] | None = None,
        superseded: Superseded | None = None,
        unmark: bool = False,
    ) -> None:
        """Write the task's entry now, after any pending ancestors' RUNNING entries
        (``drop_output``, ``superseded``, ``unmark``: see ``Store.write_task``)."""
        with self._lock:
            self._pending.pop(record.id, None)
            self._flush_ancestors(record.parent_id)
            self._store.write_task(
                record,
                output,
                drop_output=drop_output,
                capture=capture,
                superseded=superseded,
                unmark=unmark,
            )
            if record.status is _RUNNING:
                self._running[record.id] = record
            else:
                self._running.pop(record.id, None)

    def close(self) -> list[TaskRecord]:
        """Stop the watchdog (at the end of the execution: every attempt has settled by then).

        Returns the tasks still stored as RUNNING: their outcome could not be recorded (the
        write failed). The execution records them as failed, so none is left RUNNING."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            left, self._running = list(self._running.values()), {}
        return left

    def _flush_ancestors(self, parent_id: str | None) -> None:
        chain = []
        while parent_id is not None and parent_id in self._pending:
            parent = self._pending.pop(parent_id)[1]
            chain.append(parent)
            parent_id = parent.parent_id
        for parent in reversed(chain):  # the outermost first
            self._store.write_task(parent)
            self._running[parent.id] = parent

    def _watch(self) -> None:
        while not self._stop.wait(self._delay):
            now = time.monotonic()
            with self._lock:
                due = [task_id for task_id, (at, _) in self._pending.items() if at <= now]
                for task_id in due:
                    if task_id in self._pending:  # an ancestor flush may have taken it already
                        record = self._pending.pop(task_id)[1]
                        try:
                            self._flush_ancestors(record.parent_id)
                            self._store.write_task(record)
                            self._running[record.id] = record
                        except Exception:
                            continue
