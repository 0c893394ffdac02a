"""A run killed with SIGKILL mid-way resumes without losing or repeating completed work."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trigger_nb import DiskStore, RunStatus, TaskStatus, TriggerClient

TASKS = 300
WORKER = textwrap.dedent(
    """
    import os, sys, time
    from trigger_nb import TriggerClient

    store, effects = sys.argv[1], sys.argv[2]
    client = TriggerClient("crash", store=store)
    job = client.define_job(id="three-hundred")
    fd = os.open(effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def effect(i):
        os.write(fd, f"{i}\\n".encode())  # one atomic append per side effect
        time.sleep(0.002)
        return {"i": i, "blob": "x" * (i * 7)}

    @job.run
    def run(payload, io, ctx):
        return sum(io.run_task(["task", i], lambda i=i: effect(i))["i"] for i in range(TASKS))

    print(job.trigger().status.value)
    """
).replace("TASKS", str(TASKS))


def effect_lines(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def assert_store_consistent(store_dir: Path) -> int:
    """Every COMPLETED task's output loads; returns how many are completed."""
    client = TriggerClient("crash", store=DiskStore(store_dir))
    runs = client.list_runs()
    completed = 0
    for run in runs:
        for task in run.all_tasks:
            if task.status is TaskStatus.COMPLETED:
                assert task.output["i"] == task.cache_key[1]
                completed += 1
    client.store.close()
    return completed


@pytest.mark.slow
def test_three_sigkills_then_the_run_completes_with_at_most_one_repeat_per_kill(
    tmp_path: Path,
) -> None:
    script, effects, store_dir = tmp_path / "worker.py", tmp_path / "effects.txt", tmp_path / "s"
    script.write_text(WORKER)
    command = [sys.executable, str(script), str(store_dir), str(effects)]
    completed_after_kill = []
    for threshold in (40, 140, 240):
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(effect_lines(effects)) < threshold:
            assert worker.poll() is None, "the worker finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        completed_after_kill.append(assert_store_consistent(store_dir))
    assert completed_after_kill == sorted(completed_after_kill)

    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == RunStatus.SUCCESS.value
    counts = collections.Counter(effect_lines(effects))
    assert set(counts) == set(range(TASKS))  # every side effect happened
    repeats = sum(n - 1 for n in counts.values())
    print(f"side effects repeated after 3 kills: {repeats}")
    assert repeats <= 3, f"{repeats} side effects repeated after 3 kills"
    assert assert_store_consistent(store_dir) == TASKS
