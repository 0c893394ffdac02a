"""A run as one self-contained HTML page: the header, a static tree, and the run's data with a
script that draws the full tree, its filters and the timeline (``tree_app.js``).

Why one page of HTML is the saved view: a widget needs its model, which dies with the kernel
(JupyterLab then shows "Error displaying widget: model not found"); ``text/html`` shows in every
front end, forever. Where a front end runs an output's scripts (JupyterLab and Notebook 7 for a
trusted notebook, VS Code, a browser opening ``trigger-nb export --format html``), the script
hides the static tree and draws every task from the data: status chips with counts, search,
sort, "jump to first failure" and the timeline, all without a kernel. Where scripts are
stripped (GitHub, nbviewer), the static tree (``fallback_rows`` rows) stays, and no control is
shown that could not work.

No external assets: the script and its data are inline; every text goes through escaping (the
data is JSON with every ``<`` written ``\\u003c``, so no string can close the script element).
"""

from __future__ import annotations

import functools
from datetime import datetime
from importlib import resources

from trigger_nb._core.model import LogRecord, RunRecord
from trigger_nb._render.app_css import APP_CSS, REOPEN_CSS
from trigger_nb._render.css import CSS
from trigger_nb._render.data import RunData
from trigger_nb._render.doc_data import run_doc_json
from trigger_nb._render.html import NOTEBOOK_MAX_ROWS, header_html, run_logs_html, tree_html
from trigger_nb._render.summary import summarize_run
from trigger_nb._render.task_html import line_html
from trigger_nb._render.tree import TaskNode, group_logs

DOC_CLASS = "tnb-doc"  # the page's root element: front-end rules and tests find it by this


@functools.cache
def app_script() -> str:
    """The page's script (read once per process)."""
    return resources.files("trigger_nb._render").joinpath("tree_app.js").read_text("utf-8")


def render_document(data: RunData, *, fallback_rows: int = NOTEBOOK_MAX_ROWS) -> str:
    """``document_from`` of a run read once."""
    return document_from(
        data.record, data.tree(), group_logs(data.logs), now=data.now, fallback_rows=fallback_rows
    )


def document_from(
    record: RunRecord,
    nodes: list[TaskNode],
    logs: dict[str | None, list[LogRecord]],
    *,
    now: datetime,
    fallback_rows: int = NOTEBOOK_MAX_ROWS,
    task_ids: list[str] | None = None,
) -> str:
    """The page of the module docstring, from an already built tree. ``task_ids``: a list to
    receive the ids of the page's tasks in its order (``doc_data.run_doc_json``)."""
    summary = summarize_run(record, now=now, nodes=nodes)
    static = tree_html(
        nodes, logs, line=lambda node: line_html(node, now=now), max_rows=fallback_rows
    )
    payload = run_doc_json(record, nodes, logs, now=now, task_ids=task_ids)
    payload = payload.replace("<", "\\u003c")  # in JSON strings only: no tag can start
    return (
        f'<div class="tnb tnb-run {DOC_CLASS}"><style>{CSS}{APP_CSS}{REOPEN_CSS}</style>'
        f"{header_html(summary, now=now, failure_link=True)}"
        f'{run_logs_html(logs.get(None, []))}<div class="tnb-static-tree">{static}</div>'
        f'<script type="application/json" class="tnb-data">{payload}</script>'
        f"<script>{app_script()}</script></div>"
    )
