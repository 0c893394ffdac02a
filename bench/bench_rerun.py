"""Re-running part of a run (SPEC 3.7): what marks and superseded outputs cost.

Run: ``.venv/bin/python bench/bench_rerun.py`` (``TRIGGER_NB_BENCH_TASKS`` sets the task count,
default 2,000; ``TRIGGER_NB_BENCH_REPEATS`` the repeats, default 5). Every ratio is against a
baseline measured in the same process, interleaved with it.

- replay with a pending mark: a run of N completed tasks replayed while one other task of it is
  marked (so every replay looks the marks up), against the same replay with no mark.
- re-run of N marked tasks: each runs again, its first output moved into its history and its
  mark deleted in the transaction of its first new entry, against the first run of N tasks.
- marking N tasks (one transaction), per task, against a first run per task.
- compare two stored runs of N tasks (``client.compare``), per task, against a replay per task.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import REPEATS, human, median, table, timed

from trigger_nb import DiskStore, Job, TriggerClient

TASKS = int(os.environ.get("TRIGGER_NB_BENCH_TASKS", "2000"))


def make_job(directory: Path, tasks: int) -> Job:
    client = TriggerClient("bench", store=DiskStore(directory))
    job = client.define_job("bench-rerun")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> int:
        for i in range(tasks):
            io.run_task(f"task-{i}", lambda i=i: i)
        if payload:  # one more task, the one left marked
            io.run_task("spare", lambda: 0)
        return tasks

    return job


def main() -> None:
    replays, marked_replays, firsts, reruns, marks, compares = [], [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="trigger-nb-bench-rerun-") as tmp:
        root = Path(tmp)
        # The replay pair: one run with a spare task that stays marked, one without marks.
        plain = make_job(root / "plain", TASKS)
        plain_run = plain.trigger(0)
        flagged = make_job(root / "flagged", TASKS)
        run = flagged.trigger(1)
        stamp = "2026-01-01T00:00:00+00:00"
        for rep in range(REPEATS):
            replays.append(timed(lambda: plain.trigger(0)) / TASKS)
            run.refresh_task("spare")
            # One execution: the spare task runs again (its mark used up), the other TASKS
            # tasks replay while a mark is pending, so each replay looks the marks up.
            marked_replays.append(timed(lambda: flagged.trigger(1)) / TASKS)

            job = make_job(root / f"first-{rep}", TASKS)
            first = job.trigger(0)
            firsts.append(first.execution_history[-1].active_seconds / TASKS)
            store = job.client.store
            ids = [view.id for view in first.all_tasks]
            marks.append(timed(lambda s=store, r=first.id, i=ids: s.mark_refresh(r, i, stamp)))
            marks[-1] /= TASKS
            reruns.append(timed(lambda job=job: job.trigger(0)) / TASKS)
            assert first.task("task-0").history[0].superseded
            compares.append(timed(lambda: plain.client.compare(plain_run, run)) / TASKS)
            store.close()
    replay, first = median(replays), median(firsts)
    rows = [
        ["replay, per task, a mark pending", human(median(marked_replays)),
         "replay, no mark", human(replay), f"{median(marked_replays) / replay:.2f}x",
         "<= 1.05x"],
        ["re-run of marked tasks, per task", human(median(reruns)), "first run, per task",
         human(first), f"{median(reruns) / first:.2f}x", "output kept in the history"],
        ["marking N tasks, per task", human(median(marks)), "first run, per task",
         human(first), f"{median(marks) / first:.2f}x", "one transaction"],
        ["compare two runs, per task", human(median(compares)), "replay, per task",
         human(replay), f"{median(compares) / replay:.2f}x", "reads both runs' outputs"],
    ]  # fmt: skip
    print(f"### Partial re-runs ({TASKS:,} tasks, median of {REPEATS} repeats)\n")
    print(table(["measure", "trigger_nb", "baseline", "baseline time", "ratio", "note"], rows))
    print()


if __name__ == "__main__":
    main()
