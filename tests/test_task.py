"""Retries, on_error, timeouts, child failures and interruptions (trigger_nb/task.py)."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import (
    SKIP_RETRYING,
    CacheReadError,
    FakeClock,
    RetryAt,
    RetryOptions,
    RunStatus,
    TaskError,
    TaskStatus,
    TaskTimeoutError,
    TriggerClient,
)

FAST = RetryOptions(limit=3, min_timeout=1.0, factor=2.0, randomize=False)


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``value``."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError, value: Any = "ok"):
        self.failures, self.error, self.value, self.calls = failures, error, value, 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return self.value


def one_task_job(client: TriggerClient, fn: Any, **options: Any) -> Any:
    job = client.define_job(id="one-task")
    job.run(lambda payload, io, ctx: io.run_task("call-api", fn, **options))
    return job


def test_limit_three_means_three_calls_and_every_attempt_is_recorded(
    client: TriggerClient, clock: FakeClock
) -> None:
    flaky = Flaky(failures=10)
    run = one_task_job(client, flaky, retry=FAST).trigger()
    assert flaky.calls == 3
    assert run.status is RunStatus.FAILURE
    error = run.exception
    assert isinstance(error, TaskError)
    assert str(error) == "task 'call-api' failed after 3 attempts: ConnectionError: failure 3"
    assert error.cache_key == "call-api" and len(error.attempts) == 3
    assert error.error_type == "ConnectionError" and "failure 3" in error.traceback
    assert isinstance(error.__cause__, ConnectionError)
    assert clock.sleeps == [1.0, 1.0]  # delays after attempts 1 and 2: min_timeout * 2**0
    task = run.reload().task("call-api")
    assert task.status is TaskStatus.FAILED
    assert [a.number for a in task.attempts] == [1, 2, 3]
    for n, attempt in enumerate(task.attempts, start=1):
        assert attempt.error is not None
        assert attempt.error.message == f"failure {n}"
        assert "ConnectionError: failure" in attempt.error.traceback
        assert "__call__" in attempt.error.traceback


def test_retry_succeeds_on_a_later_attempt(client: TriggerClient, clock: FakeClock) -> None:
    flaky = Flaky(failures=2)
    run = one_task_job(client, flaky, retry=FAST).trigger()
    assert run.status is RunStatus.SUCCESS and run.output == "ok"
    assert flaky.calls == 3 and len(run.task("call-api").attempts) == 3


def test_no_retry_without_retry_option(client: TriggerClient) -> None:
    flaky = Flaky(failures=1)
    run = one_task_job(client, flaky).trigger()
    assert flaky.calls == 1 and run.status is RunStatus.FAILURE
    assert "after 1 attempt:" in str(run.exception)


def test_no_retry_on_stops_at_once_and_retry_on_limits_retries(client: TriggerClient) -> None:
    flaky = Flaky(failures=10, error=PermissionError)
    one_task_job(client, flaky, retry=FAST, no_retry_on=PermissionError).trigger()
    assert flaky.calls == 1
    flaky = Flaky(failures=10, error=ValueError)
    one_task_job(client, flaky, retry=FAST, retry_on=(ConnectionError,)).trigger(new_run=True)
    assert flaky.calls == 1
    flaky = Flaky(failures=10, error=ConnectionError)
    options = RetryOptions(limit=3, retry_on=ConnectionError, randomize=False)
    one_task_job(client, flaky, retry=options).trigger(new_run=True)
    assert flaky.calls == 3


def test_on_error_can_replace_the_error(client: TriggerClient) -> None:
    flaky = Flaky(failures=10)

    def on_error(error: BaseException, task: Any) -> BaseException:
        return RuntimeError(f"api down (attempt {task.attempt}): {error}")

    run = one_task_job(client, flaky, retry=FAST, on_error=on_error).trigger()
    assert flaky.calls == 3
    assert "RuntimeError: api down (attempt 3): failure 3" in str(run.exception)
    attempts = run.reload().task("call-api").attempts
    assert attempts[0].error is not None and attempts[0].error.type == "RuntimeError"


def test_on_error_skip_retrying_fails_now(client: TriggerClient) -> None:
    flaky = Flaky(failures=10)
    one_task_job(client, flaky, retry=FAST, on_error=lambda e, t: SKIP_RETRYING).trigger()
    assert flaky.calls == 1


def test_on_error_retry_at_sets_the_delay(client: TriggerClient, clock: FakeClock) -> None:
    flaky = Flaky(failures=2)
    at = clock.now() + timedelta(seconds=30)
    decisions = iter([RetryAt(7), RetryAt(at)])
    run = one_task_job(client, flaky, on_error=lambda e, t: next(decisions)).trigger()
    assert run.output == "ok" and flaky.calls == 3
    assert clock.sleeps == [7.0, 23.0]  # 30 s from the start, 7 s of which already slept


def test_on_error_returning_none_keeps_the_policy(client: TriggerClient) -> None:
    flaky = Flaky(failures=1)
    seen: list[str] = []
    run = one_task_job(
        client, flaky, retry=FAST, on_error=lambda e, t: seen.append(str(e))
    ).trigger()
    assert run.output == "ok" and seen == ["failure 1"]


def test_fail_then_fix_then_retrigger_replays_completed_and_reruns_failed(
    client: TriggerClient,
) -> None:
    calls = {"fetch": 0, "send": 0}
    broken = {"on": True}
    job = client.define_job(id="fix")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        def fetch() -> str:
            calls["fetch"] += 1
            return "ada@example.com"

        def send() -> str:
            calls["send"] += 1
            if broken["on"]:
                raise KeyError("template")
            return "sent"

        email = io.run_task("fetch", fetch)
        return str(io.run_task("send", send)) + " to " + email

    assert job.trigger().status is RunStatus.FAILURE
    broken["on"] = False
    fixed = job.trigger()
    assert fixed.status is RunStatus.SUCCESS and fixed.output == "sent to ada@example.com"
    assert calls == {"fetch": 1, "send": 2}
    assert fixed.execution_history[-1].replayed == 1
    assert fixed.execution_history[-1].executed == 1
    attempts = fixed.task("send").attempts
    assert [(a.execution, a.status) for a in attempts] == [
        (1, TaskStatus.FAILED),
        (2, TaskStatus.COMPLETED),
    ]


def test_child_failure_fails_the_parent_without_retrying_it(
    client: TriggerClient, clock: FakeClock
) -> None:
    parent_calls = []
    child = Flaky(failures=10)
    job = client.define_job(id="nested-failure")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        def parent() -> None:
            parent_calls.append(1)
            io.run_task("child", child, retry=RetryOptions(limit=2, randomize=False))

        io.run_task("parent", parent, retry=FAST)

    result = job.trigger()
    assert parent_calls == [1] and child.calls == 2
    assert isinstance(result.exception, TaskError) and result.exception.cache_key == "child"
    parent = result.reload().task("parent")
    assert parent.status is TaskStatus.FAILED
    assert parent.error is not None and parent.error.message == "failure 2"


def test_user_except_exception_cannot_swallow_a_wait(client: TriggerClient) -> None:
    job = client.define_job(id="swallow")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        try:
            io.wait("pause", 60)
        except Exception:
            return "swallowed"
        return "continued"

    assert job.trigger().status is RunStatus.WAITING


def test_timeout_interrupts_a_slow_attempt_and_retries(client: TriggerClient) -> None:
    calls = []

    def slow() -> str:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(5)
        return "fast enough"

    run = one_task_job(
        client, slow, timeout=0.2, retry=RetryOptions(limit=2, randomize=False)
    ).trigger()
    # Without the interruption the first attempt would have slept 5 s and succeeded.
    assert run.output == "fast enough" and len(calls) == 2
    first = run.task("call-api").attempts[0]
    assert first.error is not None and first.error.type.endswith("TaskTimeoutError")
    assert "timed out after 0.2 s" in first.error.message


def test_timeout_of_async_function(client: TriggerClient) -> None:
    import asyncio

    async def slow() -> None:
        await asyncio.sleep(5)

    run = one_task_job(client, slow, timeout=0.1).trigger()
    assert isinstance(run.exception, TaskError)
    assert isinstance(run.exception.__cause__, TaskTimeoutError)


def test_keyboard_interrupt_marks_the_task_interrupted_and_stops_the_run(
    client: TriggerClient,
) -> None:
    calls = {"first": 0, "second": 0}
    interrupt = {"on": True}
    job = client.define_job(id="interrupt")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        io.run_task("first", lambda: calls.__setitem__("first", calls["first"] + 1))

        def second() -> str:
            calls["second"] += 1
            if interrupt["on"]:
                raise KeyboardInterrupt
            return "done"

        return str(io.run_task("second", second))

    with pytest.raises(KeyboardInterrupt):
        job.trigger()
    stopped = client.load_run(job.run_id_for(None))
    assert stopped.status is RunStatus.CANCELED
    assert stopped.task("second").status is TaskStatus.INTERRUPTED
    interrupt["on"] = False
    assert job.trigger().output == "done"
    assert calls == {"first": 1, "second": 2}


def test_recorded_tracebacks_show_the_users_frames_not_the_engines(
    client: TriggerClient,
) -> None:
    def send_welcome_email() -> None:
        raise ConnectionError("smtp refused")

    run = one_task_job(client, send_welcome_email).trigger()
    error = run.reload().task("call-api").error
    assert error is not None
    assert "send_welcome_email" in error.traceback and "smtp refused" in error.traceback
    assert "trigger_nb/task.py" not in error.traceback


def test_a_task_whose_last_attempt_timed_out_is_both_error_kinds(client: TriggerClient) -> None:
    run = one_task_job(client, lambda: time.sleep(5), timeout=0.1).trigger()
    error = run.exception
    assert isinstance(error, TaskError) and isinstance(error, TaskTimeoutError)
    assert isinstance(error, TimeoutError)
    assert "timed out after 0.1 s" in str(error)


def test_attempts_and_executions_count_like_ints(client: TriggerClient) -> None:
    run = one_task_job(client, Flaky(failures=10), retry=FAST).trigger()
    error = run.exception
    assert isinstance(error, TaskError)
    assert error.attempts == 3 and len(error.attempts) == 3 and int(error.attempts) == 3
    assert error.attempts > 2 and error.attempts <= 3 and error.attempts != 4
    assert [a.number for a in error.attempts] == [1, 2, 3]
    again = run.resume()
    assert again.executions == 2 and len(again.executions) == 2
    assert again.executions[-1].failed == 1 and again.executions >= 2


def test_an_output_whose_class_is_gone_is_a_cache_read_error_not_a_second_side_effect(
    client: TriggerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "vanishing_models.py"
    module.write_text(
        "class Invoice:\n    def __init__(self, total):\n        self.total = total\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import vanishing_models  # type: ignore[import-not-found]

    calls: list[int] = []
    job = client.define_job(id="invoices")
    job.run(
        lambda payload, io, ctx: (
            io.run_task("bill", lambda: calls.append(1) or vanishing_models.Invoice(42)).total
        )
    )
    assert job.trigger().output == 42

    module.unlink()  # the class moved: the stored pickle names a module that is gone
    monkeypatch.delitem(sys.modules, "vanishing_models")
    run = job.trigger()

    assert calls == [1], "the side effect did not run again"
    assert run.status is RunStatus.FAILURE and run.error is not None
    message = run.error.message
    assert message.startswith(f"task 'bill' (run {run.id}): the stored output cannot be loaded")
    assert "ModuleNotFoundError" in message and "If its class moved or was renamed" in message
    assert "run_task('bill', ..., refresh=True)" in message
    # Reading it from Python (or a view) says the same: what failed and how to get past it.
    with pytest.raises(CacheReadError, match="cannot be loaded") as reading:
        _ = client.load_run(run.id).tasks[0].output
    assert f"`trigger-nb clear --run {run.id}`" in str(reading.value)
    assert "run_task('bill', ..., refresh=True)" in str(reading.value)


def test_a_timeout_names_its_task_as_data(client: TriggerClient) -> None:
    import asyncio

    async def slow() -> None:
        await asyncio.sleep(5)

    run = one_task_job(client, slow, timeout=0.1).trigger()
    timeout = run.exception.__cause__ if run.exception is not None else None
    assert isinstance(timeout, TaskTimeoutError)
    assert timeout.task_id == run.task("call-api").id


def test_every_attempt_is_read_back_from_the_store(client: TriggerClient) -> None:
    """The entry keeps only the record's fields that were set: attempts, their errors and the
    cleared error of a task that succeeded on a retry must all be among them."""
    from trigger_nb import RetryOptions

    job = client.define_job("attempts-stored")

    def flaky(task: Any) -> int:
        if task.attempt < 2:
            raise ValueError("first try fails")
        return task.attempt

    job.run(
        lambda payload, io, ctx: io.run_task(
            "flaky", flaky, retry=RetryOptions(limit=2, min_timeout=0, randomize=False)
        )
    )
    run = job.trigger()
    stored = client.load_run(run.id).task("flaky")  # a fresh handle: read from the store
    assert [(a.number, a.status.value) for a in stored.attempts] == [
        (1, "FAILED"),
        (2, "COMPLETED"),
    ]
    assert stored.attempts[0].error is not None
    assert stored.attempts[0].error.message == "first try fails"
    assert stored.record.error is None and stored.output == 2
