"""Shared fixtures: a real DiskStore on tmp_path (and its in-memory twin), a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import DiskStore, FakeClock, MemoryStore, Store, TriggerClient


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def disk_store(tmp_path: Path) -> Iterator[Store]:
    store = DiskStore(tmp_path / "store")
    yield store
    store.close()


@pytest.fixture(params=["disk", "memory"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store contract holds for both stores."""
    store = DiskStore(tmp_path / "store") if request.param == "disk" else MemoryStore()
    yield store
    store.close()


@pytest.fixture
def client(disk_store: Store, clock: FakeClock) -> TriggerClient:
    return TriggerClient("tests", store=disk_store, clock=clock)


@pytest.fixture(autouse=True)
def _isolated_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Code that uses the default store writes under tmp_path, never into the checkout."""
    import trigger_nb.job

    monkeypatch.setenv("TRIGGER_NB_DIR", str(tmp_path / "default-store"))
    monkeypatch.setattr(trigger_nb.job, "_default", None)
    yield


LoopRunner = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def run_loop() -> LoopRunner:
    """``asyncio.run`` for tests: once a test has driven a task inside a running loop,
    nest_asyncio2 has replaced ``asyncio.run`` by one that leaves its loop (and a socket pair)
    open, and the unclosed sockets then fail whichever later test collects them."""

    def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coroutine)
        finally:
            loop.close()

    return run
