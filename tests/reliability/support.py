"""Helpers shared by the reliability tests: start the worker process, read what it did."""

from __future__ import annotations

import collections
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

from trigger_nb import TaskStatus
from trigger_nb._store.sealed import NO_OUTPUT
from trigger_nb._store.store import open_store

WORKER = Path(__file__).with_name("worker.py")
JOB_ID = "side-effects"


def start_worker(
    store: Path | str, effects: Path, tasks: int, delay: float = 0.0
) -> subprocess.Popen[str]:
    """A worker on ``store``: a directory or a postgresql:// URL."""
    env = {k: v for k, v in os.environ.items() if k != "TRIGGER_NB_DIR"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(store), str(effects), str(tasks), str(delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "ready", f"worker did not start: {line!r} {process.stderr.read()!r}"  # type: ignore[union-attr]


def finish(process: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    """Wait for a worker and return its outcome line."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"worker failed ({process.returncode}): {err}"
    return dict(json.loads(out.strip().splitlines()[-1]))


def effect_counts(effects: Path) -> collections.Counter[int]:
    if not effects.exists():
        return collections.Counter()
    return collections.Counter(int(line) for line in effects.read_text().split())


def check_store(store_dir: Path | str, expected: Any) -> int:
    """Open the store (a directory or a URL) as a new process would; every COMPLETED task's
    output must load and equal ``expected(i)``; outputs exist only for COMPLETED tasks. Returns
    how many are COMPLETED."""
    store = open_store(str(store_dir))
    try:
        runs = [r for r in store.list_runs() if r.job_id == JOB_ID]
        if not runs:
            return 0
        (run,) = runs
        snapshot = store.load_snapshot(run.id)
        completed = 0
        for record in snapshot.tasks():
            entry = snapshot.entry(record.id)
            has_output = entry is not None and entry.placement != NO_OUTPUT
            assert has_output == (record.status is TaskStatus.COMPLETED), record
            if record.status is TaskStatus.COMPLETED:
                value = pickle.loads(store.read_output(run.id, record.id))
                i = int(str(record.cache_key).rsplit("-", 1)[1])
                assert value == expected(i), f"task {record.cache_key} has a wrong output"
                completed += 1
        return completed
    finally:
        store.close()
