"""A damaged store: truncated or deleted output files, garbage under a task key.

Each damaged task gives ``CacheReadError`` naming its key and the fix (``refresh=True``), its side
effect is not re-run behind the user's back, the other tasks replay untouched, and refreshing the
task repairs it.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import diskcache
import pytest

from trigger_nb import CacheReadError, DiskStore, JobRun, RunStatus, TriggerClient

pytestmark = pytest.mark.slow

BIG = 40_000  # >= 32 KB: diskcache keeps the output in a file of its own
KEYS = ["small", "big-a", "big-b", "other"]


def output_for(key: str) -> bytes:
    return key.encode() * (BIG // len(key) if key.startswith("big") else 1)


class Notebook:
    """A job whose run function wraps each task like a careful notebook would, so one execution
    shows what every task does; ``calls`` counts the side effects."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.client = TriggerClient("damage", store=DiskStore(directory))
        self.calls: collections.Counter[str] = collections.Counter()
        self.refresh: set[str] = set()
        self.job = self.client.define_job("damaged")
        self.job.run(self._run)

    def _run(self, payload: Any, io: Any, ctx: Any) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for key in KEYS:

            def effect(key: str = key) -> bytes:
                self.calls[key] += 1
                return output_for(key)

            try:
                results[key] = io.run_task(key, lambda: effect(), refresh=key in self.refresh)
            except CacheReadError as error:
                results[key] = error
        return results

    def trigger(self, **options: Any) -> JobRun:
        return self.job.trigger(**options)


def entry(prefix: str, run: JobRun, key: str) -> str:
    """The store key of a task's entry ("t") or big output ("o"): see trigger_nb/store.py."""
    return f"{prefix}:{run.id}:{run.task(key).id}"


def output_file(directory: Path, run: JobRun, key: str) -> Path:
    """The file diskcache keeps a big output in, found through its Cache table."""
    with diskcache.Cache(str(directory)) as cache:
        row = cache._sql(
            "SELECT filename FROM Cache WHERE key = ?", (entry("o", run, key),)
        ).fetchone()
    assert row is not None and row[0] is not None, f"{key}'s output is not in a file"
    return directory / row[0]


def truncate(directory: Path, run: JobRun) -> None:
    path = output_file(directory, run, "big-a")
    path.write_bytes(path.read_bytes()[: BIG // 2])


def delete(directory: Path, run: JobRun) -> None:
    os.remove(output_file(directory, run, "big-a"))


def flip_a_byte(directory: Path, run: JobRun) -> None:
    path = output_file(directory, run, "big-a")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def garbage_output(directory: Path, run: JobRun) -> None:
    with diskcache.Cache(str(directory)) as cache:
        cache.set(entry("o", run, "big-a"), b"\x00garbage")


DAMAGES: dict[str, Callable[[Path, JobRun], None]] = {
    "truncated output file": truncate,
    "deleted output file": delete,
    "flipped byte in output file": flip_a_byte,
    "garbage output value": garbage_output,
}


def check_refresh_repairs(notebook: Notebook, key: str) -> None:
    before = notebook.calls[key]
    notebook.refresh = {key}
    repaired = notebook.trigger()
    assert repaired.output[key] == output_for(key)
    assert notebook.calls[key] == before + 1, "refresh=True runs the side effect once more"
    notebook.refresh = set()
    again = notebook.trigger()
    assert again.output == {k: output_for(k) for k in KEYS}
    assert notebook.calls[key] == before + 1


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_output_gives_cache_read_error_and_never_reruns_the_side_effect(
    damage: str, tmp_path: Path
) -> None:
    notebook = Notebook(tmp_path / "store")
    first = notebook.trigger()
    assert first.output == {k: output_for(k) for k in KEYS}
    DAMAGES[damage](notebook.directory, first)

    run = notebook.trigger()

    error = run.output["big-a"]
    assert isinstance(error, CacheReadError), error
    assert "'big-a'" in str(error) and "refresh=True" in str(error), str(error)
    assert error.cache_key == "big-a"
    assert {k: run.output[k] for k in KEYS if k != "big-a"} == {
        k: output_for(k) for k in KEYS if k != "big-a"
    }, "the other tasks replay untouched"
    assert notebook.calls == dict.fromkeys(KEYS, 1), "no side effect ran again"
    check_refresh_repairs(notebook, "big-a")


@contextlib.contextmanager
def entry_table(directory: Path) -> Iterator[sqlite3.Connection]:
    """The store's table of task entries (in diskcache's database), opened as anyone could."""
    connection = sqlite3.connect(directory / "cache.db", isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def put_entry(directory: Path, key: str, garbage: Any) -> None:
    """Whatever lands under a task's key: SQLite keeps any type; a dict as pickled bytes."""
    value = pickle.dumps(garbage) if isinstance(garbage, dict) else garbage
    with entry_table(directory) as table:
        table.execute("INSERT OR REPLACE INTO TaskEntry (key, value) VALUES (?, ?)", (key, value))


GARBAGE_ENTRIES: list[Any] = ["garbage", b"\x00\xff", 12345, {"not": "a record"}, '{"id": "tru']


@pytest.mark.parametrize("garbage", GARBAGE_ENTRIES, ids=repr)
def test_garbage_under_a_task_key_is_a_cache_read_error_and_never_reruns(
    garbage: Any, tmp_path: Path
) -> None:
    notebook = Notebook(tmp_path / "store")
    first = notebook.trigger()
    put_entry(notebook.directory, entry("t", first, "big-b"), garbage)

    seen: list[str] = []
    viewed = notebook.trigger(listeners=[lambda kind, payload: seen.append(kind)])
    plain = notebook.trigger()

    for run in (viewed, plain):
        error = run.output["big-b"]
        assert isinstance(error, CacheReadError), error
        assert "'big-b'" in str(error) and "refresh=True" in str(error), str(error)
        assert {k: run.output[k] for k in KEYS if k != "big-b"} == {
            k: output_for(k) for k in KEYS if k != "big-b"
        }
    assert seen.count("task_replayed") == len(KEYS) - 1
    assert notebook.calls == dict.fromkeys(KEYS, 1), "no side effect ran again"
    assert len(plain.all_tasks) == len(KEYS) - 1, "the tree leaves out the unreadable entry"
    check_refresh_repairs(notebook, "big-b")


def test_a_damaged_record_beside_an_intact_output_still_replays_and_the_view_says_so(
    tmp_path: Path,
) -> None:
    """Record and output have a checksum each: a replay checks the output it returns and does
    not parse the record (that keeps replay near a raw diskcache get); whenever the record is
    needed -- the live view of a notebook listens to every replay -- its damage is a
    CacheReadError naming the task."""
    notebook = Notebook(tmp_path / "store")
    first = notebook.trigger()
    key = entry("t", first, "small")
    with entry_table(notebook.directory) as table:
        (stored,) = table.execute("SELECT value FROM TaskEntry WHERE key = ?", (key,)).fetchone()
        blob = bytearray(stored)
        blob[40] ^= 0xFF  # inside the record's JSON, ahead of the inline output
        table.execute("UPDATE TaskEntry SET value = ? WHERE key = ?", (bytes(blob), key))

    seen: list[str] = []
    viewed = notebook.trigger(listeners=[lambda kind, payload: seen.append(kind)])

    error = viewed.output["small"]
    assert isinstance(error, CacheReadError), error
    assert "'small'" in str(error) and "record is damaged" in str(error), str(error)
    assert "refresh=True" in str(error)
    # After the checks above: a handle shows its run's latest execution (SPEC 2).
    plain = notebook.trigger()
    assert plain.output == {k: output_for(k) for k in KEYS}, "the intact output replays"
    assert notebook.calls == dict.fromkeys(KEYS, 1), "no side effect ran again"
    assert "small" not in [t.cache_key for t in plain.all_tasks]
    check_refresh_repairs(notebook, "small")


def test_an_uncaught_cache_read_error_fails_the_run_with_the_fix_in_its_error(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "store"
    calls: collections.Counter[str] = collections.Counter()
    client = TriggerClient("damage", store=DiskStore(directory))
    job = client.define_job("plain")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> int:
        for key in KEYS:
            io.run_task(key, lambda key=key: calls.update([key]) or output_for(key))
        return len(KEYS)

    first = job.trigger()
    truncate(directory, first)

    failed = job.trigger()

    assert failed.status is RunStatus.FAILURE
    assert failed.error is not None and failed.error.type.endswith("CacheReadError")
    assert "'big-a'" in failed.error.message and "refresh=True" in failed.error.message
    assert isinstance(failed.exception, CacheReadError)
    assert calls == dict.fromkeys(KEYS, 1)
    store = DiskStore(directory)
    assert store.read_output(first.id, failed.task("other").id)  # the others stay readable
    store.close()
