"""A run's static display: the ``text/html`` and ``text/plain`` every front end can show.

``JobRun._repr_mimebundle_`` returns it. In a kernel where trigger_nb registered its display
function (``_widgets.display.register``), a run shows as this page plus the hidden widget through
which its task actions reach the kernel.
"""

from __future__ import annotations

from trigger_nb._render.data import RunData
from trigger_nb._render.document import document_from
from trigger_nb._render.html import NOTEBOOK_MAX_ROWS
from trigger_nb._render.text import text_from
from trigger_nb._render.tree import group_logs


def static_mimebundle(data: RunData, *, max_rows: int = NOTEBOOK_MAX_ROWS) -> dict[str, str]:
    """``{"text/html": ..., "text/plain": ...}`` of the run ``data`` shows (one tree for both):
    the run's page (every task, drawn by its script; ``max_rows`` rows of static tree where
    scripts do not run) and a text outline of ``max_rows`` rows."""
    nodes = data.tree()
    return {
        "text/html": document_from(
            data.record, nodes, group_logs(data.logs), now=data.now, fallback_rows=max_rows
        ),
        "text/plain": text_from(data.record, nodes, now=data.now, max_rows=max_rows),
    }
