"""Replaying a completed task: its stored output handed back instead of running it again, and
what to say when that stored result cannot be used.
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

from trigger_nb._core.codec import Stored, Unpickled, deserialize, loads
from trigger_nb._core.model import TaskRecord
from trigger_nb._engine.capture import unpack
from trigger_nb._engine.console import write_again
from trigger_nb._engine.execution import Execution, current_frame
from trigger_nb._engine.item_order import output_turn
from trigger_nb._store.sealed import refresh_hint
from trigger_nb._store.snapshot import load_value, parse_task
from trigger_nb.errors import CacheReadError

# A completed task found in the run's entries, to replay instead of executing: its id, its
# checked output (None when the output lives in a blob of its own) and the seconds it took when
# it ran (the time this replay saves). A plain tuple: it is made on every replay.
Replay = tuple[str, bytes | None, float]


def replay(
    x: Execution, found: Replay, cache_key: object, name: object, mapped: object = False
) -> Any:
    """The stored output of a completed task, as the value its first execution returned
    (``mapped``: its big buffers mapped read-only, ``run_task(..., mmap=True)``)."""
    task_id, output, duration = found
    data: Stored | None = output
    record = entry = None
    try:
        observed = x.events.observers
        if data is None or observed:
            entry = x.snapshot.entry(task_id, "")
            assert entry is not None
            if data is None:
                data = x.store.entry_output(x.run_id, task_id, entry, "", mapped=bool(mapped))
            if observed:  # the live view shows the record
                record = parse_task(entry, "", x.run_id, task_id)
        value = pickle.loads(data) if type(data) is bytes else loads(data)
        if type(data) is Unpickled:  # a big output: a run returning it refers to it
            assert entry is not None  # read for the output
            x.big_outputs[id(value)] = (value, record or parse_task(entry, "", x.run_id, task_id))
    except CacheReadError as error:
        what, hint = _replay_texts(x, cache_key, name)
        raise CacheReadError(
            f"{what}: {error.reason}; {hint}",
            cache_key=cache_key,
            task_id=task_id,
            reason=error.reason,
        ) from error
    except Exception:  # an output that no longer unpickles: its class moved or was renamed
        assert data is not None
        what, hint = _replay_texts(x, cache_key, name)
        value = deserialize(data, what, hint)  # fails again, with the message that helps
    x.replayed.append(task_id)
    x.replayed_seconds.append(duration)
    if x.snapshot.captures and x.replay_output:
        record = _write_output_again(x, task_id, record, cache_key, name)
    if record is not None:
        stale = x.stale.get(task_id)
        if stale:
            record.stale_reasons = list(stale)  # the live view marks it stale
        x.events.task_replayed(record)
    if task_id not in x.stale:  # the stale warning names it from its entry at the end
        # Replayed once per execution (its key is claimed): its entry is not read again, so
        # it is let go now. A big run's replay then holds its entries or its values, not both.
        x.snapshot.entries.pop(task_id, None)
    return value


def _write_output_again(
    x: Execution, task_id: str, record: TaskRecord | None, cache_key: object, name: object
) -> TaskRecord | None:
    """Show again what the replayed task printed and displayed when it ran (its completing
    attempt's capture). A damaged capture is said on stderr, never an error: the value is
    intact. Returns the task's record, parsed if it had to be."""
    if not x.snapshot.has_capture(task_id):
        return record
    try:
        if record is None:
            entry = x.snapshot.entry(task_id, "")
            assert entry is not None
            record = parse_task(entry, "", x.run_id, task_id)
        last = record.attempts[-1] if record.attempts else None
        stored = x.snapshot.captures.get(f"{task_id}:{last.number}") if last else None
        if stored is None:
            return record
        label = repr(name) if name else repr(cache_key)
        events = unpack(load_value(stored, ""), "")
    except CacheReadError as error:
        sys.stderr.write(
            f"trigger_nb: the output task {cache_key!r} printed when it ran cannot be shown "
            f"again: {error.reason}\n"
        )
        return record
    turn = output_turn.get()
    if turn is not None and turn[2] is current_frame.get():  # a parallel task's own child
        order, index, _parent = turn
        order.write_in_turn(index, lambda: write_again(events, label))
    else:
        write_again(events, label)
    return record


def count_replayed(x: Execution) -> tuple[int, list[str]]:
    """How many tasks this execution replayed, and the ``untouched`` list that lets every view
    tell which (see ``model.is_replayed``, the one definition).

    Replayed: returned from the store, or inside a task that was (a parent's replay stands for
    its whole subtree). Untouched: completed by an earlier execution and neither. Only entries
    this execution did not call are parsed to find their parents, so a flat replay parses none.
    """
    replayed = set(x.replayed)
    run_again = set(x.refreshed_ids)
    # The records looked at below, read at once (a lean snapshot has them in the store)
    x.snapshot.prefetch(
        t
        for t in x.snapshot.entries
        if t not in replayed and t not in run_again and t not in x.used_task_ids
    )
    untouched: list[str] = []
    reached: dict[str, bool] = {task_id: True for task_id in replayed}
    parents: dict[str, str | None] = {}
    for task_id in x.snapshot.entries:
        if task_id in replayed or task_id in run_again:
            continue
        try:
            if x.snapshot.completed(task_id) is None:
                continue  # not COMPLETED: never counted as replayed
            if task_id in x.used_task_ids:
                untouched.append(task_id)  # called, neither replayed nor run (unreadable)
                reached[task_id] = False
                continue
            record = x.snapshot.task(task_id)
        except CacheReadError:
            untouched.append(task_id)
            reached[task_id] = False
            continue
        parents[task_id] = record.parent_id if record is not None else None
    inside = 0
    for task_id in parents:
        if _reaches_replayed(task_id, parents, reached):
            inside += 1
        else:
            untouched.append(task_id)
    return len(replayed) + inside, untouched


def _reaches_replayed(
    task_id: str, parents: dict[str, str | None], reached: dict[str, bool]
) -> bool:
    """Whether ``task_id`` sits inside a replayed task (memoized in ``reached``)."""
    chain = []
    node: str | None = task_id
    while node is not None and node not in reached:
        chain.append(node)
        node = parents.get(node)  # a parent that is no entry of this run ends the chain
    answer = reached.get(node, False) if node is not None else False
    for visited in chain:
        reached[visited] = answer
    return answer


def _replay_texts(x: Execution, cache_key: object, name: object) -> tuple[str, str]:
    """Which task could not be replayed, and the fix: built only on failure (building them for
    every replay cost ~7% of a replay)."""
    what = f"task {name!r}" if name else f"task {cache_key!r}"
    return f"{what} (run {x.run_id})", refresh_hint(x.run_id, cache_key)
