"""Typed run events: how an execution tells views what happens, without knowing any view.

A ``RunObserver`` has one method per event. The engine holds its observers in ``RunEvents``,
which is an observer itself: it passes each event to every observer and swallows what a broken
one raises (a view must never break the run it shows).

The older interface, a callable ``listener(kind, payload)`` (``client.subscribe(fn)``,
``job.trigger(listeners=[fn])``, the live view's ``LiveRunView.listener``), still works:
``as_observer`` wraps it in a ``ListenerObserver``, which calls it with the same kinds as ever::

    run_started    RunRecord     task_started   TaskRecord    task_retrying  TaskRecord
    run_finished   RunRecord     task_completed TaskRecord    task_replayed  TaskRecord
    log            LogRecord     task_failed    TaskRecord    task_waiting   TaskRecord
                                 task_interrupted TaskRecord
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from trigger_nb._core.model import LogRecord, RunRecord, TaskRecord, TaskStatus

Listener = Callable[[str, Any], None]


@runtime_checkable
class RunObserver(Protocol):
    """What happens during an execution, one method per event. Records are the engine's own:
    read them, do not change them.

    Any object with these methods is an observer. Subclassing this protocol inherits a no-op for
    the events a view skips (the methods ``return None`` rather than being empty, which would
    make them abstract)."""

    def run_started(self, run: RunRecord) -> None:
        """An execution of the run began (``run.executions``: its number)."""
        return None

    def task_started(self, task: TaskRecord) -> None:
        """An attempt of the task began (``task.attempts[-1]``)."""
        return None

    def task_retrying(self, task: TaskRecord) -> None:
        """An attempt failed and another one follows after the back-off."""
        return None

    def task_finished(self, task: TaskRecord) -> None:
        """The task's execution ended; ``task.status`` says how: COMPLETED, FAILED, WAITING or
        INTERRUPTED."""
        return None

    def task_replayed(self, task: TaskRecord) -> None:
        """A completed task's stored output was returned instead of running it again."""
        return None

    def log_written(self, log: LogRecord) -> None:
        """``io.logger`` or ``task.logger`` wrote a log record."""
        return None

    def run_finished(self, run: RunRecord) -> None:
        """The execution ended and is recorded (``run.status``: its outcome, or WAITING)."""
        return None


class RunEvents:
    """Every observer of one execution, as one observer. ``observers`` is empty when nobody
    watches: work done only for observers (parsing a replayed task's record) is then skipped."""

    __slots__ = ("observers",)

    def __init__(self, observers: Iterable[RunObserver] = ()) -> None:
        self.observers = tuple(observers)

    # Each method loops itself rather than through a shared helper taking the method's name:
    # events without observers (the common case) then cost one call and an empty loop.
    def run_started(self, run: RunRecord) -> None:
        for observer in self.observers:
            try:
                observer.run_started(run)
            except Exception:  # a broken view must never break the run it shows
                continue

    def task_started(self, task: TaskRecord) -> None:
        for observer in self.observers:
            try:
                observer.task_started(task)
            except Exception:
                continue

    def task_retrying(self, task: TaskRecord) -> None:
        for observer in self.observers:
            try:
                observer.task_retrying(task)
            except Exception:
                continue

    def task_finished(self, task: TaskRecord) -> None:
        for observer in self.observers:
            try:
                observer.task_finished(task)
            except Exception:
                continue

    def task_replayed(self, task: TaskRecord) -> None:
        for observer in self.observers:
            try:
                observer.task_replayed(task)
            except Exception:
                continue

    def log_written(self, log: LogRecord) -> None:
        for observer in self.observers:
            try:
                observer.log_written(log)
            except Exception:
                continue

    def run_finished(self, run: RunRecord) -> None:
        for observer in self.observers:
            try:
                observer.run_finished(run)
            except Exception:
                continue


# The kind a listener receives for a finished task, by its status.
FINISHED_KINDS = {
    TaskStatus.COMPLETED: "task_completed",
    TaskStatus.FAILED: "task_failed",
    TaskStatus.WAITING: "task_waiting",
    TaskStatus.INTERRUPTED: "task_interrupted",
}


class ListenerObserver:
    """A ``listener(kind, payload)`` callable as a ``RunObserver``."""

    __slots__ = ("listener",)

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def run_started(self, run: RunRecord) -> None:
        self.listener("run_started", run)

    def task_started(self, task: TaskRecord) -> None:
        self.listener("task_started", task)

    def task_retrying(self, task: TaskRecord) -> None:
        self.listener("task_retrying", task)

    def task_finished(self, task: TaskRecord) -> None:
        self.listener(FINISHED_KINDS[task.status], task)

    def task_replayed(self, task: TaskRecord) -> None:
        self.listener("task_replayed", task)

    def log_written(self, log: LogRecord) -> None:
        self.listener("log", log)

    def run_finished(self, run: RunRecord) -> None:
        self.listener("run_finished", run)


def as_observer(watcher: RunObserver | Listener) -> RunObserver:
    """``watcher`` as an observer: an observer as it is, a ``listener(kind, payload)`` wrapped."""
    return watcher if isinstance(watcher, RunObserver) else ListenerObserver(watcher)
