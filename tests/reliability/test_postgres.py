"""The reliability suite on the PostgreSQL store: processes and kernels sharing one run through
a real server, SIGKILLs at random points, and a killed holder's run lock freed by the server.

The same worker as the diskcache suite (``worker.py``), given a ``postgresql://`` URL instead of
a directory: the guarantees of SPEC 6 must not depend on the store.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .support import check_store, effect_counts, finish, start_worker, wait_ready
from .test_kill import kill_at_random_point
from .worker import expected_output

pytestmark = pytest.mark.slow

TASKS = 150
SEEDS = 10


def test_two_processes_on_one_run_execute_each_task_once(pg_url: str, tmp_path: Path) -> None:
    effects = tmp_path / "effects.txt"
    first = start_worker(pg_url, effects, TASKS, delay=0.002)
    second = start_worker(pg_url, effects, TASKS, delay=0.002)
    wait_ready(first)
    wait_ready(second)

    outcomes = [finish(first), finish(second)]

    assert [o["status"] for o in outcomes] == ["SUCCESS", "SUCCESS"], outcomes
    assert outcomes[0]["run_id"] == outcomes[1]["run_id"]
    counts = effect_counts(effects)
    assert set(counts) == set(range(TASKS))
    assert max(counts.values()) == 1, "a side effect ran twice"
    executed = sorted((o["executed"], o["replayed"]) for o in outcomes)
    assert executed == [(0, TASKS), (TASKS, 0)], outcomes
    assert check_store(pg_url, expected_output) == TASKS


def test_the_server_frees_a_killed_holders_lock(pg_url: str, tmp_path: Path) -> None:
    """SIGKILL closes the holder's socket; the server ends its session and its advisory lock
    with it, so the waiting process goes on, replays what completed and runs the rest."""
    effects = tmp_path / "effects.txt"
    first = start_worker(pg_url, effects, TASKS, delay=0.002)
    wait_ready(first)
    while sum(effect_counts(effects).values()) < TASKS // 2:
        assert first.poll() is None
        time.sleep(0.001)
    second = start_worker(pg_url, effects, TASKS)
    wait_ready(second)
    first.kill()
    first.communicate(timeout=30)

    outcome = finish(second)

    assert outcome["status"] == "SUCCESS", outcome
    counts = effect_counts(effects)
    assert set(counts) == set(range(TASKS))
    assert sum(counts.values()) - TASKS <= 1, "more than one side effect repeated after a kill"
    assert outcome["replayed"] >= TASKS // 2 - 1


@pytest.mark.parametrize("seed", range(SEEDS))
def test_sigkill_leaves_the_postgres_store_consistent(
    seed: int, pg_url: str, tmp_path: Path
) -> None:
    rng = random.Random(1000 + seed)
    effects = tmp_path / "effects.txt"
    kills = 0
    for _ in range(rng.randint(1, 3)):
        kills += kill_at_random_point(rng, pg_url, effects, TASKS)
        check_store(pg_url, expected_output)

    outcome = finish(start_worker(pg_url, effects, TASKS))

    assert outcome["status"] == "SUCCESS", outcome
    assert check_store(pg_url, expected_output) == TASKS
    counts = effect_counts(effects)
    assert set(counts) == set(range(TASKS)), "some side effect never ran"
    repeats = sum(counts.values()) - TASKS
    assert repeats <= kills, f"{repeats} repeated side effects after {kills} kills"
    print(f"seed {seed}: {kills} kill(s) mid-run, {repeats} repeated side effect(s)")


KERNEL_TASKS = 40
CELL = """
import os, time
from pathlib import Path
import trigger_nb

Path("ready").touch()
deadline = time.monotonic() + 90
while not Path({other!r}, "ready").exists():  # a barrier: both kernels start together
    assert time.monotonic() < deadline, "the other kernel never came"
    time.sleep(0.01)

job = trigger_nb.default_client().define_job("shared")

@job.run
def run(payload, io, ctx):
    with open({effects!r}, "a") as log:
        def effect(i):
            log.write(f"{{i}}\\n")
            log.flush()
            time.sleep(0.01)
            return i * i
        return [io.run_task(["step", i], lambda i=i: effect(i)) for i in range(payload["n"])]

result = job.trigger({{"n": {tasks}}})
h = result.execution_history[-1]
print(result.status, h.executed, h.replayed, result.output == [i * i for i in range({tasks})])
"""


def test_two_kernels_in_different_directories_share_one_run(
    run_loop: Callable[..., Any],
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two "machines": kernels with different working directories (so no shared ./.trigger_nb)
    and TRIGGER_NB_STORE pointing both at the server. The same job and payload: one run; the
    second kernel waits for the first, then replays every task."""
    monkeypatch.setenv("TRIGGER_NB_STORE", pg_url)
    effects = tmp_path / "effects.txt"
    homes = [tmp_path / "machine-a", tmp_path / "machine-b"]
    for home in homes:
        home.mkdir()
    notebooks = []
    for other in reversed(homes):  # each kernel waits for the other's "ready"
        nb = nbformat.v4.new_notebook()
        source = CELL.format(other=str(other), effects=str(effects), tasks=KERNEL_TASKS)
        nb.cells = [nbformat.v4.new_code_cell(source)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        notebooks.append(nb)

    async def execute_both() -> None:
        clients = [
            NotebookClient(
                nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(home)}}
            )
            for nb, home in zip(notebooks, homes, strict=True)
        ]
        await asyncio.gather(*(client.async_execute() for client in clients))

    run_loop(execute_both())

    printed = sorted(
        "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
        .strip()
        .splitlines()[-1]
        for nb in notebooks
    )
    assert printed == [f"SUCCESS 0 {KERNEL_TASKS} True", f"SUCCESS {KERNEL_TASKS} 0 True"]
    counts = collections.Counter(effects.read_text().split())
    assert counts == {str(i): 1 for i in range(KERNEL_TASKS)}, "each side effect exactly once"
    assert not any((home / ".trigger_nb").exists() for home in homes), "no local store used"
