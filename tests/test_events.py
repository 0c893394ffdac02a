"""Typed run events (trigger_nb/_engine/events.py) and the engine's outcome (runner.py): the
engine runs without the client's classes, tells observers what happens, and a broken observer
never breaks a run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from trigger_nb import FakeClock, MemoryStore, RunStatus, Store, TaskError, TriggerClient
from trigger_nb._core.clock import Clock
from trigger_nb._core.model import LogRecord, RunRecord, TaskRecord
from trigger_nb._engine.events import RunObserver
from trigger_nb._engine.outcome import MISSING
from trigger_nb._engine.runner import execute_run


class Recorder(RunObserver):
    """Every event, as (method, name or status)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def run_started(self, run: RunRecord) -> None:
        self.seen.append(("run_started", run.status.value))

    def task_started(self, task: TaskRecord) -> None:
        self.seen.append(("task_started", task.name))

    def task_retrying(self, task: TaskRecord) -> None:
        self.seen.append(("task_retrying", task.name))

    def task_finished(self, task: TaskRecord) -> None:
        self.seen.append(("task_finished", f"{task.name} {task.status.value}"))

    def task_replayed(self, task: TaskRecord) -> None:
        self.seen.append(("task_replayed", task.name))

    def log_written(self, log: LogRecord) -> None:
        self.seen.append(("log_written", log.message))

    def run_finished(self, run: RunRecord) -> None:
        self.seen.append(("run_finished", run.status.value))


def flaky_run(calls: list[int]) -> Callable[[Any, Any, Any], Any]:
    def run(payload: Any, io: Any, ctx: Any) -> Any:
        io.logger.info("hello")

        def flaky() -> int:
            calls.append(1)
            if len(calls) == 1:
                raise ValueError("first attempt fails")
            return 7

        from trigger_nb import RetryOptions

        return io.run_task("a", flaky, retry=RetryOptions(limit=2, min_timeout=0.0))

    return run


def test_an_observer_sees_one_typed_event_per_step(client: TriggerClient) -> None:
    recorder = Recorder()
    job = client.define_job(id="observed", run=flaky_run([]))
    job.trigger(listeners=[recorder])
    job.trigger(listeners=[recorder])
    assert recorder.seen == [
        ("run_started", "RUNNING"),
        ("log_written", "hello"),
        ("task_started", "a"),
        ("task_retrying", "a"),
        ("task_started", "a"),
        ("task_finished", "a COMPLETED"),
        ("run_finished", "SUCCESS"),
        ("run_started", "RUNNING"),
        ("task_replayed", "a"),
        ("run_finished", "SUCCESS"),
    ]


def test_a_listener_function_gets_the_kinds_it_always_got(client: TriggerClient) -> None:
    kinds: list[str] = []
    job = client.define_job(id="listened", run=flaky_run([]))
    job.trigger(listeners=[lambda kind, payload: kinds.append(kind)])
    assert kinds == [
        "run_started", "log", "task_started", "task_retrying", "task_started", "task_completed",
        "run_finished",
    ]  # fmt: skip

    failing = client.define_job(id="fails")
    failing.run(lambda payload, io, ctx: io.run_task("boom", lambda: 1 / 0))
    kinds.clear()
    failing.trigger(listeners=[lambda kind, payload: kinds.append(kind)])
    assert kinds == ["run_started", "task_started", "task_failed", "run_finished"]


def test_subscribe_takes_an_observer_too_and_unsubscribes_it(client: TriggerClient) -> None:
    recorder = Recorder()
    unsubscribe = client.subscribe(recorder)
    job = client.define_job(id="subscribed", run=lambda payload, io, ctx: None)
    job.trigger()
    unsubscribe()
    job.trigger(new_run=True)
    assert recorder.seen == [("run_started", "RUNNING"), ("run_finished", "SUCCESS")]


def test_a_broken_observer_never_breaks_the_run(client: TriggerClient) -> None:
    class Broken(Recorder):
        def task_started(self, task: TaskRecord) -> None:
            raise RuntimeError("broken view")

        def run_finished(self, run: RunRecord) -> None:
            raise RuntimeError("broken view")

    def listener(kind: str, payload: Any) -> None:
        raise RuntimeError("broken listener")

    after = Recorder()
    job = client.define_job(id="robust", run=flaky_run([]))
    run = job.trigger(listeners=[Broken(), listener, after])
    assert run.status is RunStatus.SUCCESS and run.output == 7
    assert ("task_started", "a") in after.seen and after.seen[-1] == ("run_finished", "SUCCESS")


def test_an_observer_needs_only_the_events_it_wants(client: TriggerClient) -> None:
    class Finishes(RunObserver):
        def __init__(self) -> None:
            self.statuses: list[str] = []

        def run_finished(self, run: RunRecord) -> None:
            self.statuses.append(run.status.value)

    finishes = Finishes()
    job = client.define_job(id="partial", run=flaky_run([]))
    job.trigger(listeners=[finishes])
    assert finishes.statuses == ["SUCCESS"]


@dataclasses.dataclass
class PlainJob:
    """A job spec that is no ``Job``: the engine takes anything of this shape."""

    id: str
    name: str
    version: str
    run_fn: Callable[..., Any] | None
    integrations: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class PlainHost:
    """A host that is no ``TriggerClient``."""

    id: str
    store: Store
    clock: Clock
    sent: list[str] = dataclasses.field(default_factory=list)

    def send_event(
        self, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> Sequence[Any]:
        self.sent.append(name)
        return []


def test_the_engine_returns_an_outcome_for_any_job_and_host_of_the_right_shape() -> None:
    host = PlainHost("plain", MemoryStore(), FakeClock())

    def run(payload: Any, io: Any, ctx: Any) -> Any:
        assert ctx.client is host and ctx.job.id == "plain-job"
        io.send_event("ping", "ping")
        return io.run_task("double", lambda: payload * 2)

    job = PlainJob("plain-job", "Plain", "1", run)
    outcome = execute_run(job, host, "run_plain", 21, 21)
    assert outcome.output == 42 and outcome.exception is None
    assert outcome.record.status is RunStatus.SUCCESS and host.sent == ["ping"]
    assert host.store.load_run("run_plain") == outcome.record

    failing = PlainJob(
        "plain-job", "Plain", "1", lambda p, io, ctx: io.run_task("x", lambda: 1 / 0)
    )
    failed = execute_run(failing, host, "run_plain", 21, 21)
    assert failed.output is MISSING and isinstance(failed.exception, TaskError)
    assert failed.record.status is RunStatus.FAILURE and failed.record.executions == 2


def test_ctrl_c_is_raised_again_once_the_run_is_recorded(client: TriggerClient) -> None:
    def interrupted(payload: Any, io: Any, ctx: Any) -> None:
        raise KeyboardInterrupt

    job = client.define_job(id="interrupted", run=interrupted)
    with pytest.raises(KeyboardInterrupt):
        job.trigger()
    (run,) = client.list_runs(job="interrupted")
    assert run.status is RunStatus.CANCELED
    with pytest.raises(KeyboardInterrupt):
        run.resume()
