"""Runs, tasks, logs and outputs as ``trigger-nb`` writes them for other programs: JSON (``runs
--json``, ``show --json``, ``export``), and the standalone page of ``export --format html``.

Records in (``RunData``), strings and JSON-able dicts out. A task's ``replayed``, ``stale``
(with ``stale_reasons``) and ``key_text`` are what every view shows (``_render``).
"""

from __future__ import annotations

import decimal
import html
import json
import uuid
from collections.abc import Iterable
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any

from trigger_nb._core.model import LogRecord, RunRecord
from trigger_nb._core.preview import to_plain
from trigger_nb._render.data import RunData
from trigger_nb._render.document import render_document
from trigger_nb._render.html import MAX_ROWS
from trigger_nb._render.keys import task_key_text
from trigger_nb._render.tree import (
    REPLAYED,
    TaskNode,
    group_logs,
    nodes_by_id,
    replayed_count,
    stale_count,
)

_Logs = dict[str | None, list[LogRecord]]


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
        "stale": stale_count(r),
        "output_preview": r.output_preview,
        "error": r.error.summary() if r.error else None,
    }


def run_json(data: RunData) -> dict[str, Any]:
    """The whole run: its record, task tree and logs (what ``export`` writes).

    ``duration_seconds`` is the active time (``active_seconds``), ``wall_seconds`` the span; a
    task's ``replayed`` is the mark every view shows, as of the latest execution."""
    r = data.record
    out: dict[str, Any] = r.model_dump(mode="json")
    out.update(
        executions=r.executions,
        duration_seconds=r.duration_seconds,
        active_seconds=r.active_seconds,
        wall_seconds=r.wall_seconds,
        replayed=replayed_count(r),
        stale=stale_count(r),
    )
    out["tasks"] = [task_json(node) for node in data.tree()]
    out["logs"] = logs_json(data.logs)
    return out


def task_json(node: TaskNode, logs: _Logs | None = None) -> dict[str, Any]:
    """A task and its subtasks; with ``logs`` (by task id), each with its logs."""
    out: dict[str, Any] = node.record.model_dump(mode="json")
    out["key_text"] = task_key_text(node.record)
    out["replayed"] = node.status == REPLAYED
    out["stale"] = bool(node.stale)
    out["stale_reasons"] = list(node.stale)
    out["refresh_pending"] = node.record.refresh_pending  # a mark of its own (excluded above)
    if logs is not None:
        out["logs"] = logs_json(logs.get(node.record.id, []))
    out["children"] = [task_json(child, logs) for child in node.children]
    return out


def task_json_of(data: RunData, task_id: str) -> dict[str, Any]:
    """One task (``show --task --json``): its record, logs and subtasks."""
    return task_json(nodes_by_id(data.tree())[task_id], group_logs(data.logs))


def stale_json(data: RunData) -> list[dict[str, Any]]:
    """``show --stale --json``: each stale task of the latest execution, and why."""
    stale = sorted((n for n in nodes_by_id(data.tree()).values() if n.stale), key=_seq)
    return [
        {
            "id": n.record.id,
            "name": n.record.name,
            "key_text": task_key_text(n.record),
            "stale_reasons": list(n.stale),
        }
        for n in stale
    ]


def _seq(node: TaskNode) -> int:
    return node.record.seq


def logs_json(logs: Iterable[LogRecord]) -> list[dict[str, Any]]:
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


def html_page(data: RunData) -> str:
    """The run's page (``_render.document``: tree, filters, timeline; every task, drawn by its
    inline script, with a static tree of ``MAX_ROWS`` rows where scripts are off) as a
    standalone file."""
    r = data.record
    title = html.escape(f"{r.job_name} · {r.id} · {r.status.value}")
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
        f"<body>\n{render_document(data, fallback_rows=MAX_ROWS)}\n</body></html>"
    )
