"""Progress while a run executes: "412/1,010 done · 3 failed · about 2 s left".

The time left is the pace so far carried forward (elapsed / done × what is left): plain, and
right for the runs of many alike tasks it matters for. Without a known total (a first
execution cannot know how many tasks its code will start) only the counts are shown.
"""

from __future__ import annotations

from datetime import datetime

from trigger_nb._core.model import TaskStatus
from trigger_nb._render.format import format_duration
from trigger_nb._render.tree import TaskNode


def run_progress(done: int, total: int | None, failed: int, elapsed: float) -> str:
    """``done/total done · N failed · about T left`` (parts known so far)."""
    failures = f" · {failed:,} failed" if failed else ""
    if total is None or total <= 0:
        return f"{done:,} done{failures}"
    done = min(done, total)
    text = f"{done:,}/{total:,} done{failures}"
    if 0 < done < total and elapsed > 0:
        text += f" · about {format_duration(elapsed / done * (total - done))} left"
    return text


def node_progress(node: TaskNode, now: datetime) -> str | None:
    """An ``io.parallel`` task's progress over its children (its item count is the total)."""
    params = node.record.params
    total = params.get("items") if isinstance(params, dict) else None
    if not isinstance(total, int):
        return None
    statuses = [child.record.status for child in node.children]
    done = sum(1 for status in statuses if status is TaskStatus.COMPLETED)
    failed = sum(1 for status in statuses if status is TaskStatus.FAILED)
    started = node.record.started_at
    elapsed = (now - started).total_seconds() if started is not None else 0.0
    return run_progress(done, total, failed, elapsed)
