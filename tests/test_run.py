"""A JobRun is a handle, not a snapshot (SPEC section 2; trigger_nb/run.py).

What a handle shows is the run's current state: the methods that execute or change a run update
the handle they are called on, and a run changed by anyone else (another handle,
``client.resume_due()``, another process, an execution in another thread) shows its new state.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import (
    FakeClock,
    NotFoundError,
    RunStatus,
    Store,
    TaskStatus,
    TriggerClient,
)
from trigger_nb._client.job import Job

THREE_HOURS = 3 * 60 * 60


def waiting_job(client: TriggerClient) -> Job:
    """Runs "before", waits three hours, then returns what "after" returns."""
    job = client.define_job(id="wait-job")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        io.run_task("before", lambda: "b")
        io.wait("three-hours", THREE_HOURS)
        io.logger.info("after the wait")
        return str(io.run_task("after", lambda: "done"))

    return job


def task_keys(run: Any) -> list[Any]:
    return [view.record.cache_key for view in run.all_tasks]


def completed_keys(run: Any) -> list[Any]:
    """Keys of the completed tasks (a running task shows only once it ran for a while)."""
    return [v.record.cache_key for v in run.all_tasks if v.status is TaskStatus.COMPLETED]


def test_resume_updates_the_handle_it_is_called_on(client: TriggerClient, clock: FakeClock) -> None:
    run = waiting_job(client).trigger()
    assert run.status is RunStatus.WAITING
    assert task_keys(run) == ["before", "three-hours"]  # the handle has read its tasks

    clock.advance(THREE_HOURS)
    assert run.resume() is run
    # `run.resume(); print(run.status, run.output)` reads the resumed run, not the waiting one
    assert run.status is RunStatus.SUCCESS and run.output == "done"
    assert run.executions == 2 and run.error is None and run.exception is None
    assert run.wait_until is None and run.completed_at == clock.now()
    assert task_keys(run) == ["before", "three-hours", "after"]
    assert run.task("three-hours").status is TaskStatus.COMPLETED
    assert [log.message for log in run.logs] == ["after the wait"]


def test_resume_adopts_the_exception_of_the_execution_it_ran(client: TriggerClient) -> None:
    job = client.define_job(id="fails-differently")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        raise ValueError(f"execution {ctx.run.execution} failed")

    handle = job.trigger()
    assert str(handle.exception) == "execution 1 failed"
    assert handle.resume() is handle
    assert str(handle.exception) == "execution 2 failed"
    assert handle.error is not None and handle.error.message == "execution 2 failed"
    with pytest.raises(ValueError, match="execution 2 failed"):
        handle.raise_for_status()


def test_a_handle_shows_what_resume_due_did_to_its_run(
    client: TriggerClient, clock: FakeClock
) -> None:
    triggered = waiting_job(client).trigger()
    loaded = client.load_run(triggered.id)
    assert loaded.status is RunStatus.WAITING and task_keys(loaded) == ["before", "three-hours"]
    record = loaded.record
    assert loaded.record is record  # unchanged in the store: not read into a new record

    clock.advance(THREE_HOURS)
    (resumed,) = client.resume_due()
    assert resumed is not loaded and resumed is not triggered
    for handle in (loaded, triggered):  # both were taken while the run waited
        assert handle.status is RunStatus.SUCCESS and handle.output == "done"
        assert handle.executions == 2 and handle.wait_until is None
        assert handle.completed_at == clock.now()
        assert task_keys(handle) == ["before", "three-hours", "after"]
        assert repr(handle).endswith("SUCCESS>")
    assert loaded.record is not record


def test_cancel_returns_the_handle_and_every_handle_sees_it(
    client: TriggerClient, clock: FakeClock
) -> None:
    run = waiting_job(client).trigger()
    other = client.load_run(run.id)
    assert other.status is RunStatus.WAITING

    assert run.cancel() is run
    assert run.status is RunStatus.CANCELED and run.wait_until is None
    assert other.status is RunStatus.CANCELED and other.completed_at == clock.now()
    assert other.wait_until is None

    clock.advance(THREE_HOURS)
    assert other.resume() is other and other.status is RunStatus.SUCCESS
    assert run.cancel() is run and run.status is RunStatus.SUCCESS  # finished: left alone


def test_a_handle_never_shows_the_output_of_an_older_execution(client: TriggerClient) -> None:
    job = client.define_job(id="counts")
    job.run(lambda payload, io, ctx: f"output of execution {ctx.run.execution}")

    first = job.trigger()
    assert first.output == "output of execution 1"  # produced in this process
    second = client.load_run(first.id).resume()
    assert second.output == "output of execution 2"
    assert first.output == "output of execution 2" and first.executions == 2


def test_a_handle_drops_the_exception_once_another_execution_succeeded(
    client: TriggerClient,
) -> None:
    job = client.define_job(id="flaky")
    job.run(lambda payload, io, ctx: 1 / (ctx.run.execution - 1))

    first = job.trigger()
    assert first.status is RunStatus.FAILURE and isinstance(first.exception, ZeroDivisionError)
    client.load_run(first.id).resume()
    assert first.status is RunStatus.SUCCESS and first.output == 1.0
    assert first.exception is None and first.error is None
    assert first.raise_for_status() is first


def test_a_cleared_run_keeps_its_last_state_until_reload(
    client: TriggerClient, clock: FakeClock, disk_store: Store
) -> None:
    run = waiting_job(client).trigger()
    clock.advance(THREE_HOURS)
    client.load_run(run.id).resume()
    assert run.status is RunStatus.SUCCESS  # read before the run is cleared

    disk_store.remove_run(run.id)
    assert run.status is RunStatus.SUCCESS and run.executions == 2
    assert repr(run).endswith("SUCCESS>")
    with pytest.raises(NotFoundError, match="no longer exists"):
        run.reload()


def test_tasks_completing_in_another_thread_show_while_the_run_executes(
    client: TriggerClient,
) -> None:
    reached = [threading.Event(), threading.Event()]
    go_on = [threading.Event(), threading.Event()]
    job = client.define_job(id="gated")

    def gate(number: int) -> None:
        reached[number].set()
        assert go_on[number].wait(60), "the test never released the gate"

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        io.run_task("first", lambda: 1)
        io.run_task("gate-0", lambda: gate(0))
        io.run_task("second", lambda: 2)
        io.run_task("gate-1", lambda: gate(1))
        return "finished"

    worker = threading.Thread(target=job.trigger)
    worker.start()
    try:
        assert reached[0].wait(60)
        (handle,) = client.list_runs(job="gated")
        assert handle.status is RunStatus.RUNNING
        assert completed_keys(handle) == ["first"]
        go_on[0].set()
        assert reached[1].wait(60)
        assert handle.status is RunStatus.RUNNING  # the run record has not changed meanwhile
        assert completed_keys(handle) == ["first", "gate-0", "second"]
    finally:
        for event in go_on:
            event.set()
        worker.join()
    assert handle.status is RunStatus.SUCCESS and handle.output == "finished"
    assert completed_keys(handle) == ["first", "gate-0", "second", "gate-1"]


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    from trigger_nb import FakeClock, TriggerClient

    store, now = sys.argv[1], sys.argv[2]
    client = TriggerClient("tests", store=store, clock=FakeClock(datetime.fromisoformat(now)))
    job = client.define_job(id="wait-job")

    @job.run
    def run(payload, io, ctx):
        io.run_task("before", lambda: "b")
        io.wait("three-hours", 3 * 60 * 60)
        return io.run_task("after", lambda: "resumed in another process")

    print(*[run.status.value for run in client.resume_due()])
    """
)


@pytest.mark.slow
def test_a_handle_shows_a_resume_by_another_process(
    client: TriggerClient, clock: FakeClock, tmp_path: Path
) -> None:
    run = waiting_job(client).trigger()
    assert run.status is RunStatus.WAITING
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    later = clock.now().timestamp() + THREE_HOURS
    due = type(clock.now()).fromtimestamp(later, clock.now().tzinfo).isoformat()
    done = subprocess.run(
        [sys.executable, str(script), client.store.location, due],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "SUCCESS"
    assert run.status is RunStatus.SUCCESS and run.output == "resumed in another process"
    assert run.executions == 2 and task_keys(run) == ["before", "three-hours", "after"]
