"""Runs, tasks and logs as the ``trigger-nb`` command line prints them: aligned text.

Records in (``RunData``: one look at a run), strings out: nothing here prints, finds a run or
decides an exit code. The tree, the statuses and every time, duration and key are ``_render``'s,
as in the notebook views; only what a missing value looks like is the terminal's own (``NONE``).
Its JSON is in ``export``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from trigger_nb._core.model import LogRecord, RunRecord, RunStatus, TaskStatus
from trigger_nb._render.data import RunData
from trigger_nb._render.format import (
    attempt_seconds,
    format_duration,
    format_time,
    run_duration_text,
)
from trigger_nb._render.icons import icon_glyph
from trigger_nb._render.keys import task_key_text, task_label, task_title
from trigger_nb._render.refresh import PENDING_MEANING, REFRESH_PENDING, attempt_status_text
from trigger_nb._render.stale import stale_hint, stale_meaning
from trigger_nb._render.tree import (
    STALE,
    TaskNode,
    attempt_error_text,
    failure_origin,
    nodes_by_id,
    passed_up_from,
    replayed_count,
    row_error_text,
)

NONE = "-"  # a time, duration or task not there, in the terminal's ASCII tables
NOTE_CHARS = 60
RUNS_HEADER = ("JOB", "RUN", "STATUS", "STARTED", "DURATION", "EXECS", "TASKS", "REPLAYED")
TASKS_HEADER = ("TASK", "STATUS", "DURATION", "ATTEMPTS", "")
STALE_HEADER = ("TASK", "WHY IT IS STALE")


def runs_table(records: list[RunRecord], short: dict[str, str]) -> str:
    """One aligned row per run; ``short`` maps each id to the prefix shown."""
    rows = [
        (
            r.job_id,
            short[r.id],
            r.status.value,
            format_time(r.created_at, NONE),
            format_duration(r.duration_seconds, NONE),
            str(r.executions),
            str(r.task_count),
            str(replayed_count(r)),
        )
        for r in records
    ]
    return _table(RUNS_HEADER, rows, right=(5, 6, 7))


def run_outline(data: RunData) -> str:
    """The run's fields, then its task tree as an indented table."""
    r, now = data.record, data.now
    nodes = data.tree()
    status = r.status.value
    if r.status is RunStatus.WAITING and r.wait_until is not None:
        left = (r.wait_until - now).total_seconds()
        status += f" until {format_time(r.wait_until, NONE)}"
        status += f" (in {format_duration(left, NONE)})" if left > 0 else ""
    executions = str(r.executions)
    if r.execution_history:
        last = r.execution_history[-1]
        saved = last.time_saved_seconds
        executions += (
            f" (last: {last.executed} executed, {last.replayed} replayed, {last.failed} failed"
            f"{f', {len(last.stale)} stale' if last.stale else ''}"
            f"{f', saved {format_duration(saved, NONE)}' if saved else ''})"
        )
    fields = [
        ("job", f"{r.job_id} ({r.job_name} v{r.job_version})"),
        ("status", status),
        ("started", format_time(r.created_at, NONE)),
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
                    _status(node),
                    format_duration(t.duration_seconds, NONE),
                    str(len(t.attempts)),
                    _clip(_note(node), NOTE_CHARS),
                )
            )
            walk(node.children, depth + 1)

    walk(nodes, 0)
    tree = _table(TASKS_HEADER, rows, right=(3,)) if rows else "No tasks."
    lines = [f"Run {r.id}", *_fields(fields), "", tree]
    stale = len(r.execution_history[-1].stale) if r.execution_history else 0
    if stale:
        lines += [
            "",
            f"{plural(stale, 'stale task')}: {stale_meaning(stale)}; why, and how to run "
            f"{'it' if stale == 1 else 'them'} again: `trigger-nb show {r.id} --stale`",
        ]
    return "\n".join(lines)


def _status(node: TaskNode) -> str:
    """The STATUS column: ``REPLAYED``, or ``REPLAYED STALE`` for a stale task; ``(refresh
    pending)`` after it for a task marked to run again."""
    status = node.status.upper()
    status = f"{status} {STALE.upper()}" if node.stale else status
    return f"{status} ({REFRESH_PENDING})" if node.record.refresh_pending else status


def stale_tasks(data: RunData) -> str:
    """The tasks the latest execution replayed although their code or inputs changed, each with
    why (``show --stale``); says so when there are none."""
    latest = data.record.latest_execution
    nodes = nodes_by_id(data.tree())
    stale = sorted((n for n in nodes.values() if n.stale), key=lambda n: n.record.seq)
    if latest is None or not stale:
        return f"Run {data.record.id}: no stale tasks in the latest execution."
    head = (
        f"Run {data.record.id}: {plural(len(stale), 'stale task')} in execution "
        f"{latest.number}, {stale_meaning(len(stale))}"
    )
    rows = [(task_label(n.record), "; ".join(n.stale)) for n in stale]
    return "\n".join([head, "", _table(STALE_HEADER, rows), "", stale_hint(len(stale)) + "."])


def _note(node: TaskNode) -> str:
    t = node.record
    error = row_error_text(node)
    if error is not None:
        return error
    if t.wait_until is not None and t.status is TaskStatus.WAITING:
        return f"until {format_time(t.wait_until, NONE)}"
    if t.output_preview is not None and t.kind != "wait":
        return f"= {t.output_preview}"
    return ""


def task_details(data: RunData, task_id: str) -> str:
    """One task: its fields, attempts, logs and the traceback of its last error."""
    nodes = nodes_by_id(data.tree())
    node = nodes[task_id]
    t = node.record
    parent = nodes.get(t.parent_id or "")
    kids = [k.record for k in node.children]
    fields = [
        ("key", task_key_text(t)),
        ("id", t.id),
        ("idempotency", t.idempotency_key),
        ("kind", t.kind),
        ("parent", task_label(parent.record) if parent else NONE),
        ("children", ", ".join(task_label(k) for k in kids) or NONE),
        ("started", format_time(t.started_at or t.created_at, NONE)),
        ("completed", format_time(t.completed_at, NONE)),
        ("duration", format_duration(t.duration_seconds, NONE)),
        (
            "executions",
            f"first ran in {t.first_execution}, completed in {t.completed_execution or NONE}",
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
        fields.append(("resumes", format_time(t.wait_until, NONE)))
    error = row_error_text(node)
    if error is not None:
        fields.append(("error", error))
    if t.refresh_pending:
        fields.append((REFRESH_PENDING, PENDING_MEANING))
    if node.stale:
        fields.append(("stale", "; ".join(node.stale)))
        fields.append(("", f"{stale_meaning()}; {stale_hint()}"))
    title = f"Task {task_title(t)} [{_status(node)}] in run {data.record.id}"
    lines = [title, *_fields(fields), ""]
    lines.append(f"Attempts ({len(t.attempts)})")
    for a in t.attempts:
        lines.append(
            f"  #{a.number}  execution {a.execution}  {format_time(a.started_at, NONE)}  "
            f"{format_duration(attempt_seconds(a), NONE)}  {attempt_status_text(a, upper=True)}  "
            f"{attempt_error_text(a, node)}"
        )
    logs = [log for log in data.logs if log.task_id == t.id]
    lines += ["", f"Logs ({len(logs)})"]
    if logs:
        lines.append(_indent(log_lines(logs, {t.id: task_label(t)})))
    # A task failed by a subtask's error has none of its own: that subtask shows it.
    if t.error is not None and t.error.traceback and passed_up_from(node) is None:
        lines += ["", "Traceback of the last error", _indent(t.error.traceback.rstrip())]
    return "\n".join(line.rstrip() for line in lines)


def log_lines(logs: list[LogRecord], names: dict[str, str]) -> str:
    """One aligned line per log; ``names`` maps task ids to the names shown."""
    rows = [
        (
            format_time(log.time, NONE),
            f"#{log.execution}",
            log.level.upper(),
            names.get(log.task_id, log.task_id) if log.task_id else "(run)",
            log.message
            + "".join(f"  {k}={json.dumps(v, default=str)}" for k, v in log.data.items()),
        )
        for log in logs
    ]
    return _table(None, rows) if rows else ""


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
