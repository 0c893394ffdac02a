"""When a task's entry reaches the store (trigger_nb/task_writer.py).

What a user notices: a slow task shows up as RUNNING (in ``trigger-nb show``, another kernel, the
store after a crash) while it runs; a finished task is never shown as RUNNING again; a child is
never stored without its parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from trigger_nb import DiskStore, RunStatus, Store, TaskStatus, TriggerClient
from trigger_nb._core.model import TaskRecord
from trigger_nb._engine.task_writer import TaskWriter
from trigger_nb._store.sealed import NO_OUTPUT

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def record(task_id: str, parent_id: str | None = None) -> TaskRecord:
    return TaskRecord(
        id=task_id, run_id="run_w", parent_id=parent_id, key="s" + task_id, cache_key=task_id,
        idempotency_key="0" * 64, name=task_id, status=TaskStatus.RUNNING, created_at=NOW,
    )  # fmt: skip


def status(store: Store, task_id: str) -> TaskStatus | None:
    found = store.load_snapshot("run_w").task(task_id)
    return None if found is None else found.status


def wait_for(condition: object, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def completed(task: TaskRecord) -> TaskRecord:
    task.status = TaskStatus.COMPLETED
    return task


def test_an_attempt_that_ends_quickly_is_written_once_when_it_ends(any_store: Store) -> None:
    writer = TaskWriter(any_store, delay=60)
    task = record("quick")
    writer.started(task)
    assert status(any_store, "quick") is None, "no RUNNING entry before the delay"
    writer.settle("quick")
    writer.write(completed(task), b"output")
    writer.close()
    assert status(any_store, "quick") is TaskStatus.COMPLETED


def test_an_attempt_still_running_after_the_delay_is_stored_as_running(any_store: Store) -> None:
    writer = TaskWriter(any_store, delay=0.01)
    task = record("slow")
    writer.started(task)
    wait_for(lambda: status(any_store, "slow") is TaskStatus.RUNNING, "the RUNNING entry")
    writer.settle("slow")
    writer.write(completed(task), b"output")
    time.sleep(0.05)  # several watchdog ticks: nothing may overwrite the COMPLETED entry now
    writer.close()
    assert status(any_store, "slow") is TaskStatus.COMPLETED


def test_a_child_is_never_stored_without_its_parent(any_store: Store) -> None:
    writer = TaskWriter(any_store, delay=60)
    parent, child = record("parent"), record("child", parent_id="parent")
    writer.started(parent)
    writer.started(child)
    writer.settle("child")
    writer.write(completed(child), b"child output")
    assert status(any_store, "parent") is TaskStatus.RUNNING, "flushed before its child"
    assert status(any_store, "child") is TaskStatus.COMPLETED
    writer.settle("parent")
    writer.write(completed(parent), b"parent output")
    writer.close()
    assert status(any_store, "parent") is TaskStatus.COMPLETED


def test_a_late_running_entry_never_overwrites_a_completed_one(tmp_path: Path) -> None:
    """The watchdog and the task race on purpose here: 300 attempts each end right around the
    moment their RUNNING entry falls due."""
    store = DiskStore(tmp_path / "store")
    writer = TaskWriter(store, delay=0.002)
    for i in range(300):
        task = record(f"t{i}")
        writer.started(task)
        time.sleep((i % 5) * 0.001)
        writer.settle(task.id)
        writer.write(completed(task), b"x")
    time.sleep(0.02)
    writer.close()
    snapshot = store.load_snapshot("run_w")
    assert [t.status for t in snapshot.tasks()] == [TaskStatus.COMPLETED] * 300
    assert all(snapshot.completed(t) is not None for t in snapshot.entries)
    store.close()


def test_a_slow_task_is_running_in_the_store_while_it_runs(tmp_path: Path) -> None:
    """What `trigger-nb show` or a second kernel sees during a slow side effect."""
    client = TriggerClient("writer", store=DiskStore(tmp_path / "store"))
    job = client.define_job("slow")
    seen: list[TaskStatus | None] = []

    def look_from_outside(task: object) -> str:
        observer = DiskStore(tmp_path / "store")  # another handle, like another process
        run_id = job.run_id_for(None)

        def running() -> bool:
            found = observer.load_snapshot(run_id).tasks()
            seen[:] = [t.status for t in found]
            return seen == [TaskStatus.RUNNING]

        wait_for(running, "the slow task's RUNNING entry")
        observer.close()
        return "done"

    job.run(lambda payload, io, ctx: io.run_task("slow", look_from_outside))
    run = job.trigger()
    assert run.status is RunStatus.SUCCESS and seen == [TaskStatus.RUNNING]
    assert [t.status for t in run.all_tasks] == [TaskStatus.COMPLETED]


WORKER = textwrap.dedent(
    """
    import sys, time
    from trigger_nb import TriggerClient

    client = TriggerClient("crash", store=sys.argv[1])
    job = client.define_job(id="slow-side-effect")

    def effect(task):
        with open(sys.argv[2], "a") as keys:
            keys.write(task.idempotency_key + "\\n")
        time.sleep(float(sys.argv[3]))
        return "sent"

    @job.run
    def run(payload, io, ctx):
        return io.run_task("send", effect)

    print(job.trigger().status.value)
    """
)


@pytest.mark.slow
def test_a_task_killed_mid_side_effect_is_stored_running_and_runs_again_with_its_key(
    tmp_path: Path,
) -> None:
    script, keys, store_dir = tmp_path / "worker.py", tmp_path / "keys.txt", tmp_path / "store"
    script.write_text(WORKER)
    worker = subprocess.Popen([sys.executable, str(script), str(store_dir), str(keys), "600"])
    store = DiskStore(store_dir)

    def running() -> bool:
        runs = store.list_runs()
        tasks = store.load_snapshot(runs[0].id).tasks() if runs else []
        return [t.status for t in tasks] == [TaskStatus.RUNNING]

    try:
        wait_for(running, "the RUNNING entry of the slow side effect", seconds=60)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    (run,) = store.list_runs()
    (task,) = store.load_snapshot(run.id).tasks()
    assert task.status is TaskStatus.RUNNING and len(task.attempts) == 1
    store.close()

    done = subprocess.run(
        [sys.executable, str(script), str(store_dir), str(keys), "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == RunStatus.SUCCESS.value
    first, second = keys.read_text().split()
    assert first == second, "the re-run passes the same idempotency key to the external API"
    store = DiskStore(store_dir)
    (task,) = store.load_snapshot(run.id).tasks()
    assert task.status is TaskStatus.COMPLETED
    assert [a.status for a in task.attempts] == [TaskStatus.RUNNING, TaskStatus.COMPLETED]
    entry = store.load_snapshot(run.id).entry(task.id)
    assert entry is not None and entry.placement != NO_OUTPUT
    store.close()
