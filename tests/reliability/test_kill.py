"""SIGKILL at random points of a 500-task run: the store stays consistent and nothing repeats
more than once per kill.

Each seed kills the worker one to three times, at a random moment: right after start-up (while it
loads the run), or after a random number of side effects plus a random few milliseconds (inside a
task, a store write, or a 40 KB output file write). After every kill a fresh store must open and
every COMPLETED task's output must load; a final worker then finishes the run.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from .support import check_store, effect_counts, finish, start_worker, wait_ready
from .worker import expected_output

pytestmark = pytest.mark.slow

TASKS = 500
SEEDS = 20
TOTALS = {"kills": 0, "repeats": 0, "completed_at_kill": 0}


def kill_at_random_point(
    rng: random.Random, store: Path | str, effects: Path, tasks: int = TASKS
) -> bool:
    """Start a worker on ``store`` (a directory or a URL) and SIGKILL it at a random point;
    False if it finished first."""
    process = start_worker(store, effects, tasks)
    wait_ready(process)
    done = len(effect_counts(effects))  # distinct tasks whose side effect already ran
    if rng.random() < 0.2 or done >= tasks - 1:
        time.sleep(rng.uniform(0, 0.05))  # during start-up: lock, bulk read, first replays
    else:
        target = sum(effect_counts(effects).values()) + rng.randint(1, (tasks - done) // 2 + 1)
        deadline = time.monotonic() + 60
        while sum(effect_counts(effects).values()) < target and process.poll() is None:
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.003))
    alive = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    return alive


@pytest.mark.parametrize("seed", range(SEEDS))
def test_sigkill_leaves_a_consistent_store_and_repeats_at_most_one_effect_per_kill(
    seed: int, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    store, effects = tmp_path / "store", tmp_path / "effects.txt"
    kills = 0
    for _ in range(rng.randint(1, 3)):
        kills += kill_at_random_point(rng, store, effects)
        TOTALS["completed_at_kill"] += check_store(store, expected_output)

    outcome = finish(start_worker(store, effects, TASKS))

    assert outcome["status"] == "SUCCESS", outcome
    assert check_store(store, expected_output) == TASKS
    counts = effect_counts(effects)
    assert set(counts) == set(range(TASKS)), "some side effect never ran"
    repeats = sum(counts.values()) - TASKS
    assert repeats <= kills, f"{repeats} repeated side effects after {kills} kills"
    TOTALS["kills"] += kills
    TOTALS["repeats"] += repeats
    if seed == SEEDS - 1:
        print(f"\nSIGKILL totals over {SEEDS} seeds: {TOTALS}")
