"""Executing a run (trigger_nb/execute.py): runs never mix, never stay RUNNING, and count what
they replayed once, the same way for every view."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import pytest

from trigger_nb import (
    FakeClock,
    RetryOptions,
    RunConflictError,
    RunStatus,
    Store,
    TaskError,
    TaskOutputError,
    TaskStatus,
    TriggerClient,
    TriggerNbError,
)
from trigger_nb._core.model import is_replayed
from trigger_nb._store.backend import MemoryBackend, Value

# --- runs never mix --------------------------------------------------------------------------


def counted_job(client: TriggerClient, job_id: str, calls: list[str]) -> Any:
    job = client.define_job(job_id)

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> Any:
        return io.run_task("side-effect", lambda: calls.append(job_id) or f"{job_id}:{payload}")

    return job


def stored_state(store: Store, run_id: str) -> tuple[Any, dict[str, Any]]:
    record = store.load_run(run_id)
    entries = store.load_snapshot(run_id).entries
    return (record.model_dump() if record else None), dict(entries)


def test_a_run_id_of_another_job_is_refused_and_nothing_is_written(client: TriggerClient) -> None:
    calls: list[str] = []
    job_a, job_b = counted_job(client, "job-a", calls), counted_job(client, "job-b", calls)
    job_a.trigger("p", run_id="nightly")
    before = stored_state(client.store, "nightly")

    with pytest.raises(RunConflictError) as raised:
        job_b.trigger("p", run_id="nightly")

    message = str(raised.value)
    assert "'nightly'" in message and "'job-a'" in message and "'job-b'" in message
    assert "new_run=True" in message and "another run_id" in message
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, TriggerNbError)
    assert calls == ["job-a"], "job-b's function never ran, no job-a output replayed into it"
    assert stored_state(client.store, "nightly") == before


def test_a_run_id_with_another_payload_is_refused_naming_both_payloads(
    client: TriggerClient,
) -> None:
    calls: list[str] = []
    job = counted_job(client, "report", calls)
    job.trigger({"day": "monday", "rows": list(range(100))}, run_id="nightly")
    before = stored_state(client.store, "nightly")

    with pytest.raises(RunConflictError) as raised:
        job.trigger({"day": "tuesday"}, run_id="nightly")

    message = str(raised.value)
    assert '{"day":"monday","rows":[0,1,2' in message and "…" in message  # truncated
    assert '{"day":"tuesday"}' in message and "new_run=True" in message
    assert calls == ["report"]
    assert stored_state(client.store, "nightly") == before
    # The same payload, keys in another order, is the same run: it resumes and replays.
    again = job.trigger({"rows": list(range(100)), "day": "monday"}, run_id="nightly")
    assert again.status is RunStatus.SUCCESS and again.executions == 2 and calls == ["report"]


def test_new_run_with_an_explicit_id_replaces_the_old_run(client: TriggerClient) -> None:
    calls: list[str] = []
    job = counted_job(client, "report", calls)
    job.trigger("monday", run_id="nightly")

    fresh = job.trigger("tuesday", run_id="nightly", new_run=True)

    assert fresh.id == "nightly" and fresh.executions == 1 and fresh.output == "report:tuesday"
    assert calls == ["report", "report"], "the fresh run executed its task again"
    assert client.load_run("nightly").payload == "tuesday"
    other = counted_job(client, "other", calls).trigger("x", run_id="nightly", new_run=True)
    assert other.record.job_id == "other" and other.executions == 1


# --- the run's error -------------------------------------------------------------------------


def test_a_task_failure_reads_as_one_traceback_of_the_users_frames(client: TriggerClient) -> None:
    job = client.define_job("mail")

    def send_welcome_email() -> None:
        raise ConnectionError("smtp refused")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("welcome", send_welcome_email)

    error = job.trigger().error
    assert error is not None
    assert error.summary() == "TaskError: task 'welcome' failed after 1 attempt: " + (
        "ConnectionError: smtp refused"
    )
    lines = error.traceback.splitlines()
    assert "trigger_nb/" not in error.traceback, "no frame of trigger_nb's own"
    assert lines.count("ConnectionError: smtp refused") == 1, "the error's line once"
    assert "TaskError" not in error.traceback, "no second line repeating the same text"
    assert [line.strip().split(", in ")[-1] for line in lines if ", in " in line] == [
        "run",
        "send_welcome_email",
    ]
    assert lines[-1] == "ConnectionError: smtp refused"


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_an_exception_whose_str_raises_still_ends_the_run_failure(client: TriggerClient) -> None:
    job = client.define_job("broken")

    def fail() -> None:
        raise BrokenStr()

    job.run(lambda payload, io, ctx: io.run_task("t", fail))
    run = job.trigger()

    assert run.status is RunStatus.FAILURE and isinstance(run.exception, TaskError)
    task = run.task("t")
    assert task.status is TaskStatus.FAILED and task.error is not None
    assert task.error.type.endswith(".BrokenStr")
    assert task.error.message == "<unprintable BrokenStr: its __str__ raised RuntimeError>"
    assert "BrokenStr" in run.error.message  # type: ignore[union-attr]


def test_text_that_utf8_cannot_hold_is_stored_escaped(client: TriggerClient) -> None:
    path = b"/data/r\xe9sum\xe9.csv".decode("utf-8", "surrogateescape")
    job = client.define_job("paths")

    @job.run
    def read_files(payload: Any, io: Any, ctx: Any) -> None:
        io.logger.info(f"reading {path}", path=path)

        def read() -> None:
            raise FileNotFoundError(path)

        io.run_task(["read", path], read, name=path, description=path, params={"p": path})

    run = job.trigger()

    assert run.status is RunStatus.FAILURE
    escaped = "/data/r\\udce9sum\\udce9.csv"
    stored = client.load_run(run.id)
    (task,) = stored.all_tasks
    assert task.name == escaped and task.description == escaped and task.params == {"p": escaped}
    assert task.status is TaskStatus.FAILED and task.error is not None
    assert task.error.message == escaped and escaped in task.error.traceback
    assert [(log.message, log.data) for log in stored.logs] == [
        (f"reading {escaped}", {"path": escaped})
    ]


# --- never left RUNNING ----------------------------------------------------------------------


class FailingWrites(MemoryBackend):
    """A real in-memory backend with one fault injected: writes of task entries whose record
    matches ``needle`` raise, as a bug in the engine's recording would."""

    def __init__(self, needle: bytes) -> None:
        super().__init__()
        self.needle = needle
        self.armed = True

    def write(
        self,
        puts: Sequence[tuple[str, Value]],
        deletes: Sequence[str] = (),
        prefixes: Sequence[str] = (),
    ) -> None:
        for key, value in puts:
            if self.armed and key.startswith("t:") and self.needle in bytes(value):  # type: ignore[arg-type]
                raise RuntimeError("injected fault while writing a task entry")
        super().write(puts, deletes, prefixes)


def test_a_failure_while_recording_a_failure_ends_the_run_failure_and_frees_it(
    clock: FakeClock,
) -> None:
    backend = FailingWrites(needle=b'"FAILED"')
    client = TriggerClient("faults", store=Store(backend), clock=clock)
    job = client.define_job("fragile")
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise ValueError("the user's own error")

    job.run(lambda payload, io, ctx: io.run_task("t", fail))
    run = job.trigger()

    assert run.status is RunStatus.FAILURE and run.error is not None
    assert run.error.type == "trigger_nb.errors.InternalError"
    message = run.error.message
    assert "internal error in trigger_nb while recording the failure of task 't'" in message
    assert "ValueError: the user's own error" in message and "please report" in message
    assert [r.status for r in client.list_runs()] == [RunStatus.FAILURE]

    backend.armed = False
    again = job.trigger()  # the lock was released: this does not hang
    assert again.executions == 2 and calls == [1, 1]
    assert again.task("t").status is TaskStatus.FAILED


# --- outputs that do not load back -----------------------------------------------------------


def _refuse_to_load() -> None:
    raise RuntimeError("refusing to load")


class LoadsNever:
    """Pickles fine, fails to unpickle."""

    def __reduce__(self) -> Any:
        return (_refuse_to_load, ())


def test_an_output_that_does_not_load_back_fails_the_attempt_and_is_retried(
    client: TriggerClient,
) -> None:
    pickle.dumps(LoadsNever())  # it does pickle
    calls: list[int] = []
    job = client.define_job("unloadable")
    retry = RetryOptions(limit=2, min_timeout=0.0, randomize=False)
    job.run(
        lambda payload, io, ctx: io.run_task(
            "make", lambda: calls.append(1) or LoadsNever(), retry=retry
        )
    )

    run = job.trigger()

    assert calls == [1, 1], "retried per the task's options"
    assert run.status is RunStatus.FAILURE and isinstance(run.exception, TaskError)
    assert isinstance(run.exception.__cause__, TaskOutputError)
    task = run.task("make")
    assert task.status is TaskStatus.FAILED, "never recorded COMPLETED"
    assert task.error is not None and task.error.type.endswith("TaskOutputError")
    assert "pickles but cannot be loaded back: RuntimeError: refusing to load" in (
        task.error.message
    )
    assert "define __reduce__" in task.error.message
    job.trigger()
    assert calls == [1, 1, 1, 1], "ran again on the next execution, no CacheReadError"


# --- attempts, durations and the replayed count ----------------------------------------------


def test_attempts_are_numbered_across_executions(client: TriggerClient) -> None:
    failures = [True, True, False]
    job = client.define_job("flaky")

    def flaky() -> str:
        if failures.pop(0):
            raise ConnectionError("down")
        return "up"

    retry = RetryOptions(limit=2, min_timeout=0.0, randomize=False)
    job.run(lambda payload, io, ctx: io.run_task("call", flaky, retry=retry))
    assert job.trigger().status is RunStatus.FAILURE
    run = job.trigger()

    attempts = run.task("call").attempts
    assert [(a.number, a.execution, a.status) for a in attempts] == [
        (1, 1, TaskStatus.FAILED),
        (2, 1, TaskStatus.FAILED),
        (3, 2, TaskStatus.COMPLETED),
    ]


def test_a_tasks_duration_includes_its_retry_back_off(
    client: TriggerClient, clock: FakeClock
) -> None:
    failures = [True, True, False]
    job = client.define_job("slow-retries")
    retry = RetryOptions(limit=3, min_timeout=0.3, factor=1.0, randomize=False)

    def flaky() -> str:
        if failures.pop(0):
            raise ConnectionError("down")
        return "up"

    job.run(lambda payload, io, ctx: io.run_task("call", flaky, retry=retry))
    task = job.trigger().task("call")

    assert task.duration_seconds is not None and task.duration_seconds >= 0.6  # two back-offs
    own = [(a.finished_at - a.started_at).total_seconds() for a in task.attempts]  # type: ignore[operator]
    assert all(seconds < 0.3 for seconds in own), "each attempt's own time excludes back-off"


def test_replayed_counts_returned_tasks_and_what_is_inside_them(client: TriggerClient) -> None:
    calls: list[str] = []
    steps = ["a", "parent", "gone"]
    job = client.define_job("nested")

    @job.run
    def steps_of(payload: Any, io: Any, ctx: Any) -> None:
        for step in steps:
            if step == "parent":
                io.run_task(
                    "parent",
                    lambda: [
                        io.run_task(f"child-{i}", lambda: calls.append("c")) for i in range(3)
                    ],
                )
            else:
                io.run_task(step, lambda: calls.append("x"))

    job.trigger()
    steps.remove("gone")  # the code no longer calls it
    run = job.trigger()

    latest = run.record.execution_history[-1]
    replayed = sorted(t.name for t in run.all_tasks if is_replayed(t.record, latest))
    assert replayed == ["a", "child-0", "child-1", "child-2", "parent"]
    assert latest.replayed == 5, "the count and the rows agree"
    gone = run.task("gone")
    assert latest.untouched == [gone.id] and not is_replayed(gone.record, latest)
    assert latest.executed == 0 and len(calls) == 5
