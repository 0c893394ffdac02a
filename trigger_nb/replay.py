"""Replaying a completed task: its stored output handed back instead of running it again, and
what to say when that stored result cannot be used.
"""

from __future__ import annotations

import pickle
from typing import Any

from trigger_nb.codec import deserialize
from trigger_nb.errors import CacheReadError
from trigger_nb.execution import Execution
from trigger_nb.snapshot import parse_task


def refresh_hint(cache_key: object, run_id: str) -> str:
    """How to get past a task whose stored result cannot be used."""
    return (
        f"run it again with run_task({cache_key!r}, ..., refresh=True), or clear the run with "
        f"`trigger-nb clear --run {run_id}`"
    )


# A completed task found in the run's entries, to replay instead of executing: its id, its
# checked output (None when the output lives in a blob of its own) and the seconds it took when
# it ran (the time this replay saves). A plain tuple: it is made on every replay.
Replay = tuple[str, bytes | None, float]


def replay(x: Execution, found: Replay, cache_key: object, name: object) -> Any:
    """The stored output of a completed task, as the value its first execution returned."""
    task_id, output, duration = found
    data: bytes | memoryview | None = output
    record = None
    try:
        if data is None or x.listeners:
            entry = x.snapshot.entry(task_id, "")
            assert entry is not None
            if data is None:
                data = x.store.entry_output(x.run_id, task_id, entry, "")
            if x.listeners:  # the live view shows the record
                record = parse_task(entry, "")
        value = pickle.loads(data)
    except CacheReadError as error:
        what, hint = _replay_texts(x, cache_key, name)
        # The store names the part that failed after a colon ("" stands for this task).
        reason = str(error).lstrip(": ")
        raise CacheReadError(
            f"{what}: {reason}; {hint}", cache_key=cache_key, task_id=task_id
        ) from error
    except Exception:  # an output that no longer unpickles: its class moved or was renamed
        assert data is not None
        what, hint = _replay_texts(x, cache_key, name)
        value = deserialize(data, what, hint)  # fails again, with the message that helps
    with x.lock:
        x.replayed += 1
        x.time_saved_seconds += duration
    if record is not None:
        x.publish("task_replayed", record)
    return value


def _replay_texts(x: Execution, cache_key: object, name: object) -> tuple[str, str]:
    """Which task could not be replayed, and the fix: built only on failure (building them for
    every replay cost ~7% of a replay)."""
    what = f"task {name!r}" if name else f"task {cache_key!r}"
    return f"{what} (run {x.run_id})", refresh_hint(cache_key, x.run_id)
