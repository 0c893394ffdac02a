"""Two processes executing the same run at the same time: every side effect runs exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .support import check_store, effect_counts, finish, start_worker, wait_ready
from .worker import expected_output

pytestmark = pytest.mark.slow

TASKS = 200


def test_two_processes_on_one_run_execute_each_task_once(tmp_path: Path) -> None:
    store, effects = tmp_path / "store", tmp_path / "effects.txt"
    # 2 ms per side effect: the run takes long enough for the second process to arrive mid-run.
    first = start_worker(store, effects, TASKS, delay=0.002)
    second = start_worker(store, effects, TASKS, delay=0.002)
    wait_ready(first)
    wait_ready(second)

    outcomes = [finish(first), finish(second)]

    assert [o["status"] for o in outcomes] == ["SUCCESS", "SUCCESS"], outcomes
    assert outcomes[0]["run_id"] == outcomes[1]["run_id"]
    counts = effect_counts(effects)
    assert set(counts) == set(range(TASKS))
    assert max(counts.values()) == 1, "a side effect ran twice"
    # One process executed everything; the other waited for it and replayed every task.
    executed = sorted((o["executed"], o["replayed"]) for o in outcomes)
    assert executed == [(0, TASKS), (TASKS, 0)], outcomes
    assert check_store(store, expected_output) == TASKS


def test_a_second_process_replays_what_a_killed_first_one_completed(tmp_path: Path) -> None:
    """The first process dies mid-run (SIGKILL); the second waits on the run's lock, which the
    OS releases with the dead process, then replays the completed part and executes the rest."""
    store, effects = tmp_path / "store", tmp_path / "effects.txt"
    first = start_worker(store, effects, TASKS, delay=0.002)
    wait_ready(first)
    while sum(effect_counts(effects).values()) < TASKS // 2:
        assert first.poll() is None
        time.sleep(0.001)
    second = start_worker(store, effects, TASKS)
    wait_ready(second)
    first.kill()
    first.communicate(timeout=30)

    outcome = finish(second)

    assert outcome["status"] == "SUCCESS", outcome
    counts = effect_counts(effects)
    assert set(counts) == set(range(TASKS))
    assert sum(counts.values()) - TASKS <= 1, "more than one side effect repeated after a kill"
    assert outcome["replayed"] >= TASKS // 2 - 1
    assert outcome["executed"] + outcome["replayed"] == TASKS
