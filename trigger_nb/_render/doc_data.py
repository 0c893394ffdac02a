"""A run as compact JSON for the browser-side tree and timeline (``document``, ``tree_app.js``).

The kernel writes what each task shows, not HTML: the page draws rows, details and the
timeline from this, so a 1,000-task run costs the kernel a few milliseconds (HTML for every row
and its details cost ~20 µs a task) and the browser draws only what is on screen.

Shape (short keys: a 10,000-task run stays a few MB): ``{"base": epoch ms, "now": ms,
"ex": [[number, start, end|null, status]], "ff": index of the first failure|null,
"t": [task...]}``. Times are milliseconds after ``base`` (the run's creation). Tasks are in
tree pre-order (the tree's own order: seq, a parallel task's children by item index), each a
dict: ``p`` parent index (absent at the top), ``t`` title, ``k`` key shown, ``s`` display
status, ``b`` start (only without attempts), ``d`` duration (µs), ``a`` attempts
``[number, execution, start, end|null, status, error(, superseded status text)]``, and when
present: ``er`` the row's error, ``tb`` the traceback, ``st`` stale reasons, ``pr`` properties
``[label, text, url]``, ``ds``
description, ``pa`` params (JSON text, redacted), ``op`` ``[output type, size, preview]``,
``w`` wait until, ``n`` a parallel task's item count, ``ic`` icon glyph and name, ``lg`` logs
``[level, time of day, message, data JSON]``, ``rp`` 1 when it is marked to run again on the
next execution (a refresh pending). All text is plain text: the page escapes it. A task is
named by its index in ``t`` (``run_doc_json``'s ``task_ids``): the page's requests to the kernel
use it.
"""

from __future__ import annotations

import collections
import json
import threading
from datetime import datetime, timedelta
from json.encoder import encode_basestring as _string  # a str as JSON, escaped (C code)
from typing import Any

from trigger_nb._core.model import AttemptRecord, LogRecord, RunRecord, TaskRecord, TaskStatus
from trigger_nb._core.preview import redact_value, to_plain
from trigger_nb._render.captured import captured_html
from trigger_nb._render.format import format_time_of_day
from trigger_nb._render.icons import icon_glyph
from trigger_nb._render.keys import _default_name, shown_key, task_key_text
from trigger_nb._render.refresh import attempt_status_text
from trigger_nb._render.tree import (
    FAILED,
    TaskNode,
    attempt_error_text,
    failure_origin,
    passed_up_from,
    row_error_text,
)

_FAILED = TaskStatus.FAILED


def first_failure(nodes: list[TaskNode], record: RunRecord) -> TaskNode | None:
    """The task "jump to first failure" goes to and the header links: the one whose own code
    raised the run's error, else the first failed task (in run order) that raised its own."""
    origin = failure_origin(nodes, record.error)
    if origin is not None:
        return origin
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        if node.status == FAILED and passed_up_from(node) is None:
            return node
        stack.extend(reversed(node.children))
    return None


def run_doc_json(
    record: RunRecord,
    nodes: list[TaskNode],
    logs: dict[str, list[LogRecord]] | dict[str | None, list[LogRecord]],
    *,
    now: datetime,
    task_ids: list[str] | None = None,
) -> str:
    """The JSON text of the module docstring (compact; for ``json.loads``). ``task_ids``: a
    list to receive the ids of the tasks in the page's order (``t``), which the page's
    requests to the kernel name by index (``PageBridge``)."""
    base = record.created_at.timestamp()
    origin = record.created_at

    def ms(moment: datetime | None) -> int | None:
        # rounded, in timedelta arithmetic: an aware datetime's timestamp() costs several times
        # more, a float division and int() a third more
        return None if moment is None else (moment - origin + _HALF_MILLISECOND) // _MILLISECOND

    parts: list[str] = []
    index: dict[str, int] = {}
    first_failed: TaskNode | None = None  # first_failure's second choice, found on the way
    texts = _texts_of(record.id)
    # pre-order, iteratively: a 10,000-deep chain must not hit the recursion limit
    stack: list[tuple[TaskNode, int]] = [(n, -1) for n in reversed(nodes)]
    while stack:
        node, parent = stack.pop()
        here = index[node.record.id] = len(parts)
        if node.status == FAILED and first_failed is None and passed_up_from(node) is None:
            first_failed = node
        body = _task_text(node, logs.get(node.record.id), ms, base, texts)
        parts.append(f"{{{body}" if parent < 0 else f'{{"p":{parent},{body}')
        stack.extend((child, here) for child in reversed(node.children))
    if task_ids is not None:
        task_ids.extend(index)  # a dict keeps its insertion order: the page's
    # first_failure(nodes, record), without a second walk of the tree
    failure = failure_origin(nodes, record.error) or first_failed
    head = {
        "base": round(base * 1000),
        # a finished run's page is the same whenever it is drawn: its "now" is its end
        "now": ms(now if record.completed_at is None else record.completed_at),
        "ex": [
            [e.number, ms(e.started_at), ms(e.finished_at), e.status.value]
            for e in record.execution_history
        ],
        "ff": None if failure is None else index.get(failure.record.id),
    }
    return f'{_dumps(head)[:-1]},"t":[{",".join(parts)}]}}'


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


# one encoder: json.dumps with options makes a new one per call (most of a task's cost)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


# Each task's JSON by task id, with what it was made from, for the last ``_TEXT_RUNS`` runs
# drawn: a replay draws the records its first run drew (``live._Seen`` keeps the very objects),
# so most of its page is joined, not written. Bounded by runs, not tasks: the records it holds
# are a few runs' worth, however many fresh runs a kernel makes.
_Text = tuple[TaskRecord, str, tuple[str, ...], int, float, str]
_TEXTS: collections.OrderedDict[str, dict[str, _Text]] = collections.OrderedDict()
_TEXT_RUNS = 8
_TEXTS_LOCK = threading.Lock()


def _texts_of(run_id: str) -> dict[str, _Text]:
    with _TEXTS_LOCK:
        texts = _TEXTS.get(run_id)
        if texts is None:
            texts = _TEXTS[run_id] = {}
            while len(_TEXTS) > _TEXT_RUNS:
                _TEXTS.popitem(last=False)
        else:
            _TEXTS.move_to_end(run_id)
        return texts


def _task_text(
    node: TaskNode, logs: list[LogRecord] | None, ms: Any, base: float, texts: dict[str, _Text]
) -> str:
    record, count = node.record, len(logs) if logs else 0
    cached = texts.get(record.id)
    if (
        cached is not None
        and cached[0] is record
        and cached[1] == node.status
        and cached[2] == node.stale
        and cached[3] == count
        and cached[4] == base
    ):
        return cached[5]
    text = _task_json(node, logs, ms)
    texts[record.id] = (record, node.status, node.stale, count, base, text)
    return text


def _task_json(node: TaskNode, logs: list[LogRecord] | None, ms: Any) -> str:
    """A task's JSON object without its opening brace (the page's list puts the parent index
    first): the fields every task has written directly (half the time of a dict through the
    encoder; strings still go through the encoder's own escaping), the others (``_rare``)
    through the encoder."""
    r = node.record
    named = r.name != _default_name(r)
    title = r.name if named else task_key_text(r)
    duration = r.duration_seconds
    # whole microseconds: JSON writes an int several times faster than a float
    d = "null" if duration is None else str(int(duration * 1e6))
    tried = r.attempts
    if len(tried) == 1:  # most tasks: no generator and join for one
        attempts = _attempt_json(tried[0], node, ms)
    else:
        attempts = ",".join([_attempt_json(a, node, ms) for a in tried])
    text = f'"t":{_string(title)},"s":"{node.status}","d":{d},"a":[{attempts}]'
    if not r.attempts:  # else the page reads the start from the first attempt
        text += f',"b":{_number(ms(r.started_at or r.created_at))}'
    if r.output_preview is not None:
        kind = "null" if r.output_type is None else _string(r.output_type)
        text += f',"op":[{kind},{_number(r.output_size)},{_string(r.output_preview)}]'
    if named or logs or r.status is _FAILED or not _plain_record(node):
        rare = _rare(node, named, logs, ms)
        if rare:
            text += "," + _dumps(rare)[1:-1]
    return text + "}"


def _plain_record(node: TaskNode) -> bool:
    """Nothing for ``_rare`` to write (most tasks): its checks, without building anything."""
    r = node.record
    return not (
        node.stale
        or r.properties
        or r.output_properties
        or r.description
        or r.params is not None
        or node.captured
        or r.wait_until is not None
        or r.icon
        or r.refresh_pending
    )


def _attempt_json(a: AttemptRecord, node: TaskNode, ms: Any) -> str:
    error = '""' if a.error is None else _string(attempt_error_text(a, node))
    end = a.finished_at
    # most attempts completed: an identity test, not an enum's hash (Python code) for the dict
    status = _COMPLETED_TEXT if a.status is _COMPLETED else _ATTEMPT_STATUS[a.status]
    return (
        f"[{a.number},{a.execution},{ms(a.started_at)},{'null' if end is None else ms(end)},"
        f"{status},{error}{_superseded(a) if a.superseded else ''}]"
    )


_ATTEMPT_STATUS = {status: f'"{status.value.lower()}"' for status in TaskStatus}
_COMPLETED = TaskStatus.COMPLETED
_COMPLETED_TEXT = _ATTEMPT_STATUS[_COMPLETED]
_MILLISECOND = timedelta(milliseconds=1)
_HALF_MILLISECOND = _MILLISECOND / 2


def _superseded(attempt: AttemptRecord) -> str:
    """An attempt's 7th field, its status as the attempts table words it, when a later run
    superseded its output (else nothing: the status field says it)."""
    return f",{_string(attempt_status_text(attempt))}" if attempt.superseded else ""


def _number(value: int | None) -> str:
    return "null" if value is None else str(value)


def _rare(node: TaskNode, named: bool, logs: list[LogRecord] | None, ms: Any) -> dict[str, Any]:
    """The fields only some tasks have."""
    r = node.record
    out: dict[str, Any] = {}
    key = shown_key(r) if named else None
    if key is not None:
        out["k"] = key
    if r.status is _FAILED:
        out["er"] = row_error_text(node)
        if r.error is not None and r.error.traceback and passed_up_from(node) is None:
            out["tb"] = r.error.traceback.rstrip()
    if node.stale:
        out["st"] = list(node.stale)
    props = [*r.properties, *r.output_properties]
    if props:
        out["pr"] = [[p.get("label", ""), p.get("text", ""), p.get("url") or ""] for p in props]
    if r.description:
        out["ds"] = r.description
    if r.params is not None:
        params = redact_value(to_plain(r.params), r.redact)
        out["pa"] = json.dumps(params, indent=1, default=str, ensure_ascii=False)
        if r.kind == "parallel" and isinstance(r.params, dict):
            out["n"] = r.params.get("items")
    if node.captured:  # what it printed and displayed (HTML made safe by captured_html)
        out["cp"] = captured_html(node.captured, r)
    if r.wait_until is not None:
        out["w"] = ms(r.wait_until)
    if r.icon:
        out["ic"] = [icon_glyph(r.icon), r.icon]
    if r.refresh_pending:
        out["rp"] = 1
    if logs:
        out["lg"] = [
            [
                log.level,
                format_time_of_day(log.time),
                log.message,
                json.dumps(log.data, default=str, ensure_ascii=False) if log.data else "",
            ]
            for log in logs
        ]
    return out
