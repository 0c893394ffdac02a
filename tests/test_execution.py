"""io.logger, io.random and io.send_event across executions (trigger_nb/execution.py, io.py)."""

from __future__ import annotations

from typing import Any

import pytest

from trigger_nb import InvalidOptionError, TriggerClient


def test_logs_are_persisted_once_and_replays_do_not_duplicate_them(
    client: TriggerClient,
) -> None:
    job = client.define_job(id="logs")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.logger.info("starting", user="u1")
        io.logger.info("starting", user="u1")  # the same message twice is fine
        io.run_task("work", lambda task: io.logger.warn("inside the task", step=1))
        io.logger.error("finished")

    for _ in range(3):
        run_ = job.trigger()
    logs = [(log.level, log.message, log.data, log.execution) for log in run_.logs]
    assert logs == [
        ("info", "starting", {"user": "u1"}, 1),
        ("info", "starting", {"user": "u1"}, 1),
        ("warn", "inside the task", {"step": 1}, 1),
        ("error", "finished", {}, 1),
    ]
    assert [log.message for log in run_.task("work").logs] == ["inside the task"]


def test_new_top_level_logs_of_a_later_execution_are_kept(client: TriggerClient) -> None:
    job = client.define_job(id="more-logs")
    step = {"n": 1}

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.logger.info("begin")
        io.logger.debug(f"step {step['n']}", data={"nested": [1, 2]})

    job.trigger()
    step["n"] = 2
    run_ = job.trigger()
    assert [log.message for log in run_.logs] == ["begin", "step 1", "step 2"]
    assert run_.logs[1].data == {"data": {"nested": [1, 2]}}


def test_random_is_stable_across_replays(client: TriggerClient) -> None:
    job = client.define_job(id="random")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[float]:
        return [io.random("r1"), io.random("r2", min=10, max=20, round=True)]

    first = job.trigger().output
    assert 0 <= first[0] <= 1 and isinstance(first[1], int) and 10 <= first[1] <= 20
    assert job.trigger().output == first
    assert job.trigger(new_run=True).output != first


def test_random_rejects_bad_bounds(client: TriggerClient) -> None:
    job = client.define_job(id="bad-random")
    job.run(lambda payload, io, ctx: io.random("r", min=5, max=1))
    with pytest.raises(InvalidOptionError, match="min=5 is above max=1"):
        job.trigger().raise_for_status()


def test_send_event_triggers_other_jobs_exactly_once(client: TriggerClient) -> None:
    received: list[Any] = []
    listener = client.define_job(
        id="listener", trigger=__import__("trigger_nb").event_trigger("user.welcomed")
    )
    listener.run(lambda payload, io, ctx: received.append(payload))
    sender = client.define_job(id="sender")

    @sender.run
    def run(payload: Any, io: Any, ctx: Any) -> Any:
        return io.send_event("announce", "user.welcomed", {"user": "u1"})

    result = sender.trigger().output
    assert sender.trigger().output == result
    assert received == [{"user": "u1"}]
    assert result["name"] == "user.welcomed" and len(result["runs"]) == 1


def test_listeners_see_the_run_as_it_happens(client: TriggerClient) -> None:
    events: list[tuple[str, str]] = []
    unsubscribe = client.subscribe(
        lambda kind, payload: events.append((kind, getattr(payload, "name", "")))
    )
    job = client.define_job(id="watched")
    job.run(lambda payload, io, ctx: io.run_task("a", lambda: 1))
    job.trigger()
    job.trigger()
    unsubscribe()
    job.trigger()
    assert events == [
        ("run_started", ""),
        ("task_started", "a"),
        ("task_completed", "a"),
        ("run_finished", ""),
        ("run_started", ""),
        ("task_replayed", "a"),
        ("run_finished", ""),
    ]
