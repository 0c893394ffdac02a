"""How every view words a partial re-run (SPEC 3.7): a task marked to run again on the next
execution ("refresh pending"), and an attempt whose output a later run superseded.

The tree, the static HTML, the text outline and ``trigger-nb show`` word them with these, so
they agree; nothing is hidden: a superseded attempt keeps its row, its output kept in the
task's history (``TaskView.history``).
"""

from __future__ import annotations

import html

from trigger_nb._core.model import AttemptRecord, TaskRecord

REFRESH_PENDING = "refresh pending"
PENDING_MEANING = "marked to run again on the run's next execution"
SUPERSEDED = "superseded"
_PREVIEW_CHARS = 40


def attempt_status_text(attempt: AttemptRecord, *, upper: bool = False) -> str:
    """An attempt's status in an attempts table: ``completed``, or for one whose output a
    later run replaced ``completed · superseded (was 42)`` (``upper``: ``COMPLETED``, as the
    command line writes statuses)."""
    status = attempt.status.value if upper else attempt.status.value.lower()
    if not attempt.superseded:
        return status
    preview = " ".join((attempt.output_preview or "").split())
    if len(preview) > _PREVIEW_CHARS:
        preview = preview[: _PREVIEW_CHARS - 1] + "…"
    was = f" (was {preview})" if preview else ""
    return f"{status} · {SUPERSEDED}{was}"


def pending_badge_html(record: TaskRecord) -> str:
    """The badge on a task's line while it is marked to run again ("" when it is not)."""
    if not record.refresh_pending:
        return ""
    return (
        f'<span class="tnb-badge tnb-refresh-pending" style="background:#57606a" '
        f'title="{html.escape(PENDING_MEANING)}">&#8635; {REFRESH_PENDING}</span>'
    )
