"""A run's static display: the ``text/html`` and ``text/plain`` every front end can show.

``JobRun._repr_mimebundle_`` returns it. In a kernel where trigger_nb registered its display
formatter (``_widgets.display.register``), a run shows as the interactive tree instead, which
carries the same renderings for viewers without a kernel.
"""

from __future__ import annotations

from trigger_nb._render.data import RunData
from trigger_nb._render.html import MAX_ROWS, html_from
from trigger_nb._render.text import text_from
from trigger_nb._render.tree import group_logs


def static_mimebundle(data: RunData, *, max_rows: int = MAX_ROWS) -> dict[str, str]:
    """``{"text/html": ..., "text/plain": ...}`` of the run ``data`` shows (one tree for both)."""
    nodes = data.tree()
    return {
        "text/html": html_from(
            data.record, nodes, group_logs(data.logs), now=data.now, max_rows=max_rows
        ),
        "text/plain": text_from(data.record, nodes, now=data.now, max_rows=max_rows),
    }
