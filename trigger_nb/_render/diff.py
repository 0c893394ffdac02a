"""Two runs compared (``client.compare``, ``trigger-nb diff``) as a text table and as HTML.

One row per differing task: what happened to it (added, removed, changed) and, for a changed
one, each difference in a sentence ("output: 3 → 4", "duration: 12 ms → 1.50 s").
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import NamedTuple

from trigger_nb._render.css import CSS
from trigger_nb._render.tree import COLORS, COMPLETED, FAILED, REPLAYED

_MARKS = {"added": "+", "removed": "-", "changed": "~"}
_COLORS = {"added": COLORS[COMPLETED], "removed": COLORS[FAILED], "changed": COLORS[REPLAYED]}
_CELL = 'style="padding:1px 12px 1px 0;text-align:left;vertical-align:top"'


class DiffRow(NamedTuple):
    kind: str  # "added", "removed" or "changed"
    task: str
    details: Sequence[str]


def diff_summary(rows: Sequence[DiffRow], unchanged: int) -> str:
    counts = {kind: sum(1 for row in rows if row.kind == kind) for kind in _MARKS}
    return (
        f"{counts['added']} added · {counts['removed']} removed · {counts['changed']} changed · "
        f"{unchanged} unchanged"
    )


def diff_text(run_a: str, run_b: str, rows: Sequence[DiffRow], unchanged: int) -> str:
    """``run A → run B`` then one aligned line per differing task and difference."""
    lines = [f"Tasks of run {run_a} → run {run_b}: {diff_summary(rows, unchanged)}"]
    if not rows:
        lines.append("No task was added, removed or changed.")
        return "\n".join(lines)
    width = min(max(len(row.task) for row in rows), 48)
    for row in rows:
        details = list(row.details) or [row.kind]
        first = f"{_MARKS[row.kind]} {row.task.ljust(width)}  "
        lines.append(first + details[0])
        lines += [" " * len(first) + detail for detail in details[1:]]
    return "\n".join(line.rstrip() for line in lines)


def diff_html(run_a: str, run_b: str, rows: Sequence[DiffRow], unchanged: int) -> str:
    """The same as a self-contained HTML table (no scripts)."""
    esc = html.escape
    body = "".join(
        f'<tr class="tnb-diff-{row.kind}"><td {_CELL}><b style="color:{_COLORS[row.kind]}">'
        f"{esc(row.kind)}</b></td><td {_CELL}>{esc(row.task)}</td>"
        f"<td {_CELL}>{'<br>'.join(esc(detail) for detail in row.details)}</td></tr>"
        for row in rows
    )
    table = (
        f'<table class="tnb-diff" style="border-collapse:collapse"><tr><th {_CELL}>change</th>'
        f"<th {_CELL}>task</th><th {_CELL}>what</th></tr>{body}</table>"
        if rows
        else '<div class="tnb-muted">No task was added, removed or changed.</div>'
    )
    return (
        f'<div class="tnb tnb-diff-view"><style>{CSS}</style><div class="tnb-head">Tasks of run '
        f"<code>{esc(run_a)}</code> → run <code>{esc(run_b)}</code>: "
        f'<span class="tnb-muted">{esc(diff_summary(rows, unchanged))}</span></div>{table}</div>'
    )
