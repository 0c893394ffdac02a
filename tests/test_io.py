"""io.run_task: replay, scoping, keys, outputs — on a real DiskStore."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import diskcache
import pytest
from pydantic import BaseModel

from trigger_nb import (
    CacheReadError,
    DuplicateCacheKeyError,
    InvalidCacheKeyError,
    InvalidOptionError,
    RunStatus,
    TaskOutputError,
    TaskStatus,
    TriggerClient,
)


class Profile(BaseModel):
    name: str
    tags: list[str]


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_side_effect_runs_once_across_five_retriggers(client: TriggerClient) -> None:
    sent: list[str] = []
    job = client.define_job(id="welcome")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        io.run_task("send-email", lambda: sent.append(payload["user"]))
        return f"welcomed {payload['user']}"

    runs = [job.trigger({"user": "u1"}) for _ in range(5)]
    assert sent == ["u1"]
    assert {r.id for r in runs} == {runs[0].id}
    assert runs[-1].executions == 5
    assert runs[-1].execution_history[-1].replayed == 1
    assert runs[-1].output == "welcomed u1"

    job.trigger({"user": "u2"})
    assert sent == ["u1", "u2"]
    fresh = job.trigger({"user": "u1"}, new_run=True)
    assert sent == ["u1", "u2", "u1"]
    assert fresh.id != runs[0].id


def test_same_key_under_two_parents_and_at_top_level_never_collides(
    client: TriggerClient,
) -> None:
    calls: list[str] = []
    job = client.define_job(id="scopes")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[str]:
        def parent(label: str) -> Any:
            return lambda: io.run_task("step", lambda: calls.append(label) or label)

        return [
            io.run_task("step", lambda: calls.append("top") or "top"),
            io.run_task("parent-a", parent("a")),
            io.run_task("parent-b", parent("b")),
        ]

    first = job.trigger()
    assert first.output == ["top", "a", "b"]
    assert sorted(calls) == ["a", "b", "top"]
    assert job.trigger().output == ["top", "a", "b"]
    assert len(calls) == 3
    tree = first.reload().tasks
    assert [t.name for t in tree] == ["step", "parent-a", "parent-b"]
    assert [c.name for c in tree[1].children] == ["step"]
    assert len({t.idempotency_key for t in first.all_tasks}) == 5


def test_look_alike_keys_are_four_tasks(client: TriggerClient) -> None:
    calls: list[object] = []
    job = client.define_job(id="keys")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[object]:
        return [
            io.run_task(k, lambda k=k: calls.append(k) or k) for k in (["a", "b"], "a:b", 1, "1")
        ]

    assert job.trigger().output == [["a", "b"], "a:b", 1, "1"]
    assert job.trigger().output == [["a", "b"], "a:b", 1, "1"]
    assert calls == [["a", "b"], "a:b", 1, "1"]


def test_duplicate_key_in_a_loop_names_the_key_and_the_fix(client: TriggerClient) -> None:
    job = client.define_job(id="dup")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        for user in ["u1", "u2"]:
            io.run_task("send-email", lambda user=user: user)

    run_ = job.trigger()
    assert run_.status is RunStatus.FAILURE
    assert isinstance(run_.exception, DuplicateCacheKeyError)
    message = str(run_.exception)
    assert "'send-email'" in message and "loop variable" in message
    assert "io.run_task(['send-email', item_id]" in message


def test_invalid_key_and_options_are_clear_errors(client: TriggerClient) -> None:
    job = client.define_job(id="bad")
    errors: list[BaseException] = []

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        for key, options in [
            ({"a": 1}, {}),
            ("t1", {"timeout": float("nan")}),
            ("t2", {"retry": 3}),
            ("t3", {"propertiez": []}),
            ("t4", {"properties": [{"label": "x"}]}),
        ]:
            try:
                io.run_task(key, lambda: None, **options)
            except (InvalidCacheKeyError, InvalidOptionError) as error:
                errors.append(error)

    job.trigger()
    texts = [str(e) for e in errors]
    assert len(texts) == 5
    assert "type dict" in texts[0]
    assert "timeout=nan" in texts[1]
    assert "RetryOptions" in texts[2]
    assert "unknown option(s) propertiez" in texts[3]
    assert "'label'" in texts[4]
    assert client.load_run(job.run_id_for(None)).all_tasks == []  # nothing was recorded


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        Decimal("1.10"),
        (1, "two", 3.0),
        {"a", "b"},
        Profile(name="Ada", tags=["x"]),
        Point(1, 2),
        None,
        b"\x00" * (10 * 1024 * 1024),
    ],
    ids=["datetime", "decimal", "tuple", "set", "pydantic", "dataclass", "none", "10MB-bytes"],
)
def test_first_run_and_replay_return_equal_values_of_the_same_type(
    client: TriggerClient, value: object
) -> None:
    calls = []
    job = client.define_job(id="types")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> Any:
        return io.run_task("value", lambda: calls.append(1) or value)

    first, second = job.trigger().output, job.trigger().output
    assert len(calls) == 1
    assert first == value and second == value
    assert type(first) is type(value) and type(second) is type(value)


def test_unpicklable_output_is_a_task_output_error_and_recorded_failed(
    client: TriggerClient,
) -> None:
    job = client.define_job(id="unpicklable")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("make-generator", lambda: (i for i in range(3)))

    run_ = job.trigger()
    assert isinstance(run_.exception, TaskOutputError)
    assert "'make-generator'" in str(run_.exception) and "generator" in str(run_.exception)
    task = run_.reload().task("make-generator")
    assert task.status is TaskStatus.FAILED
    assert task.error is not None and task.error.type.endswith("TaskOutputError")


def test_damaged_output_is_a_cache_read_error_and_never_reruns(
    tmp_path: Path, client: TriggerClient
) -> None:
    calls: list[int] = []
    job = client.define_job(id="damaged")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> Any:
        io.run_task("other", lambda: "fine")
        return io.run_task("big", lambda: calls.append(1) or b"x" * 100_000)

    first = job.trigger()
    task = first.task("big")
    cache = diskcache.Cache(str(tmp_path / "store"))
    row = cache._sql(
        "SELECT filename FROM Cache WHERE key = ?", (f"o:{first.id}:{task.id}",)
    ).fetchone()
    cache.close()
    path = tmp_path / "store" / row[0]
    path.write_bytes(path.read_bytes()[:5000])  # truncated

    second = job.trigger()
    assert isinstance(second.exception, CacheReadError)
    message = str(second.exception)
    assert "'big'" in message and "refresh=True" in message
    assert calls == [1]
    assert second.task("other").output == "fine"


def test_refresh_runs_the_task_again(client: TriggerClient) -> None:
    calls: list[int] = []
    refresh = {"on": False}
    job = client.define_job(id="refresh")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> int:
        count = io.run_task("count", lambda: calls.append(1) or len(calls), refresh=refresh["on"])
        return int(count)

    assert job.trigger().output == 1
    assert job.trigger().output == 1
    refresh["on"] = True
    assert job.trigger().output == 2
    refresh["on"] = False
    assert job.trigger().output == 2  # the refreshed value is what replays now
    assert len(calls) == 2


def test_task_handle_and_display_options_are_recorded(client: TriggerClient) -> None:
    seen: dict[str, Any] = {}
    job = client.define_job(id="handle")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        def body(task: Any) -> dict[str, str]:
            seen.update(
                id=task.id,
                key=task.cache_key,
                idem=task.idempotency_key,
                name=task.name,
                attempt=task.attempt,
                run_id=task.run_id,
            )
            task.output_properties = [{"label": "rows", "text": "3"}]
            task.logger.info("inside", rows=3)
            return {"user": "ada", "token": "s3cret"}

        io.run_task(
            ["fetch", 7],
            body,
            name="Fetch user",
            icon="database",
            description="reads the db",
            properties=[{"label": "table", "text": "users", "url": "https://example.invalid"}],
            params={"id": 7, "password": "hunter2"},
            redact=["token"],
        )

    run_ = job.trigger()
    task = run_.task("Fetch user")
    assert seen["key"] == ["fetch", 7] and seen["attempt"] == 1 and seen["run_id"] == run_.id
    assert task.id == seen["id"] and task.idempotency_key == seen["idem"]
    assert task.icon == "database" and task.description == "reads the db"
    assert task.properties[0]["url"] == "https://example.invalid"
    assert task.output_properties == [{"label": "rows", "text": "3"}]
    assert "s3cret" not in (task.output_preview or "") and "[REDACTED]" in (
        task.output_preview or ""
    )
    assert task.output == {"user": "ada", "token": "s3cret"}  # the real value is intact
    assert [(log.message, log.data) for log in task.logs] == [("inside", {"rows": 3})]


def test_async_run_function_and_concurrent_arun_task(client: TriggerClient) -> None:
    calls: list[int] = []
    job = client.define_job(id="async")

    @job.run
    async def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        async def work(i: int) -> int:
            await asyncio.sleep(0.01 * (5 - i))  # finish in reverse order
            calls.append(i)
            return i * 10

        results = await asyncio.gather(
            *(io.arun_task(["work", i], lambda i=i: work(i)) for i in range(5))
        )
        sync_of_async = io.run_task("sync-driving-async", lambda: work(9))
        return [*results, sync_of_async]

    assert job.trigger().output == [0, 10, 20, 30, 40, 90]
    assert job.trigger().output == [0, 10, 20, 30, 40, 90]
    assert sorted(calls) == [0, 1, 2, 3, 4, 9]


def test_task_id_and_idempotency_key_stay_the_same_across_executions(
    client: TriggerClient,
) -> None:
    keys: list[str] = []
    job = client.define_job(id="idem")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        def flaky(task: Any) -> None:
            keys.append(task.idempotency_key)
            if len(keys) < 3:
                raise ConnectionError("try again")

        io.run_task("charge", flaky)

    for _ in range(3):
        job.trigger()
    assert len(keys) == 3 and len(set(keys)) == 1


def test_replay_reports_the_time_it_saved(client: TriggerClient) -> None:
    import time

    job = client.define_job(id="time-saved")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("small", lambda: time.sleep(0.05))
        io.run_task("big", lambda: time.sleep(0.05) or b"x" * 100_000)  # stored as a file

    assert job.trigger().execution_history[-1].time_saved_seconds == 0
    replayed = job.trigger().execution_history[-1]
    assert replayed.replayed == 2 and replayed.executed == 0
    assert replayed.time_saved_seconds >= 0.1


LEAK_SCRIPT = """
import asyncio, gc, os, warnings
from trigger_nb import MemoryStore, TriggerClient

warnings.simplefilter("error", ResourceWarning)
client = TriggerClient("fds", store=MemoryStore())
job = client.define_job("async-tasks")

async def work():
    await asyncio.sleep(0)
    return 1

@job.run
def run(payload, io, ctx):
    return io.run_task("work", work)

async def inside_a_running_loop():  # as in Jupyter: nest_asyncio2 gets applied
    return job.trigger(new_run=True).output

assert asyncio.run(inside_a_running_loop()) == 1
gc.collect()
before = len(os.listdir("/proc/self/fd"))
for _ in range(50):  # no running loop now: each run drives its coroutine in a loop of its own
    assert job.trigger(new_run=True).output == 1
gc.collect()
print(len(os.listdir("/proc/self/fd")) - before)
"""


def test_async_tasks_driven_from_sync_code_leave_no_event_loop_open(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", LEAK_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr  # an unclosed loop or socket
    assert int(done.stdout) <= 0, "file descriptors leaked by 50 runs"
