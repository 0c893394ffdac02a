"""Runs, tasks and logs as the ``trigger-nb`` command line prints them: aligned text and JSON.

Runs and records in, strings and JSON-able dicts out: nothing here prints, finds a run or decides
an exit code. Only ``cli_commands`` imports this module, and nothing here imports back.
"""

from __future__ import annotations

import decimal
import html
import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any

from trigger_nb._client.run import JobRun, TaskView
from trigger_nb._core.model import LogRecord, RunRecord, RunStatus, TaskStatus
from trigger_nb._core.preview import to_plain
from trigger_nb._render.icons import icon_glyph
from trigger_nb._render.keys import task_key_text, task_label, task_title
from trigger_nb._render.tree import (
    TaskNode,
    attempt_error_text,
    attempt_seconds,
    build_tree,
    failure_origin,
    format_duration,
    passed_up_from,
    replayed_count,
    row_error_text,
    run_duration_text,
)

NOTE_CHARS = 60
RUNS_HEADER = ("JOB", "RUN", "STATUS", "STARTED", "DURATION", "EXECS", "TASKS", "REPLAYED")
TASKS_HEADER = ("TASK", "STATUS", "DURATION", "ATTEMPTS", "")


# --- runs and tasks as text ---------------------------------------------------------------------


def runs_table(records: list[RunRecord], short: dict[str, str]) -> str:
    """One aligned row per run; ``short`` maps each id to the prefix shown."""
    rows = [
        (
            r.job_id,
            short[r.id],
            r.status.value,
            local_time(r.created_at),
            human_duration(r.duration_seconds),
            str(r.executions),
            str(r.task_count),
            str(replayed_count(r)),
        )
        for r in records
    ]
    return _table(RUNS_HEADER, rows, right=(5, 6, 7))


def run_tree(run: JobRun, r: RunRecord) -> list[TaskNode]:
    """The task tree with every view's statuses (replayed as of the latest execution)."""
    return build_tree([view.record for view in run.all_tasks], r.latest_execution)


def run_outline(run: JobRun, now: datetime) -> str:
    """The run's fields, then its task tree as an indented table."""
    r = run.record
    nodes = run_tree(run, r)
    status = r.status.value
    if r.status is RunStatus.WAITING and r.wait_until is not None:
        left = (r.wait_until - now).total_seconds()
        status += f" until {local_time(r.wait_until)}"
        status += f" (in {human_duration(left)})" if left > 0 else ""
    executions = str(r.executions)
    if r.execution_history:
        last = r.execution_history[-1]
        saved = last.time_saved_seconds
        executions += (
            f" (last: {last.executed} executed, {last.replayed} replayed, {last.failed} failed"
            f"{f', saved {human_duration(saved)}' if saved else ''})"
        )
    fields = [
        ("job", f"{r.job_id} ({r.job_name} v{r.job_version})"),
        ("status", status),
        ("started", local_time(r.created_at)),
        ("duration", run_duration_text(r, now)),
        ("executions", executions),
        ("payload", _clip(json.dumps(r.event.payload, default=str), 2 * NOTE_CHARS)),
    ]
    if r.output_type is not None:
        fields.append(("output", f"{r.output_type}: {r.output_preview}"))
    if r.error is not None:
        origin = failure_origin(nodes, r.error)  # its row shows the error: named here, once
        error = f"in task {task_label(origin.record)}" if origin else r.error.summary()
        fields.append(("error", error))
    rows: list[tuple[str, ...]] = []

    def walk(nodes: list[TaskNode], depth: int) -> None:
        for node in nodes:
            t = node.record
            rows.append(
                (
                    "  " * depth + task_label(t, icon=True),
                    node.status.upper(),
                    human_duration(t.duration_seconds),
                    str(len(t.attempts)),
                    _clip(_note(node), NOTE_CHARS),
                )
            )
            walk(node.children, depth + 1)

    walk(nodes, 0)
    tree = _table(TASKS_HEADER, rows, right=(3,)) if rows else "No tasks."
    return "\n".join([f"Run {r.id}", *_fields(fields), "", tree])


def _note(node: TaskNode) -> str:
    t = node.record
    error = row_error_text(node)
    if error is not None:
        return error
    if t.wait_until is not None and t.status is TaskStatus.WAITING:
        return f"until {local_time(t.wait_until)}"
    if t.output_preview is not None and t.kind != "wait":
        return f"= {t.output_preview}"
    return ""


def task_details(run: JobRun, view: TaskView) -> str:
    """One task: its fields, attempts, logs and the traceback of its last error."""
    nodes = _by_id(run_tree(run, run.record))
    node = nodes[view.record.id]
    t = node.record
    parent = nodes.get(t.parent_id or "")
    kids = [k.record for k in node.children]
    fields = [
        ("key", task_key_text(t)),
        ("id", t.id),
        ("idempotency", t.idempotency_key),
        ("kind", t.kind),
        ("parent", task_label(parent.record) if parent else "-"),
        ("children", ", ".join(task_label(k) for k in kids) or "-"),
        ("started", local_time(t.started_at or t.created_at)),
        ("completed", local_time(t.completed_at)),
        ("duration", human_duration(t.duration_seconds)),
        (
            "executions",
            f"first ran in {t.first_execution}, completed in {t.completed_execution or '-'}",
        ),
    ]
    if t.icon:
        fields.append(("icon", f"{icon_glyph(t.icon)} {t.icon}"))
    if t.description:
        fields.append(("description", t.description))
    if t.params is not None:
        fields.append(("params", json.dumps(t.params, default=str)))
    for prop in [*t.properties, *t.output_properties]:
        fields.append((str(prop.get("label")), f"{prop.get('text')} {prop.get('url') or ''}"))
    if t.output_type is not None:
        size = f", {t.output_size} bytes" if t.output_size is not None else ""
        fields.append(("output", f"{t.output_type}{size}: {t.output_preview}"))
    if t.wait_until is not None:
        fields.append(("resumes", local_time(t.wait_until)))
    error = row_error_text(node)
    if error is not None:
        fields.append(("error", error))
    title = f"Task {task_title(t)} [{node.status.upper()}] in run {run.id}"
    lines = [title, *_fields(fields), ""]
    lines.append(f"Attempts ({len(t.attempts)})")
    for a in t.attempts:
        lines.append(
            f"  #{a.number}  execution {a.execution}  {local_time(a.started_at)}  "
            f"{human_duration(attempt_seconds(a))}  {a.status.value}  {attempt_error_text(a, node)}"
        )
    lines += ["", f"Logs ({len(view.logs)})"]
    if view.logs:
        lines.append(_indent(log_lines(view.logs, {t.id: task_label(t)})))
    # A task failed by a subtask's error has none of its own: that subtask shows it.
    if t.error is not None and t.error.traceback and passed_up_from(node) is None:
        lines += ["", "Traceback of the last error", _indent(t.error.traceback.rstrip())]
    return "\n".join(line.rstrip() for line in lines)


def log_lines(logs: list[LogRecord], names: dict[str, str]) -> str:
    """One aligned line per log; ``names`` maps task ids to the names shown."""
    rows = [
        (
            local_time(log.time),
            f"#{log.execution}",
            log.level.upper(),
            names.get(log.task_id, log.task_id) if log.task_id else "(run)",
            log.message
            + "".join(f"  {k}={json.dumps(v, default=str)}" for k, v in log.data.items()),
        )
        for log in logs
    ]
    return _table(None, rows) if rows else ""


# --- JSON ---------------------------------------------------------------------------------------


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def run_summary_json(r: RunRecord) -> dict[str, Any]:
    """One row of ``runs --json``: the table's columns with full ids and ISO times."""
    return {
        "id": r.id,
        "job_id": r.job_id,
        "job_name": r.job_name,
        "job_version": r.job_version,
        "status": r.status.value,
        "started_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "completed_at": r.completed_at.isoformat() if r.completed_at else None,
        "wait_until": r.wait_until.isoformat() if r.wait_until else None,
        "duration_seconds": r.duration_seconds,
        "active_seconds": r.active_seconds,
        "wall_seconds": r.wall_seconds,
        "executions": r.executions,
        "tasks": r.task_count,
        "replayed": replayed_count(r),
        "output_preview": r.output_preview,
        "error": r.error.summary() if r.error else None,
    }


def run_json(run: JobRun) -> dict[str, Any]:
    """The whole run: its record, task tree and logs (what ``export`` writes).

    ``duration_seconds`` is the active time (``active_seconds``), ``wall_seconds`` the span; a
    task's ``replayed`` is the mark every view shows, as of the latest execution."""
    r = run.record
    data: dict[str, Any] = r.model_dump(mode="json")
    data.update(
        executions=r.executions,
        duration_seconds=r.duration_seconds,
        active_seconds=r.active_seconds,
        wall_seconds=r.wall_seconds,
        replayed=replayed_count(r),
    )
    nodes = _by_id(run_tree(run, r))
    data["tasks"] = [task_json(view, nodes) for view in run.tasks]
    data["logs"] = logs_json(run.logs)
    return data


def task_json(view: TaskView, nodes: dict[str, TaskNode], *, logs: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = view.record.model_dump(mode="json")
    data["key_text"] = task_key_text(view.record)
    data["replayed"] = nodes[view.record.id].status == "replayed"
    if logs:
        data["logs"] = logs_json(view.logs)
    data["children"] = [task_json(child, nodes, logs=logs) for child in view.children]
    return data


def task_json_of(run: JobRun, view: TaskView) -> dict[str, Any]:
    """One task (``show --task --json``): its record, logs and subtasks."""
    return task_json(view, _by_id(run_tree(run, run.record)), logs=True)


def logs_json(logs: list[LogRecord]) -> list[dict[str, Any]]:
    return [log.model_dump(mode="json") for log in logs]


def output_text(value: object, *, as_json: bool) -> str:
    """An output as indented JSON, else its repr (as a JSON string when ``as_json``)."""
    try:
        return json.dumps(to_plain(value), indent=2, ensure_ascii=False, default=_scalar)
    except (TypeError, ValueError):  # sets, DataFrames, bytes...: their repr says more
        return json.dumps(repr(value)) if as_json else repr(value)


def _scalar(value: object) -> str:
    """JSON for the scalars JSON lacks (times, UUIDs, decimals, paths); others are not JSON.

    Not ``codec.to_jsonable``: it turns a set into a list, where the repr tells the reader more.
    """
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def html_page(run: JobRun, body: str) -> str:
    """A standalone page around the static run view ``body``."""
    title = html.escape(f"{run.record.job_name} · {run.id} · {run.status.value}")
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
        f"<body>\n{body}\n</body></html>"
    )


# --- small formatting helpers -------------------------------------------------------------------


def _by_id(nodes: list[TaskNode]) -> dict[str, TaskNode]:
    found: dict[str, TaskNode] = {}
    stack = list(nodes)
    while stack:
        node = stack.pop()
        found[node.record.id] = node
        stack.extend(node.children)
    return found


def local_time(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def human_duration(seconds: float | None) -> str:
    return format_duration(seconds, missing="-")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _clip(text: str, size: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 3] + "..."


def _fields(pairs: list[tuple[str, str]]) -> list[str]:
    width = max(len(name) for name, _ in pairs)
    return [f"  {name.ljust(width)}  {value}".rstrip() for name, value in pairs]


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _table(
    header: Sequence[str] | None, rows: Sequence[Sequence[str]], right: tuple[int, ...] = ()
) -> str:
    lines = [header, *rows] if header else list(rows)
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = []
    for line in lines:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        text.append("  ".join(cells).rstrip())
    return "\n".join(text)
