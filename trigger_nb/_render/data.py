"""``RunData``: what a static rendering of a run reads, as plain records.

The renderings never reach for a run handle, a store or a clock: the caller (a view, the
command line, ``JobRun`` itself) reads the run once and passes what it read, with the time it
counts as "now" (the run's clock: a ``FakeClock`` in tests). So the header and the rows always
show the same state, and ``_render`` depends on the records only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from trigger_nb._core.model import LogRecord, RunRecord, TaskRecord
from trigger_nb._render.captured import Captures, attach
from trigger_nb._render.tree import TaskNode, build_tree


@dataclasses.dataclass(frozen=True)
class RunData:
    """One look at a run: its record, every task record (any order), its logs, and now."""

    record: RunRecord
    tasks: Sequence[TaskRecord]
    logs: Sequence[LogRecord]
    now: datetime
    # What tasks printed and displayed: "task id:attempt" -> events (``captured.Captures``)
    captures: Captures = dataclasses.field(default_factory=dict)

    def tree(self) -> list[TaskNode]:
        """The task tree, replay marks as of the record's latest execution, each node with
        what it printed and displayed."""
        return attach(build_tree(self.tasks, self.record.latest_execution), self.captures)
