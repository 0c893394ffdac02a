"""The live view's timeline: each row's attempts as bars on one time axis, from the start of
the execution to now, drawn on the server (the live view's HTML widget runs no script). As the
run goes on the axis grows and the bars move left: a waterfall of the newest rows, each track
at the right edge of its row so that they line up. The run
page's full timeline (every attempt, gaps, waits, per execution) is drawn by its script
(``tree_app.js``).
"""

from __future__ import annotations

from datetime import datetime

from trigger_nb._core.model import TaskRecord
from trigger_nb._render.format import format_duration, format_time_of_day
from trigger_nb._render.tree import COLORS

TRACK_CSS = """
.tnb .tnb-track{float:right;position:relative;width:240px;height:10px;margin:5px 8px 0 8px;
background:var(--tnb-bg2);border-radius:2px}
.tnb .tnb-track>span{position:absolute;top:1px;height:8px;min-width:2px;border-radius:1px}
"""


def track_html(record: TaskRecord, start: datetime, now: datetime) -> str:
    """``record``'s attempts since ``start`` as bars on the axis ``start`` .. ``now`` (an
    attempt still running reaches ``now``); empty for a task with none since (replayed)."""
    span = max((now - start).total_seconds(), 1e-3)
    bars = []
    for attempt in record.attempts:
        end = attempt.finished_at or now
        if end < start:
            continue
        left = max((attempt.started_at - start).total_seconds(), 0.0) / span * 100
        width = max((end - attempt.started_at).total_seconds(), 0.0) / span * 100
        status = attempt.status.value.lower()
        took = format_duration((end - attempt.started_at).total_seconds())
        title = f"attempt {attempt.number}: {format_time_of_day(attempt.started_at)}, {took}"
        bars.append(
            f'<span class="tnb-tbar" style="left:{min(left, 100):.1f}%;width:'
            f"{min(width, 100 - min(left, 100)):.1f}%;background:{COLORS.get(status, '#6e7781')}"
            f'" title="{title} ({status})"></span>'
        )
    return f'<span class="tnb-track">{"".join(bars)}</span>' if bars else ""
