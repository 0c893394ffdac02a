"""Kernel-free rendering of a run as self-contained HTML (no scripts, no external assets): saved
notebooks, nbconvert, GitHub and ``trigger-nb export --format html`` show it. The plain-text
outline beside it is in ``text_view``.

Every piece of user text (task names, keys, log messages, errors, previews) goes through
``html.escape``: a task named ``<script>`` is shown, never run.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from trigger_nb._core.model import LogRecord, RunRecord
from trigger_nb._core.preview import redact_value, to_plain
from trigger_nb._render.css import CSS
from trigger_nb._render.icons import fontawesome_name, icon_glyph
from trigger_nb._render.keys import shown_key, task_title
from trigger_nb._render.tree import (
    COLORS,
    GLYPHS,
    WAITING,
    RunSummary,
    TaskNode,
    attempt_error_text,
    attempt_seconds,
    build_tree,
    format_countdown,
    format_duration,
    format_time,
    group_logs,
    passed_up_from,
    row_error_text,
    summarize_run,
)

if TYPE_CHECKING:
    from trigger_nb._client.run import JobRun

SIBLING_PAGE = 100  # siblings shown per level before "… N more"
MAX_ROWS = 1000  # rows in one static rendering: a 10,000-task run stays a readable size
NOTEBOOK_MAX_ROWS = 200  # rows in the fallback saved with a notebook output: keeps it small


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# --- the header -----------------------------------------------------------------------------


def header_html(summary: RunSummary, *, now: datetime | None = None) -> str:
    color = COLORS.get(summary.status, "#6e7781")
    parts = [
        f'<div class="tnb-head"><span class="tnb-job">{esc(summary.job_name)}</span> '
        f'<span class="tnb-version">v{esc(summary.job_version)}</span> '
        f'<code class="tnb-runid" title="{esc(summary.run_id)}">{esc(summary.short_id)}</code> '
        f'<span class="tnb-badge tnb-status" style="background:{color}">'
        f"{esc(summary.status)}</span></div>",
        f'<div class="tnb-muted tnb-stats">started {esc(summary.started)} · '
        f'<span class="tnb-duration">{esc(summary.duration)}</span> · '
        f"{summary.task_count} tasks</div>",
        f'<div class="tnb-counts">{esc(summary.counts_line)}</div>',
    ]
    if summary.status == "WAITING":
        parts.append(f'<div style="color:{COLORS[WAITING]}">◷ {_countdown(summary, now)}</div>')
    if summary.error:
        parts.append(f'<div class="tnb-err tnb-run-error">{esc(summary.error)}</div>')
        if summary.traceback:
            parts.append(traceback_html(summary.traceback))
    elif summary.output_preview not in (None, "None"):
        parts.append(
            f'<div class="tnb-muted">output: <code>{esc(summary.output_preview)}</code></div>'
        )
    return "".join(parts)


def _countdown(summary: RunSummary, now: datetime | None) -> str:
    return esc(format_countdown(summary.wait_until, now))


# --- one task -------------------------------------------------------------------------------


def glyph_html(status: str) -> str:
    spin = " tnb-spin" if status == "running" else ""
    return (
        f'<span class="tnb-glyph tnb-st-{status}{spin}" style="color:{COLORS[status]}" '
        f'title="{status}">{GLYPHS[status]}</span>'
    )


def icon_html(name: str, *, fontawesome: bool = False) -> str:
    """A task's icon: FontAwesome where the page has it (the interactive tree), else a glyph.
    The name is the tooltip, never the text."""
    awesome = fontawesome_name(name) if fontawesome else None
    if awesome is not None:
        return f'<i class="fa fa-{awesome} tnb-icon" title="{esc(name)}"></i>'
    return f'<span class="tnb-icon" title="{esc(name)}">{esc(icon_glyph(name))}</span>'


def meta_html(node: TaskNode, *, now: datetime | None = None, fontawesome: bool = False) -> str:
    """Everything on a task's line after its name: icon, key, duration, attempts, properties."""
    r = node.record
    bits: list[str] = []
    key = shown_key(r)
    if key is not None:
        bits.append(f'<code class="tnb-key">{esc(key)}</code>')
    if node.status == WAITING:
        bits.append(f'<span class="tnb-wait">{esc(format_countdown(r.wait_until, now))}</span>')
    elif r.duration_seconds is not None:
        bits.append(f'<span class="tnb-meta">{esc(format_duration(r.duration_seconds))}</span>')
    if len(r.attempts) > 1:
        bits.append(f'<span class="tnb-meta">{len(r.attempts)} attempts</span>')
    for prop in [*r.properties, *r.output_properties]:
        bits.append(f'<span class="tnb-meta tnb-prop">{_property(prop)}</span>')
    error = row_error_text(node)
    if error is not None:
        bits.append(f'<span class="tnb-err">{esc(error)}</span>')
    line = '<span class="tnb-sep"> · </span>'.join(bits)
    # the icon goes with the name before it, not as one more item of the line
    return f"{icon_html(r.icon, fontawesome=fontawesome)} {line}" if r.icon else line


def _property(prop: dict[str, Any]) -> str:
    label, text = esc(prop.get("label", "")), esc(prop.get("text", ""))
    url = str(prop.get("url") or "")
    if url.startswith(("http://", "https://")):
        text = f'<a href="{esc(url)}" target="_blank" rel="noopener">{text}</a>'
    return f"{label}: {text}" if label else text


def line_html(node: TaskNode, *, now: datetime | None = None) -> str:
    name = f'<span class="tnb-name">{esc(task_title(node.record))}</span>'
    return f"{glyph_html(node.status)} {name} {meta_html(node, now=now)}"


def details_html(node: TaskNode, logs: list[LogRecord]) -> str:
    """A task's description, logs, params, attempts, traceback and output preview.

    Its error's text is on its row; here only the traceback, folded, and none for a task failed
    by a subtask's error (that subtask shows it)."""
    record = node.record
    parts: list[str] = []
    if record.description:
        parts.append(f"<div>{esc(record.description)}</div>")
    if logs:
        parts.append(logs_html(logs))
    if record.params is not None:
        params = redact_value(to_plain(record.params), record.redact)
        parts.append(f"<div><b>Params</b><pre>{esc(_json(params))}</pre></div>")
    if record.attempts:
        rows = "".join(
            f'<tr class="tnb-attempt"><td>#{a.number}</td><td>execution {a.execution}</td>'
            f"<td>{esc(format_time(a.started_at))}</td>"
            f"<td>{esc(format_duration(attempt_seconds(a)))}</td>"
            f"<td>{esc(a.status.value.lower())}</td>"
            f'<td class="tnb-err">{esc(attempt_error_text(a, node))}</td></tr>'
            for a in record.attempts
        )
        parts.append(f"<div><b>Attempts</b><table>{rows}</table></div>")
    if record.error is not None and record.error.traceback and passed_up_from(node) is None:
        parts.append(traceback_html(record.error.traceback))
    if record.output_preview is not None:
        size = f", {record.output_size:,} bytes" if record.output_size is not None else ""
        parts.append(
            f'<div><b>Output</b> <span class="tnb-muted">{esc(record.output_type)}{size}'
            f'</span><pre class="tnb-preview">{esc(record.output_preview)}</pre></div>'
        )
    return "".join(parts) or '<div class="tnb-muted">no details</div>'


def traceback_html(traceback: str) -> str:
    return (
        '<details class="tnb-err tnb-traceback"><summary>traceback</summary>'
        f"<pre>{esc(traceback.rstrip())}</pre></details>"
    )


def logs_html(logs: list[LogRecord]) -> str:
    rows = "".join(
        f'<tr class="tnb-log tnb-lvl-{esc(log.level)}"><td>{esc(log.level)}</td>'
        f"<td>{esc(log.time.astimezone().strftime('%H:%M:%S.%f')[:-3])}</td>"
        f"<td>{esc(log.message)}</td><td><code>{esc(_json(log.data) if log.data else '')}"
        "</code></td></tr>"
        for log in logs
    )
    return f"<div><b>Logs</b><table>{rows}</table></div>"


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, default=str, ensure_ascii=False)


# --- the tree -------------------------------------------------------------------------------


class Budget:
    def __init__(self, rows: int) -> None:
        self.left = rows
        self.hidden = 0


def tree_html(
    nodes: list[TaskNode],
    logs: dict[str | None, list[LogRecord]] | None,
    *,
    now: datetime | None = None,
    max_rows: int = MAX_ROWS,
    line: Callable[[TaskNode], str] | None = None,
    latest: int | None = None,
) -> str:
    """Nested rows. With ``logs`` each row is a ``<details>`` holding its details; without,
    plain lines. ``latest=N`` shows only the last N siblings of each level (the live view, where
    the newest tasks are the news)."""
    budget = Budget(max_rows)
    render_line = line or (lambda node: line_html(node, now=now))
    out: list[str] = []
    _walk(nodes, logs, budget, render_line, out, latest)
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


def clock_now(run: JobRun) -> datetime:
    """The time by the clock of the client that ran ``run`` (a FakeClock in tests)."""
    client = run._client
    return client.clock.now() if client is not None else datetime.now(timezone.utc)


def run_tree(run: JobRun, record: RunRecord | None = None) -> list[TaskNode]:
    """The run's task tree, replay marks as of its latest execution (of ``record``, if given:
    the record the caller shows with it)."""
    records = [view.record for view in run.all_tasks]
    return build_tree(records, (record or run.record).latest_execution)


def render_html(run: JobRun, *, now: datetime | None = None, max_rows: int = MAX_ROWS) -> str:
    """A self-contained HTML rendering (inline CSS, no scripts, no external assets)."""
    record = run.record  # read once: the header and the rows show the same state
    logs = group_logs(run.logs)
    nodes = run_tree(run, record)
    return html_from(record, nodes, logs, now=now or clock_now(run), max_rows=max_rows)


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
    top = logs.get(None, [])
    run_logs = ""
    if top:
        run_logs = (
            '<details class="tnb-runlogs"><summary class="tnb-muted">run logs '
            f'({len(top)})</summary><div class="tnb-body">{logs_html(top)}</div></details>'
        )
    tree = tree_html(nodes, logs, now=now, max_rows=max_rows)
    return (
        f'<div class="tnb tnb-run"><style>{CSS}</style>{header_html(summary, now=now)}'
        f"{run_logs}{tree}</div>"
    )
