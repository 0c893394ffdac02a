"""Naming a task of a run, and choosing the tasks a partial re-run marks (SPEC 3.7).

Python callers name a task by its ``TaskView``, its id, or its top-level cache key
(``resolve_task``); the command line and the magic read text (``find_task``: an id, the key as
every view prints it, a name, an id prefix). Either way an unknown task is a
``TaskNotFoundError`` naming it and the closest tasks there are.

What a refresh marks (``refresh_selection``): the task, its subtasks, and its ancestors. The
ancestors because a subtask is only reached by running its parent again (the parent's other
subtasks are then replayed); a top-level task has none. What a re-run from a task marks
(``rerun_selection``): that, for the task and every task that started after it in the latest
execution. "Started after" is the run's task order (``TaskRecord.seq``, the order tasks first
started, which every view lists them in), limited to the tasks the latest execution reached
(not ``untouched``): a replay records no start time, and the order of first starts is the order
the run function calls its tasks in.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence

from trigger_nb._core.keys import encode_key
from trigger_nb._core.model import ExecutionRecord, TaskRecord
from trigger_nb._render.keys import key_text, task_key_text, task_label
from trigger_nb.errors import NotFoundError, TaskNotFoundError

CLOSE_MATCHES = 3


def resolve_task(records: Sequence[TaskRecord], run_id: str, task: object) -> TaskRecord:
    """The task ``task`` names: a ``TaskView`` (or its record), a task id, or a top-level
    cache key (``"fetch"``, ``["page", 2]``); failing those, a text naming exactly one task."""
    record = getattr(task, "record", task)
    if isinstance(record, TaskRecord):
        if record.run_id != run_id:
            raise TaskNotFoundError(
                f"task {task_label(record)!r} belongs to run {record.run_id}, not to run "
                f"{run_id}: pass a task of this run (run.tasks, run.task(key))",
                task=task,
            )
        wanted = record.id
    elif isinstance(task, str):
        wanted = task
    else:
        wanted = None
    by_id = {r.id: r for r in records}
    if wanted is not None and wanted in by_id:
        return by_id[wanted]
    encoded = encode_key(task)  # InvalidCacheKeyError for what cannot be a key
    for r in records:
        if r.parent_id is None and r.key == encoded:
            return r
    if isinstance(task, str):  # last: a name, when one task has it
        named = [r for r in records if r.name == task]
        if len(named) == 1:
            return named[0]
    nested = [r for r in records if r.key == encoded]
    if nested:
        parent = by_id.get(nested[0].parent_id or "")
        where = f" inside {task_label(parent)!r}" if parent is not None else ""
        raise TaskNotFoundError(
            f"run {run_id}: {key_text(task)!r} is not a top-level cache key; a subtask{where} "
            f"has it: pass that subtask's TaskView or id (id {nested[0].id})",
            task=task,
        )
    raise TaskNotFoundError(
        f"run {run_id} has no task {_shown(task)}{_close(records, str(task), top_level=True)}",
        task=task,
    )


def find_task(records: Sequence[TaskRecord], run_id: str, wanted: str) -> TaskRecord:
    """The task the text ``wanted`` names, tried in turn as: its id, its cache key as every
    view prints it (``_render.keys.key_text``: ``1`` is the int key, ``"1"`` the string; JSON
    is read too), its name, a prefix of its id. The first way that matches decides; several
    tasks that way is ambiguous (``NotFoundError`` listing them as the views print them)."""
    typed = _typed_text(wanted)
    for matches in (
        lambda r: r.id == wanted,
        lambda r: task_key_text(r) in (wanted, typed),
        lambda r: r.name == wanted,
        lambda r: r.id.startswith(wanted),
    ):
        found = [r for r in records if matches(r)]
        if len(found) == 1:
            return found[0]
        if found:
            by_id = {r.id: r for r in records}
            options = ", ".join(_candidate(r, by_id) for r in found[:5])
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            raise NotFoundError(
                f"task {wanted!r} is ambiguous in run {run_id}: it matches {options}{more}; "
                "give a task id"
            )
    raise TaskNotFoundError(
        f"run {run_id} has no task {wanted!r}{_close(records, wanted, top_level=False)}",
        task=wanted,
    )


def refresh_selection(records: Sequence[TaskRecord], task: TaskRecord) -> list[str]:
    """The ids a refresh of ``task`` marks: it, its subtasks and its ancestors, in run order."""
    return _with_ancestors(records, _subtree(records, [task.id]))


def rerun_selection(
    records: Sequence[TaskRecord], task: TaskRecord, latest: ExecutionRecord | None
) -> list[str]:
    """The ids a re-run from ``task`` marks: it and every task that started after it in the
    latest execution, their subtasks and ancestors, in run order."""
    untouched = set(latest.untouched) if latest is not None else set()
    later = [r.id for r in records if r.seq > task.seq and r.id not in untouched]
    return _with_ancestors(records, _subtree(records, [task.id, *later]))


def _subtree(records: Sequence[TaskRecord], roots: Iterable[str]) -> set[str]:
    children: dict[str, list[str]] = {}
    for r in records:
        if r.parent_id is not None:
            children.setdefault(r.parent_id, []).append(r.id)
    chosen: set[str] = set()
    stack = list(roots)
    while stack:
        task_id = stack.pop()
        if task_id not in chosen:
            chosen.add(task_id)
            stack.extend(children.get(task_id, ()))
    return chosen


def _with_ancestors(records: Sequence[TaskRecord], chosen: set[str]) -> list[str]:
    by_id = {r.id: r for r in records}
    for task_id in list(chosen):
        parent = by_id[task_id].parent_id if task_id in by_id else None
        while parent is not None and parent not in chosen and parent in by_id:
            chosen.add(parent)
            parent = by_id[parent].parent_id
    return [r.id for r in sorted(records, key=lambda r: r.seq) if r.id in chosen]


def _close(records: Sequence[TaskRecord], wanted: str, *, top_level: bool) -> str:
    """ "; closest: a, b" from the tasks' keys and names (top-level ones only if asked)."""
    shown: dict[str, str] = {}
    for r in sorted(records, key=lambda r: r.seq):
        if top_level and r.parent_id is not None:
            continue
        shown.setdefault(task_key_text(r), task_label(r))
        shown.setdefault(r.name, task_label(r))
    close = difflib.get_close_matches(wanted, list(shown), n=CLOSE_MATCHES, cutoff=0.5)
    if close:
        labels = list(dict.fromkeys(shown[c] for c in close))
        return "; closest: " + ", ".join(repr(label) for label in labels)
    if not records:
        return " (it has no tasks yet)"
    listed = list(dict.fromkeys(shown.values()))
    more = f" and {len(listed) - 5} more" if len(listed) > 5 else ""
    return "; its tasks: " + ", ".join(repr(label) for label in listed[:5]) + more


def _shown(task: object) -> str:
    try:
        return repr(key_text(task))
    except Exception:
        return repr(task)


def _typed_text(wanted: str) -> str | None:
    """``wanted`` read as JSON (``["page", 2]``), printed as the views print keys."""
    try:
        return key_text(json.loads(wanted))
    except (ValueError, RecursionError):
        return None


def _candidate(record: TaskRecord, records: dict[str, TaskRecord]) -> str:
    parent = records.get(record.parent_id or "")
    where = f", in {task_label(parent)}" if parent is not None else ""
    return f"{task_label(record)} (id {record.id[:10]}{where})"
