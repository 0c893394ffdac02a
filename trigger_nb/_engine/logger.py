"""``io.logger`` and ``task.logger``: log records attached to a task, or to the run at top level.

Writing one (numbering, storing, skipping a replayed top-level log) is ``Execution.log``.
"""

from __future__ import annotations

from typing import Any

from trigger_nb._core.levels import LevelMethods
from trigger_nb._engine.execution import Execution


class Logger(LevelMethods):
    """``io.logger`` / ``task.logger``: records attached to a task (or to the run at top level)."""

    def __init__(self, execution: Execution, task_id: str | None = None, *, bound: bool = False):
        self._execution = execution
        self._task_id = task_id
        self._bound = bound

    def _emit(self, level: str, message: str, data: dict[str, Any]) -> None:
        task_id = self._task_id if self._bound else self._execution.parent_id()
        self._execution.log(level, message, data, task_id)
