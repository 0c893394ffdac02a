"""The small vocabularies every layer shares: run and task statuses, log levels, exit codes.

Kept apart from ``model`` (pydantic) so the command line can build its parser without paying for
pydantic's import.
"""

from __future__ import annotations

import enum

from trigger_nb.errors import InvalidOptionError

LOG_LEVELS = ("debug", "info", "warn", "error")
EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2  # the command line's contract (SPEC 5)


class RunStatus(str, enum.Enum):
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELED = "CANCELED"

    def __str__(self) -> str:
        return self.value


class TaskStatus(str, enum.Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    WAITING = "WAITING"
    INTERRUPTED = "INTERRUPTED"

    def __str__(self) -> str:
        return self.value


def parse_run_status(status: object) -> RunStatus:
    """A run status given by a user, in any case ("failure" or "FAILURE"): the one check of
    ``status=`` options; ``InvalidOptionError`` naming the statuses if it is none of them."""
    if isinstance(status, str):
        try:
            return RunStatus(status.upper())
        except ValueError:
            pass
    names = ", ".join(s.value for s in RunStatus)
    raise InvalidOptionError(f"status={status!r} is not a run status: use one of {names}")
