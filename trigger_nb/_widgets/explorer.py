"""The runs explorer (``%trigger_runs``): past runs filtered by job and status, searched (job,
run id, payload, error) and sorted (newest, oldest, longest active, status, job); pick one to
see its task tree, click a task for its logs, attempts and output.

Columns: job, run id, status, started at, active duration (the time it worked, not the span of
its waits), tasks, replayed, and summaries of its payload and its error.

Listing reads run records only; a run's task records are read when it is picked, and a task's
output is unpickled only when its "show output" button is clicked.
"""

from __future__ import annotations

import json
from typing import Any

from trigger_nb._client.client import TriggerClient, default_client
from trigger_nb._client.run import JobRun
from trigger_nb._core.model import RunRecord, RunStatus
from trigger_nb._render.css import CSS, WIDGET_CSS
from trigger_nb._render.format import format_duration, format_time, short_run_id
from trigger_nb._render.task_html import esc
from trigger_nb._render.tree import COLORS, replayed_count
from trigger_nb._store.store import Store, open_store
from trigger_nb._widgets.output import mimebundle
from trigger_nb._widgets.run_view import RunView
from trigger_nb.errors import InvalidOptionError

ALL = ""
COLUMNS = ("job", "run id", "status", "started", "active", "tasks", "replayed", "payload", "error")
# how the list can be sorted: label -> (key of a record, newest first within equal keys)
SORTS = ("newest", "oldest", "longest active", "status", "job")
# failures first, then what still runs or waits, then the rest
_STATUS_ORDER = {"FAILURE": 0, "RUNNING": 1, "WAITING": 2, "CANCELED": 3, "SUCCESS": 4}
EXPLORER_CSS = """
.tnb .tnb-runs-list select,.tnb .tnb-columns pre{font-family:var(--jp-code-font-family,
'DejaVu Sans Mono',monospace);font-size:12px}
.tnb .tnb-runs-list{width:100%}.tnb .tnb-runs-list select{width:100%}
.tnb .tnb-columns pre{margin:4px 0 0 6px;font-weight:600}
"""


def runs_explorer(
    client_or_store: Any = None, job: str | None = None, *, status: str | None = None
) -> RunsExplorer:
    """An explorer of past runs: filter by job and status, pick a run, inspect its tasks.

    ``client_or_store``: a ``TriggerClient``, a ``Store``, a store directory, or ``None`` for the
    notebook's default client. ``job``/``status`` preselect the filters.
    """
    client = _client_of(client_or_store)
    store = client.store if client is not None else open_store(client_or_store)
    return RunsExplorer(store, job=job, status=status, client=client)


def _client_of(client_or_store: Any) -> TriggerClient | None:
    """The client whose jobs the explorer's runs can execute with ("Re-run from here"): the
    one given, or the notebook's default one; None for a bare store."""
    if client_or_store is None:
        return default_client()
    return client_or_store if isinstance(client_or_store, TriggerClient) else None


def run_row(record: RunRecord) -> tuple[str, ...]:
    """The explorer's columns for one run."""
    return (
        record.job_id,
        short_run_id(record.id),
        record.status.value,
        format_time(record.created_at),
        format_duration(record.active_seconds),
        str(record.task_count),
        str(replayed_count(record)),
        payload_summary(record),
        record.error.summary() if record.error is not None else "",
    )


def payload_summary(record: RunRecord) -> str:
    """The run's payload as one line of compact JSON ("" when it has none)."""
    payload = record.event.payload
    if payload is None:
        return ""
    text = payload if isinstance(payload, str) else json.dumps(payload, default=str)
    return " ".join(text.split())


def sort_runs(records: list[RunRecord], how: str) -> list[RunRecord]:
    """``records`` (newest first, as listed) in the order ``how`` (one of ``SORTS``) says."""
    if how == "oldest":
        return records[::-1]
    if how == "longest active":
        return sorted(records, key=lambda r: -r.active_seconds)
    if how == "status":
        return sorted(records, key=lambda r: _STATUS_ORDER.get(r.status.value, 9))
    if how == "job":
        return sorted(records, key=lambda r: r.job_id)
    return records


def matches(record: RunRecord, query: str) -> bool:
    """``query`` (any case) in the run's job, run id, payload or error."""
    if not query:
        return True
    query = query.lower()
    error = record.error.summary() if record.error is not None else ""
    texts = (record.job_id, record.id, payload_summary(record), error)
    return any(query in text.lower() for text in texts)


_WIDTHS = (24, 14, 10, 21, 10, 7, 10, 28, 40)
_RIGHT = (False, False, False, False, True, True, True, False, False)


def _line(cells: tuple[str, ...]) -> str:
    out = []
    for cell, width, right in zip(cells, _WIDTHS, _RIGHT, strict=True):
        text = cell if len(cell) < width else cell[: width - 2] + "…"
        out.append(text.rjust(width - 1) + " " if right else text.ljust(width))
    return "".join(out).rstrip()


class RunsExplorer:
    """Display it. ``.widget`` is the ipywidgets tree; ``.select(run_id)`` picks a run."""

    def __init__(
        self,
        store: Store,
        *,
        job: str | None = None,
        status: str | None = None,
        client: TriggerClient | None = None,
    ):
        import ipywidgets

        self.store, self.client = store, client
        self.records = store.list_runs()
        self.run_view: RunView | None = None
        jobs = sorted({r.job_id for r in self.records} | ({job} if job else set()))
        self.job_filter = ipywidgets.Dropdown(
            options=[("all jobs", ALL), *((j, j) for j in jobs)],
            value=job or ALL,
            description="job",
        )
        self.job_filter.add_class("tnb-job-filter")
        statuses = [s.value for s in RunStatus]
        if status is not None and status not in statuses:
            raise InvalidOptionError(
                f"runs explorer status={status!r} is not a run status: use one of "
                f"{', '.join(statuses)}"
            )
        self.status_filter = ipywidgets.Dropdown(
            options=[("any status", ALL), *((s, s) for s in statuses)],
            value=status or ALL,
            description="status",
        )
        self.status_filter.add_class("tnb-status-filter")
        self.sort = ipywidgets.Dropdown(options=list(SORTS), value=SORTS[0], description="sort")
        self.sort.add_class("tnb-sort-runs")
        self.search = ipywidgets.Text(
            placeholder="job, run id, payload or error", description="search"
        )
        self.search.add_class("tnb-search-runs")
        self.refresh_button = ipywidgets.Button(description="refresh", icon="refresh")
        self.refresh_button.add_class("tnb-refresh")
        self.columns = ipywidgets.HTML(
            f"<style>{CSS}{WIDGET_CSS}{EXPLORER_CSS}</style><pre>{esc(_line(COLUMNS))}</pre>"
        )
        self.columns.add_class("tnb-columns")
        self.runs = ipywidgets.Select(options=[], rows=8)
        self.runs.add_class("tnb-runs-list")
        self.detail = ipywidgets.VBox()
        self.detail.add_class("tnb-explorer-detail")
        filters = ipywidgets.HBox([self.job_filter, self.status_filter, self.refresh_button])
        ordering = ipywidgets.HBox([self.search, self.sort])
        self.widget = ipywidgets.VBox([filters, ordering, self.columns, self.runs, self.detail])
        self.widget.add_class("tnb")
        self.widget.add_class("tnb-explorer")
        self.job_filter.observe(self._filter, names="value")
        self.status_filter.observe(self._filter, names="value")
        self.sort.observe(self._filter, names="value")
        self.search.observe(self._filter, names="value")
        self.refresh_button.on_click(self.refresh)
        self.runs.observe(self._pick, names="value")
        self._filter()

    def shown(self) -> list[RunRecord]:
        """The runs passing the filters and the search, in the order picked (newest first)."""
        job, status = self.job_filter.value, self.status_filter.value
        query = self.search.value.strip()
        passing = [
            r
            for r in self.records
            if (job == ALL or r.job_id == job)
            and (status == ALL or r.status.value == status)
            and matches(r, query)
        ]
        return sort_runs(passing, self.sort.value)

    def refresh(self, _button: object = None) -> None:
        """Read the run list again (new runs appear; the picked run stays picked)."""
        self.records = self.store.list_runs()
        self._filter()

    def _filter(self, _change: object = None) -> None:
        picked = self.runs.value
        shown = self.shown()
        self.runs.options = [(_line(run_row(r)), r.id) for r in shown]
        self.runs.rows = max(2, min(10, len(shown)))
        if picked in {r.id for r in shown}:
            self.runs.value = picked
        elif not shown:
            self.detail.children = ()

    def select(self, run_id: str) -> RunView:
        """Pick a run (as clicking it in the list does) and return its view."""
        self.runs.value = run_id
        assert self.run_view is not None
        return self.run_view

    def _pick(self, change: dict[str, Any]) -> None:
        run_id = change.get("new")
        record = self.store.load_run(run_id) if run_id else None
        if record is None:
            self.detail.children = ()
            self.run_view = None
            return
        self.run_view = RunView(JobRun(self.store, record, client=self.client))
        self.detail.children = (self.run_view.widget,)
        listed = next((i for i, r in enumerate(self.records) if r.id == record.id), None)
        if listed is not None and run_row(self.records[listed]) != run_row(record):
            self.records[listed] = record  # picked after it changed: the list says so too
            self._filter()

    # kernel-free renderings: the run table
    def to_html(self) -> str:
        head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
        rows = []
        for record in self.shown():
            cells = list(map(esc, run_row(record)))
            cells[2] = f'<span style="color:{COLORS.get(cells[2], "#6e7781")}">{cells[2]}</span>'
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        body = "".join(rows) or f'<tr><td colspan="{len(COLUMNS)}">no runs</td></tr>'
        return (
            f'<div class="tnb tnb-explorer"><style>{CSS}</style><table><thead><tr>{head}</tr>'
            f"</thead><tbody>{body}</tbody></table></div>"
        )

    def to_text(self) -> str:
        lines = [_line(COLUMNS)] + [_line(run_row(r)) for r in self.shown()]
        return "\n".join(lines if len(lines) > 1 else [*lines, "no runs"])

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return mimebundle(self.widget, self.to_html(), self.to_text())
