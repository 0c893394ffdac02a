"""The simple table ``%trigger_runs`` shows when the widget explorer is unavailable."""

from __future__ import annotations

import html

from trigger_nb.run import JobRun


class RunTable:
    """What ``%trigger_runs`` shows: one row per run, as HTML and as text."""

    COLUMNS = ("run", "job", "status", "executions", "tasks", "started", "output")

    def __init__(self, runs: list[JobRun], job_id: str | None) -> None:
        self.runs = runs
        self.job_id = job_id

    def rows(self) -> list[tuple[str, ...]]:
        return [
            (
                r.id,
                r.job_id,
                r.status.value,
                str(r.executions),
                str(r.record.task_count),
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.record.output_preview or (r.error.summary() if r.error else ""),
            )
            for r in self.runs
        ]

    def __repr__(self) -> str:
        if not self.runs:
            return f"no runs{f' of job {self.job_id!r}' if self.job_id else ''}"
        rows = [self.COLUMNS, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.COLUMNS))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
        )

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self.rows()
        )
        return f'<table class="trigger-nb-runs"><tr>{head}</tr>{body}</table>'
