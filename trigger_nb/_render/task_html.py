"""A task in HTML: its line (status glyph, name, key, duration, attempts, properties, error)
and its details (description, logs, params, attempts, traceback, output preview). The static
page, the live view and the interactive rows draw tasks with these.

Every piece of user text goes through ``esc`` (``html.escape``): a task named ``<script>`` is
shown, never run.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

from trigger_nb._core.model import LogRecord
from trigger_nb._core.preview import redact_value, to_plain
from trigger_nb._render.captured import captured_html
from trigger_nb._render.format import (
    attempt_seconds,
    format_countdown,
    format_duration,
    format_time,
    format_time_of_day,
)
from trigger_nb._render.icons import fontawesome_name, icon_glyph
from trigger_nb._render.keys import shown_key, task_title
from trigger_nb._render.refresh import attempt_status_text, pending_badge_html
from trigger_nb._render.stale import (
    REFRESH_CALL,
    REFRESH_CELL,
    stale_hint,
    stale_meaning,
    stale_text,
)
from trigger_nb._render.tree import (
    COLORS,
    FA_ICONS,
    GLYPHS,
    STALE,
    WAITING,
    TaskNode,
    attempt_error_text,
    passed_up_from,
    row_error_text,
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


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


def stale_badge_html(reasons: tuple[str, ...], *, fontawesome: bool = False) -> str:
    """The amber "stale" badge of a task replayed although its code or inputs changed; its
    reasons are the tooltip (and in the task's details)."""
    mark = f'<i class="fa fa-{FA_ICONS[STALE]}"></i>' if fontawesome else esc(GLYPHS[STALE])
    return (
        f'<span class="tnb-badge tnb-stale" style="background:{COLORS[STALE]}" '
        f'title="{esc(stale_text(reasons))}">{mark} stale</span>'
    )


def meta_html(node: TaskNode, *, now: datetime, fontawesome: bool = False) -> str:
    """Everything on a task's line after its name: icon, stale badge, key, duration, attempts,
    properties."""
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
    # the icon and the badge go with the name before them, not as more items of the line
    head = [icon_html(r.icon, fontawesome=fontawesome)] if r.icon else []
    if node.stale:
        head.append(stale_badge_html(node.stale, fontawesome=fontawesome))
    if r.refresh_pending:
        head.append(pending_badge_html(r))
    return " ".join([*head, line]) if head else line


def _property(prop: dict[str, Any]) -> str:
    label, text = esc(prop.get("label", "")), esc(prop.get("text", ""))
    url = str(prop.get("url") or "")
    if url.startswith(("http://", "https://")):
        text = f'<a href="{esc(url)}" target="_blank" rel="noopener">{text}</a>'
    return f"{label}: {text}" if label else text


def line_html(node: TaskNode, *, now: datetime) -> str:
    name = f'<span class="tnb-name">{esc(task_title(node.record))}</span>'
    return f"{glyph_html(node.status)} {name} {meta_html(node, now=now)}"


def details_html(node: TaskNode, logs: list[LogRecord], *, captured: bool = True) -> str:
    """A task's description, logs, params, attempts, traceback, what it printed and displayed
    (``captured``: here, not in widgets of their own) and output preview.

    Its error's text is on its row; here only the traceback, folded, and none for a task failed
    by a subtask's error (that subtask shows it)."""
    record = node.record
    parts: list[str] = []
    if node.stale:
        parts.append(stale_note_html(node.stale))
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
            f"<td>{esc(attempt_status_text(a))}</td>"
            f'<td class="tnb-err">{esc(attempt_error_text(a, node))}</td></tr>'
            for a in record.attempts
        )
        parts.append(f"<div><b>Attempts</b><table>{rows}</table></div>")
    if record.error is not None and record.error.traceback and passed_up_from(node) is None:
        parts.append(traceback_html(record.error.traceback))
    if captured and node.captured:
        parts.append(captured_html(node.captured, record))
    if record.output_preview is not None:
        size = f", {record.output_size:,} bytes" if record.output_size is not None else ""
        parts.append(
            f'<div><b>Output</b> <span class="tnb-muted">{esc(record.output_type)}{size}'
            f'</span><pre class="tnb-preview">{esc(record.output_preview)}</pre></div>'
        )
    return "".join(parts) or '<div class="tnb-muted">no details</div>'


def stale_note_html(reasons: tuple[str, ...]) -> str:
    """Why a task is stale, what that means and how to run it again: first in its details."""
    return (
        f'<div class="tnb-stale-note"><b style="color:{COLORS[STALE]}">{esc(GLYPHS[STALE])} '
        f'{esc(stale_text(reasons))}</b><div class="tnb-muted">{esc(stale_meaning())}; '
        f"{hint_html(stale_hint())}</div></div>"
    )


def hint_html(text: str) -> str:
    """``text`` escaped, with the calls that run a stale task again set in code."""
    text = esc(text)
    for code in (esc(REFRESH_CALL), esc(REFRESH_CELL)):
        text = text.replace(code, f"<code>{code}</code>")
    return text


def traceback_html(traceback: str) -> str:
    return (
        '<details class="tnb-err tnb-traceback"><summary>traceback</summary>'
        f"<pre>{esc(traceback.rstrip())}</pre></details>"
    )


def logs_html(logs: list[LogRecord]) -> str:
    rows = "".join(
        f'<tr class="tnb-log tnb-lvl-{esc(log.level)}"><td>{esc(log.level)}</td>'
        f"<td>{esc(format_time_of_day(log.time))}</td>"
        f"<td>{esc(log.message)}</td><td><code>{esc(_json(log.data) if log.data else '')}"
        "</code></td></tr>"
        for log in logs
    )
    return f"<div><b>Logs</b><table>{rows}</table></div>"


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, default=str, ensure_ascii=False)
