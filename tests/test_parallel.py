"""io.parallel: children keyed by index, concurrent, results in item order."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

from trigger_nb import RunStatus, TaskError, TriggerClient


def test_twenty_items_in_order_once_each_across_retriggers(client: TriggerClient) -> None:
    effects: list[int] = []
    lock = threading.Lock()
    job = client.define_job(id="fan-out")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def square(n: int) -> int:
            time.sleep(random.uniform(0, 0.01))  # completion order differs from item order
            with lock:
                effects.append(n)
            return n * n

        return list(io.parallel("squares", range(20), square))

    first = job.trigger()
    assert first.output == [n * n for n in range(20)]
    for _ in range(3):
        assert job.trigger().output == [n * n for n in range(20)]
    assert sorted(effects) == list(range(20))
    parent = first.reload().task("squares")
    assert [c.cache_key for c in parent.children] == list(range(20))
    assert [c.output for c in parent.children] == [n * n for n in range(20)]


def test_async_items_run_concurrently(client: TriggerClient) -> None:
    job = client.define_job(id="async-fan-out")

    running = {"now": 0, "most": 0}

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[str]:
        async def fetch(name: str) -> str:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
            await asyncio.sleep(0.05)
            running["now"] -= 1
            return name.upper()

        return list(io.parallel("fetch", ["a", "b", "c", "d", "e"], fetch))

    assert job.trigger().output == ["A", "B", "C", "D", "E"]
    assert running["most"] == 5  # all five were in flight at once


def test_a_failed_item_fails_the_parent_and_reruns_alone(client: TriggerClient) -> None:
    calls: list[int] = []
    lock = threading.Lock()
    broken = {"on": True}
    job = client.define_job(id="fan-out-failure")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def work(n: int, task: Any) -> int:
            with lock:
                calls.append(n)
            if n == 3 and broken["on"]:
                raise ValueError("bad item 3")
            return n

        return list(io.parallel("work", range(5), work))

    failed = job.trigger()
    assert failed.status is RunStatus.FAILURE
    assert isinstance(failed.exception, TaskError) and failed.exception.cache_key == 3
    broken["on"] = False
    assert job.trigger().output == [0, 1, 2, 3, 4]
    assert sorted(calls) == [0, 1, 2, 3, 3, 4]
