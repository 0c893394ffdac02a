"""SIGKILL while a run re-runs its refreshed tasks (SPEC 3.7 + 6): no earlier output is lost,
no refresh is lost, and the store stays consistent.

A worker runs 100 tasks (every 25th returns a 40 KB blob, kept in a file of its own); then every
task is marked to run again and a second worker is killed at a random point, once or twice.
After each kill, every task is in exactly one of two states: still marked with its first
output in its slot, or unmarked with that output in its history (attempt 1 superseded). A last
worker finishes: every task then ran twice, plus at most one repeat per kill.
"""

from __future__ import annotations

import pickle
import random
import signal
import time
from pathlib import Path

import pytest

from trigger_nb import DiskStore, TaskStatus

from .support import JOB_ID, check_store, effect_counts, finish, start_worker, wait_ready
from .worker import expected_output

pytestmark = pytest.mark.slow

TASKS = 100
SEEDS = 4


def _index(record_key: object) -> int:
    return int(str(record_key).rsplit("-", 1)[1])


def check_refresh_states(store_dir: Path) -> tuple[int, int]:
    """Each task: marked with its first output in place, or unmarked with it in its history.
    Returns (marked, moved)."""
    store = DiskStore(store_dir)
    try:
        (run,) = [r for r in store.list_runs() if r.job_id == JOB_ID]
        snapshot = store.load_snapshot(run.id)
        marked = moved = 0
        for record in snapshot.tasks():
            i = _index(record.cache_key)
            first = record.attempts[0]
            if record.id in snapshot.marks:
                marked += 1
                assert record.status is TaskStatus.COMPLETED and not first.superseded, record
                assert pickle.loads(store.read_output(run.id, record.id)) == expected_output(i)
                assert store.backend.get(f"h:{run.id}:{record.id}:1") is None
            else:
                moved += 1
                assert first.superseded and first.number == 1, record
                kept = store.read_superseded_output(run.id, record.id, 1)
                assert pickle.loads(kept) == expected_output(i)
        return marked, moved
    finally:
        store.close()


def mark_every_task(store_dir: Path) -> None:
    store = DiskStore(store_dir)
    try:
        (run,) = [r for r in store.list_runs() if r.job_id == JOB_ID]
        ids = [record.id for record in store.load_snapshot(run.id).tasks()]
        assert len(ids) == TASKS
        store.mark_refresh(run.id, ids, "2026-01-01T00:00:00+00:00")
    finally:
        store.close()


@pytest.mark.parametrize("seed", range(SEEDS))
def test_sigkill_during_a_refresh_loses_no_output_and_no_mark(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    store, effects = tmp_path / "store", tmp_path / "effects.txt"
    assert finish(start_worker(store, effects, TASKS))["status"] == "SUCCESS"
    mark_every_task(store)
    assert check_refresh_states(store) == (TASKS, 0)

    kills = 0
    for _ in range(rng.randint(1, 2)):
        process = start_worker(store, effects, TASKS, delay=0.002)
        wait_ready(process)
        target = sum(effect_counts(effects).values()) + rng.randint(1, TASKS // 3)
        deadline = time.monotonic() + 60
        while sum(effect_counts(effects).values()) < target and process.poll() is None:
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.003))
        kills += process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        marked, moved = check_refresh_states(store)
        assert marked + moved == TASKS and moved > 0
        check_store(store, expected_output)

    outcome = finish(start_worker(store, effects, TASKS))
    assert outcome["status"] == "SUCCESS", outcome
    assert check_refresh_states(store) == (0, TASKS)
    assert check_store(store, expected_output) == TASKS
    counts = effect_counts(effects)
    assert min(counts.values()) >= 2, "a refreshed task did not run again"
    repeats = sum(counts.values()) - 2 * TASKS
    assert repeats <= kills, f"{repeats} repeated side effects after {kills} kills"
