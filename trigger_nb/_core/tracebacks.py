"""Tracebacks as the user should read them: their frames, trigger_nb's own cut out.

``PACKAGE_DIR`` is the one definition of "trigger_nb's own code" for every place that hides or
recognizes its frames (stored errors, internal-error detection, the notebook's tracebacks).
"""

from __future__ import annotations

import os
import traceback as traceback_module

from trigger_nb._core.storable import storable_text
from trigger_nb.errors import TaskError


def qualified_name(kind: type) -> str:
    name = str(getattr(kind, "__qualname__", None) or kind.__name__)
    module = getattr(kind, "__module__", None)
    if isinstance(module, str) and module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    return name


def format_traceback(error: BaseException) -> str:
    """The user's frames of ``error``'s traceback, trigger_nb's own cut out.

    A task's failure (``TaskError``) is shown as one traceback: the run function's frames down
    to the ``run_task`` call, then the task function's frames down to the original error, whose
    line ends it. The TaskError's own line would only repeat that error's text.
    """
    try:
        cause = error.__cause__ if _is_task_error(error) else None
        report = traceback_module.TracebackException.from_exception(cause or error)
        _drop_internal_frames(report)
        if cause is not None:
            outer = traceback_module.TracebackException.from_exception(error)
            _drop_internal_frames(outer)
            frames = [f for f in outer.stack if not _is_internal(f)]
            report.stack = traceback_module.StackSummary.from_list([*frames, *report.stack])
        return storable_text("".join(report.format()))
    except Exception as broken:  # a frame or a chained exception that cannot be formatted
        try:
            lines = "".join(traceback_module.format_tb(error.__traceback__))
        except Exception:
            lines = ""
        note = f"(the full traceback could not be formatted: {type(broken).__name__})\n"
        return storable_text(f"Traceback (most recent call last):\n{lines}{note}")


def _is_task_error(error: BaseException) -> bool:
    return isinstance(error, TaskError) and error.__cause__ is not None


# The package root (this file is in trigger_nb/_core/): frames from files below it are ours.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _is_internal(frame: traceback_module.FrameSummary) -> bool:
    return (frame.filename or "").startswith(PACKAGE_DIR)


def _drop_internal_frames(report: traceback_module.TracebackException, depth: int = 0) -> None:
    """Keep the user's frames: trigger_nb's own (the attempt loop, drivers) are noise to them.

    A traceback made only of our frames is kept whole, so an internal bug still shows where.
    """
    mine = [f for f in report.stack if not _is_internal(f)]
    if mine:
        report.stack = traceback_module.StackSummary.from_list(mine)
    for linked in (report.__cause__, report.__context__):
        if linked is not None and depth < 20:
            _drop_internal_frames(linked, depth + 1)
