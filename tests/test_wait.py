"""io.wait: durable suspension and resumption, on a fake clock and across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import FakeClock, InvalidOptionError, RunStatus, TaskStatus, TriggerClient


def waiting_job(client: TriggerClient, calls: dict[str, int], block: bool = False) -> Any:
    job = client.define_job(id="wait-job")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        def before() -> None:
            calls["before"] += 1

        def after() -> str:
            calls["after"] += 1
            return "done"

        io.run_task("before", before)
        io.wait("three-hours", 3 * 60 * 60, block=block)
        return str(io.run_task("after", after))

    return job


def test_wait_suspends_then_resumes_only_when_due(client: TriggerClient, clock: FakeClock) -> None:
    calls = {"before": 0, "after": 0}
    job = waiting_job(client, calls)
    run = job.trigger()
    assert run.status is RunStatus.WAITING
    assert run.wait_until == clock.now() + timedelta(hours=3)
    assert run.task("three-hours").status is TaskStatus.WAITING

    clock.advance(60 * 60)
    early = run.resume()
    assert early.status is RunStatus.WAITING and calls == {"before": 1, "after": 0}
    assert early.wait_until == run.wait_until  # the resume time is stored, not recomputed

    clock.advance(2 * 60 * 60)
    done = early.resume()
    assert done.status is RunStatus.SUCCESS and done.output == "done"
    assert calls == {"before": 1, "after": 1}
    assert done.task("three-hours").status is TaskStatus.COMPLETED
    assert done.executions == 3


def test_resume_due_resumes_only_due_runs(client: TriggerClient, clock: FakeClock) -> None:
    calls = {"before": 0, "after": 0}
    job = waiting_job(client, calls)
    job.trigger()
    assert client.resume_due() == []
    clock.advance(3 * 60 * 60 + 1)
    resumed = client.resume_due()
    assert [r.status for r in resumed] == [RunStatus.SUCCESS]
    assert calls["after"] == 1


def test_block_true_sleeps_on_the_injected_clock(client: TriggerClient, clock: FakeClock) -> None:
    calls = {"before": 0, "after": 0}
    run = waiting_job(client, calls, block=True).trigger()
    assert run.status is RunStatus.SUCCESS and calls == {"before": 1, "after": 1}
    assert clock.sleeps == [3 * 60 * 60]


def test_a_wait_inside_a_parent_task_suspends_the_parent(client: TriggerClient) -> None:
    job = client.define_job(id="nested-wait")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("parent", lambda: io.wait("inner", 10))

    run_ = job.trigger()
    assert run_.status is RunStatus.WAITING
    assert run_.task("parent").status is TaskStatus.WAITING


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf"), "10", True])
def test_bad_wait_durations_are_clear_errors(client: TriggerClient, seconds: object) -> None:
    job = client.define_job(id="bad-wait")
    job.run(lambda payload, io, ctx: io.wait("w", seconds))
    run = job.trigger()
    assert isinstance(run.exception, InvalidOptionError)
    assert "io.wait seconds=" in str(run.exception)


WAIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    from trigger_nb import FakeClock, TriggerClient

    store, now, sent_path = sys.argv[1], sys.argv[2], sys.argv[3]
    client = TriggerClient("proc", store=store, clock=FakeClock(datetime.fromisoformat(now)))
    job = client.define_job(id="durable")

    @job.run
    def run(payload, io, ctx):
        io.run_task("email-1", lambda: open(sent_path, "a").write("one\\n"))
        io.wait("a-day", 86400)
        io.run_task("email-2", lambda: open(sent_path, "a").write("two\\n"))
        return "finished"

    result = job.trigger({"user": "u1"})
    print(result.status.value, result.wait_until.isoformat() if result.wait_until else "-")
    """
)


@pytest.mark.slow
def test_a_wait_survives_a_new_process(tmp_path: Path) -> None:
    script = tmp_path / "wait_job.py"
    script.write_text(WAIT_SCRIPT)
    sent = tmp_path / "sent.txt"

    def run_at(when: str) -> str:
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "store"), when, str(sent)],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    assert run_at("2026-01-01T00:00:00+00:00") == "WAITING 2026-01-02T00:00:00+00:00"
    assert run_at("2026-01-01T12:00:00+00:00") == "WAITING 2026-01-02T00:00:00+00:00"
    assert run_at("2026-01-02T00:00:01+00:00") == "SUCCESS -"
    assert sent.read_text().splitlines() == ["one", "two"]


def test_cancel_stops_a_waiting_run_until_it_is_triggered_again(
    client: TriggerClient, clock: FakeClock
) -> None:
    calls = {"before": 0, "after": 0}
    job = waiting_job(client, calls)
    run = job.trigger()
    canceled = run.cancel()
    assert canceled.status is RunStatus.CANCELED and canceled.completed_at is not None
    clock.advance(4 * 60 * 60)
    assert client.resume_due() == []  # a canceled run does not resume by itself
    assert calls["after"] == 0
    done = canceled.resume()  # asking explicitly continues it
    assert done.status is RunStatus.SUCCESS and calls == {"before": 1, "after": 1}
    assert done.cancel().status is RunStatus.SUCCESS  # a finished run is left alone


CANCEL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from trigger_nb import TriggerClient

    store, effects = sys.argv[1], sys.argv[2]
    client = TriggerClient("proc", store=store)
    job = client.define_job(id="long")

    def effect(i):
        with open(effects, "a") as handle:
            handle.write(f"{i}\\n")
        time.sleep(0.05)

    @job.run
    def run(payload, io, ctx):
        for i in range(200):
            io.run_task(["step", i], lambda i=i: effect(i))

    print(job.trigger().status.value)
    """
)


@pytest.mark.slow
def test_cancel_from_another_process_stops_a_running_run_between_tasks(tmp_path: Path) -> None:
    import time

    from trigger_nb import DiskStore

    script, effects = tmp_path / "long.py", tmp_path / "effects.txt"
    script.write_text(CANCEL_SCRIPT)
    worker = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "store"), str(effects)],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not effects.exists() or len(effects.read_text().split()) < 5:
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.01)
    watcher = TriggerClient("proc", store=DiskStore(tmp_path / "store"))
    (run,) = watcher.list_runs(job="long")
    run.cancel()
    out, _ = worker.communicate(timeout=60)
    assert out.strip() == "CANCELED"
    done = len(effects.read_text().split())
    assert 5 <= done < 200  # it stopped between tasks, well before the end
    stopped = watcher.load_run(run.id)
    assert stopped.status is RunStatus.CANCELED and stopped.error is not None
    assert "canceled" in stopped.error.message
    assert sum(1 for t in stopped.all_tasks if t.status is TaskStatus.COMPLETED) == done
