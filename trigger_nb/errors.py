"""Every error trigger_nb raises, in one place.

Each message names the thing, the problem and the fix. Errors also subclass the builtin that fits,
so ``except TypeError`` keeps working for callers who do not know us::

    TriggerNbError(Exception)
    ├── InvalidCacheKeyError(TypeError)      a cache key of an unsupported type or empty
    ├── DuplicateCacheKeyError(ValueError)   the same key twice in one scope and execution
    ├── InvalidPayloadError(ValueError)      a payload that fails the job's schema
    ├── InvalidOptionError(ValueError)       a bad option value (negative retry limit, NaN timeout)
    ├── TaskError(RuntimeError)              a task failed after its last attempt
    │   └── TaskTimedOutError                the last attempt timed out (a TaskTimeoutError too)
    ├── TaskTimeoutError(TimeoutError)       an attempt ran past ``timeout`` (retried or TaskError)
    ├── TaskOutputError(TypeError)           a task's output cannot be serialized
    ├── CacheReadError(RuntimeError)         a stored output can no longer be read
    ├── StoreError(OSError)                  the store cannot be opened or written
    │   └── StoreVersionError                the store was written by an unknown format version
    ├── NotFoundError(LookupError)           an unknown job, run or task id
    │   └── TaskNotFoundError(KeyError)      no task of a run matches what was named
    ├── JobDefinitionError(ValueError)       a job without a run function, or not defined here
    ├── RunConflictError(ValueError)         a run id that belongs to another job or payload
    ├── StaleTaskError(RuntimeError)         a completed task's code or inputs changed
    │                                        (``on_code_change="error"``)
    ├── RunBusyError(RuntimeError)           a run asked to execute inside its own execution
    ├── WorkerLostError(RuntimeError)        the Dask worker running a child died (retryable)
    └── InternalError(RuntimeError)          a bug in trigger_nb itself (the run still ends)

Internal control flow derives from ``BaseException`` (like ``KeyboardInterrupt``) so a user's
``except Exception`` can never swallow it::

    ControlFlow(BaseException)
    ├── RunSuspended                         ``io.wait`` suspends the run until a resume time
    └── RunCanceled                          ``run.cancel()`` stops a run before its next task
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol


class ErrorData(Protocol):
    """What ``TaskError.error`` holds (``trigger_nb._core.model.ErrorInfo``): named here as a
    protocol so this module, the bottom of the package, imports nothing of trigger_nb's."""

    type: str
    message: str
    traceback: str


class TriggerNbError(Exception):
    """Base class of every error trigger_nb raises on purpose."""


class InvalidCacheKeyError(TriggerNbError, TypeError):
    """A cache key that is empty or of a type keys cannot hold."""


class DuplicateCacheKeyError(TriggerNbError, ValueError):
    """The same cache key used twice in one scope within one execution."""

    def __init__(self, message: str, *, cache_key: object) -> None:
        super().__init__(message)
        self.cache_key = cache_key


class InvalidPayloadError(TriggerNbError, ValueError):
    """A payload that does not validate against the job's schema; ``errors`` lists each field."""

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class InvalidOptionError(TriggerNbError, ValueError):
    """An option value that cannot work (negative retry limit, NaN timeout, unknown name)."""


class TaskError(TriggerNbError, RuntimeError):
    """A task failed after its last attempt.

    ``error`` carries the last error's type, message and traceback as data; the original exception
    is the ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        cache_key: object,
        task_id: str,
        attempts: Sequence[Any],
        error: ErrorData,
    ) -> None:
        super().__init__(message)
        self.cache_key = cache_key
        self.task_id = task_id
        self.attempts = attempts
        self.error = error

    @property
    def error_type(self) -> str:
        return self.error.type

    @property
    def error_message(self) -> str:
        return self.error.message

    @property
    def traceback(self) -> str:
        return self.error.traceback


class TaskTimeoutError(TriggerNbError, TimeoutError):
    """One attempt of a task ran longer than its ``timeout``; ``task_id`` names the task."""

    def __init__(self, message: str, *, task_id: str = "") -> None:
        super().__init__(message)
        self.task_id = task_id


class TaskTimedOutError(TaskError, TaskTimeoutError):
    """A task whose last attempt timed out: caught by ``except TaskError`` and by
    ``except TaskTimeoutError`` alike."""


class TaskOutputError(TriggerNbError, TypeError):
    """A task returned a value that cannot be serialized into the store.

    ``retryable``: another attempt may help (the output pickled but did not load back), unlike
    an output that cannot be pickled at all. ``task_id``: the task whose output it is, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        cache_key: object,
        output_type: str,
        task_id: str = "",
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.cache_key = cache_key
        self.output_type = output_type
        self.task_id = task_id
        self.retryable = retryable


class CacheReadError(TriggerNbError, RuntimeError):
    """A completed task's stored output can no longer be read (class moved, file damaged).

    ``reason`` says what is wrong without naming what was read ("its stored output is missing"),
    so a caller that names it better can say so without parsing the message; it defaults to the
    whole message.
    """

    def __init__(
        self, message: str, *, cache_key: object = None, task_id: str = "", reason: str = ""
    ) -> None:
        super().__init__(message)
        self.cache_key = cache_key
        self.task_id = task_id
        self.reason = reason or message


class StoreError(TriggerNbError, OSError):
    """The store directory cannot be opened, read or written."""


class StoreVersionError(StoreError):
    """The store was written by a format version this trigger_nb does not know."""


class NotFoundError(TriggerNbError, LookupError):
    """An unknown job, run or task."""


class TaskNotFoundError(NotFoundError, KeyError):
    """A run has no task matching what was named (``run.refresh_task("fetch")``, ``trigger-nb
    refresh RUN TASK``); the message lists the closest ones. ``task`` is what was named."""

    def __init__(self, message: str, *, task: object = None) -> None:
        super().__init__(message)
        self.task = task

    def __str__(self) -> str:
        # KeyError's own __str__ shows the message as a quoted repr: this one is prose.
        return str(self.args[0]) if self.args else ""


class JobDefinitionError(TriggerNbError, ValueError):
    """A job that cannot run as defined (no run function, conflicting definition)."""


class RunConflictError(TriggerNbError, ValueError):
    """An explicit run id that already belongs to another job, or to this job with another
    payload: executing it would mix two runs' tasks, so nothing runs and nothing is written."""

    def __init__(self, message: str, *, run_id: str, existing_job_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.existing_job_id = existing_job_id


class StaleTaskError(TriggerNbError, RuntimeError):
    """A completed task whose code or inputs changed since it ran, under
    ``on_code_change="error"``: raised instead of replaying it, before anything else runs."""

    def __init__(self, message: str, *, cache_key: object, reasons: list[str]) -> None:
        super().__init__(message)
        self.cache_key = cache_key
        self.reasons = reasons


class InternalError(TriggerNbError, RuntimeError):
    """Something inside trigger_nb failed where it never should (a bug to report): the run it
    happened in is still recorded as FAILURE with this error, and its lock released."""


class RunBusyError(TriggerNbError, RuntimeError):
    """A run asked to execute while this thread is already executing it (it would deadlock)."""


class WorkerLostError(TriggerNbError, RuntimeError):
    """The Dask worker running an attempt of an ``io.parallel`` child was lost (killed, out of
    memory, disconnected): that attempt failed, maybe after part of its side effect. Retried once
    by default, else per the task's ``RetryOptions``, with the same idempotency key."""

    def __init__(self, message: str, *, task_id: str = "") -> None:
        super().__init__(message)
        self.task_id = task_id


class ControlFlow(BaseException):
    """Internal signals that unwind the user's code; never an error of the user's."""


class RunSuspended(ControlFlow):
    """Raised by ``io.wait`` to suspend the run until ``resume_at``."""

    def __init__(self, resume_at: datetime, cache_key: object) -> None:
        super().__init__(f"run suspended by io.wait({cache_key!r}) until {resume_at.isoformat()}")
        self.resume_at = resume_at
        self.cache_key = cache_key


class RunCanceled(ControlFlow):
    """Raised at a task boundary of a run that ``JobRun.cancel()`` asked to stop."""
