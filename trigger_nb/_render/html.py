"""Kernel-free rendering of a run as self-contained HTML (no scripts, no external assets): saved
notebooks, nbconvert, GitHub and ``trigger-nb export --format html`` show it. A task's line and
details are drawn by ``task_html``; the plain-text outline beside this is in ``text``.

Every piece of user text (task names, keys, log messages, errors, previews) goes through
``html.escape``: a task named ``<script>`` is shown, never run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from trigger_nb._core.model import LogRecord, RunRecord
from trigger_nb._render.css import CSS
from trigger_nb._render.data import RunData
from trigger_nb._render.format import format_countdown
from trigger_nb._render.stale import stale_summary
from trigger_nb._render.summary import RunSummary, summarize_run
from trigger_nb._render.task_html import (
    details_html,
    esc,
    hint_html,
    line_html,
    logs_html,
    traceback_html,
)
from trigger_nb._render.tree import COLORS, GLYPHS, STALE, WAITING, TaskNode, group_logs

SIBLING_PAGE = 100  # siblings shown per level before "… N more"
MAX_ROWS = 1000  # rows in one static rendering: a 10,000-task run stays a readable size
# rows of static tree saved with a notebook output, for viewers that strip the page's script
# (which draws every task from its data): keeps the output small and cheap to make
NOTEBOOK_MAX_ROWS = 50


# --- the header -----------------------------------------------------------------------------


def header_html(summary: RunSummary, *, now: datetime, failure_link: bool = False) -> str:
    """The run's name, status, times and counts, its error; ``failure_link``: the name of the
    task that raised the run's error is a link the page's script makes jump to it (the page's
    first failure is that task: ``doc_data.first_failure``)."""
    color = COLORS.get(summary.status, "#6e7781")
    parts = [
        f'<div class="tnb-head"><span class="tnb-job">{esc(summary.job_name)}</span> '
        f'<span class="tnb-version">v{esc(summary.job_version)}</span> '
        f'<code class="tnb-runid" title="{esc(summary.run_id)}">{esc(summary.short_id)}</code> '
        f'<span class="tnb-badge tnb-status" style="background:{color}">'
        f"{esc(summary.status)}</span></div>",
        f'<div class="tnb-muted tnb-stats">started {esc(summary.started)} · '
        f'<span class="tnb-duration">{esc(summary.duration)}</span> · '
        f"{summary.task_count} tasks{_progress(summary)}</div>",
        f'<div class="tnb-counts">{esc(summary.counts_base)}{_stale_count(summary)}</div>',
    ]
    if summary.stale:
        parts.append(
            f'<div class="tnb-stale-note tnb-muted"><span style="color:{COLORS[STALE]}">'
            f"{GLYPHS[STALE]}</span> {hint_html(stale_summary(summary.stale))}</div>"
        )
    if summary.status == "WAITING":
        countdown = esc(format_countdown(summary.wait_until, now))
        parts.append(f'<div style="color:{COLORS[WAITING]}">◷ {countdown}</div>')
    if summary.error and failure_link and summary.error_task is not None:
        parts.append(
            '<div class="tnb-err tnb-run-error">error in task <a class="tnb-fail-link" '
            f'href="#" data-tnb-jump="1">{esc(summary.error_task)}</a></div>'
        )
    elif summary.error:
        parts.append(f'<div class="tnb-err tnb-run-error">{esc(summary.error)}</div>')
        if summary.traceback:
            parts.append(traceback_html(summary.traceback))
    elif summary.output_preview not in (None, "None"):
        parts.append(
            f'<div class="tnb-muted">output: <code>{esc(summary.output_preview)}</code></div>'
        )
    return "".join(parts)


def _progress(summary: RunSummary) -> str:
    if summary.progress is None:
        return ""
    return f' · <span class="tnb-progress">{esc(summary.progress)}</span>'


def _stale_count(summary: RunSummary) -> str:
    if not summary.stale:
        return ""
    color = COLORS[STALE]
    return f'<span class="tnb-stale-count" style="color:{color}">{esc(summary.stale_part)}</span>'


# --- the tree -------------------------------------------------------------------------------


class Budget:
    """The rows a rendering may still show, and how many tasks it left out."""

    def __init__(self, rows: int) -> None:
        self.left = rows
        self.hidden = 0


def tree_html(
    nodes: list[TaskNode],
    logs: dict[str | None, list[LogRecord]] | None,
    *,
    line: Callable[[TaskNode], str],
    max_rows: int = MAX_ROWS,
    latest: int | None = None,
) -> str:
    """Nested rows, each drawn by ``line``. With ``logs`` each row is a ``<details>`` holding
    its details; without, plain lines. ``latest=N`` shows only the last N siblings of each level
    (the live view, where the newest tasks are the news)."""
    budget = Budget(max_rows)
    out: list[str] = []
    _walk(nodes, logs, budget, line, out, latest)
    if budget.hidden:
        out.append(f'<div class="tnb-more">… {budget.hidden:,} more tasks not shown here</div>')
    return f'<div class="tnb-tree">{"".join(out)}</div>'


def _walk(
    nodes: list[TaskNode],
    logs: dict[str | None, list[LogRecord]] | None,
    budget: Budget,
    line: Callable[[TaskNode], str],
    out: list[str],
    latest: int | None = None,
) -> None:
    if latest is not None and len(nodes) > latest:
        earlier = len(nodes) - latest
        out.append(f'<div class="tnb-more">… {earlier:,} earlier sibling tasks</div>')
        nodes = nodes[earlier:]
    for index, node in enumerate(nodes):
        if index >= SIBLING_PAGE or budget.left <= 0:
            rest = nodes[index:]
            budget.hidden += sum(n.count() for n in rest)
            out.append(f'<div class="tnb-more">… {len(rest):,} more sibling tasks</div>')
            return
        budget.left -= 1
        status = node.status
        if logs is None:
            out.append(f'<div class="tnb-task tnb-st-{status}">{line(node)}</div>')
            if node.children:
                out.append('<div class="tnb-kids">')
                _walk(node.children, logs, budget, line, out, latest)
                out.append("</div>")
            continue
        body = details_html(node, logs.get(node.record.id, []))
        if node.children:
            out.append(
                f'<details open class="tnb-task tnb-st-{status}"><summary>{line(node)}</summary>'
                f'<details class="tnb-info"><summary class="tnb-muted">details</summary>'
                f'<div class="tnb-body">{body}</div></details><div class="tnb-kids">'
            )
            _walk(node.children, logs, budget, line, out)
            out.append("</div></details>")
        else:
            out.append(
                f'<details class="tnb-task tnb-st-{status}"><summary>{line(node)}</summary>'
                f'<div class="tnb-body">{body}</div></details>'
            )


def run_logs_html(top: list[LogRecord]) -> str:
    """The logs written at the top level of the run, folded."""
    if not top:
        return ""
    return (
        '<details class="tnb-runlogs"><summary class="tnb-muted">run logs '
        f'({len(top)})</summary><div class="tnb-body">{logs_html(top)}</div></details>'
    )


def render_html(data: RunData, *, max_rows: int = MAX_ROWS) -> str:
    """A self-contained HTML rendering (inline CSS, no scripts, no external assets)."""
    return html_from(
        data.record, data.tree(), group_logs(data.logs), now=data.now, max_rows=max_rows
    )


def html_from(
    record: RunRecord,
    nodes: list[TaskNode],
    logs: dict[str | None, list[LogRecord]],
    *,
    now: datetime,
    max_rows: int = MAX_ROWS,
) -> str:
    """``render_html`` from an already built tree (the widget has one)."""
    summary = summarize_run(record, now=now, nodes=nodes)
    run_logs = run_logs_html(logs.get(None, []))
    tree = tree_html(nodes, logs, line=lambda node: line_html(node, now=now), max_rows=max_rows)
    return (
        f'<div class="tnb tnb-run"><style>{CSS}</style>{header_html(summary, now=now)}'
        f"{run_logs}{tree}</div>"
    )
