"""A run as a plain-text outline: the ``text/plain`` of every displayed run."""

from __future__ import annotations

from datetime import datetime

from trigger_nb._core.model import RunRecord
from trigger_nb._render.data import RunData
from trigger_nb._render.format import format_countdown, format_duration
from trigger_nb._render.html import MAX_ROWS, SIBLING_PAGE, Budget
from trigger_nb._render.keys import task_label
from trigger_nb._render.refresh import REFRESH_PENDING
from trigger_nb._render.stale import stale_summary, stale_text
from trigger_nb._render.summary import RunSummary, summarize_run
from trigger_nb._render.tree import GLYPHS, STALE, WAITING, TaskNode, row_error_text


def summary_text(summary: RunSummary) -> str:
    return (
        f"{summary.job_name} v{summary.job_version} · {summary.run_id} · {summary.status} · "
        f"started {summary.started} · {summary.duration}\n{summary.counts_line}"
    )


def render_text(data: RunData, *, max_rows: int = MAX_ROWS) -> str:
    """An indented plain-text outline of the run's task tree."""
    return text_from(data.record, data.tree(), now=data.now, max_rows=max_rows)


def text_from(
    record: RunRecord, nodes: list[TaskNode], *, now: datetime, max_rows: int = MAX_ROWS
) -> str:
    """``render_text`` from an already built tree."""
    summary = summarize_run(record, now=now, nodes=nodes)
    lines = [summary_text(summary)]
    if summary.stale:
        lines.append(f"{GLYPHS[STALE]} {stale_summary(summary.stale)}")
    if summary.status == "WAITING":
        lines.append(format_countdown(summary.wait_until, now))
    if summary.error:
        lines.append(summary.error)
    budget = Budget(max_rows)

    def walk(nodes: list[TaskNode], depth: int) -> None:
        for index, node in enumerate(nodes):
            if index >= SIBLING_PAGE or budget.left <= 0:
                lines.append(f"{'  ' * depth}… {len(nodes) - index:,} more sibling tasks")
                return
            budget.left -= 1
            r = node.record
            bits = [f"{'  ' * depth}{GLYPHS[node.status]} {task_label(r, icon=True)}"]
            if node.status == WAITING:
                bits.append(format_countdown(r.wait_until, now))
            elif r.duration_seconds is not None:
                bits.append(format_duration(r.duration_seconds))
            if len(r.attempts) > 1:
                bits.append(f"{len(r.attempts)} attempts")
            bits.append(node.status)
            if node.stale:
                bits.append(f"{GLYPHS[STALE]} {stale_text(node.stale)}")
            if r.refresh_pending:
                bits.append(REFRESH_PENDING)
            error = row_error_text(node)
            if error is not None:
                bits.append(error)
            lines.append(" · ".join(bits))
            walk(node.children, depth + 1)

    walk(nodes, 1)
    return "\n".join(lines)
