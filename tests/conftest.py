"""Shared fixtures: a real DiskStore on tmp_path (its in-memory twin, and a PostgreSQL store on a
server the tests start), a fake clock."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_server import PostgresServer

from trigger_nb import DiskStore, FakeClock, MemoryStore, Store, TriggerClient
from trigger_nb._store.store import PostgresStore

_schemas = itertools.count(1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def disk_store(tmp_path: Path) -> Iterator[Store]:
    store = DiskStore(tmp_path / "store")
    yield store
    store.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session; each test takes its own schema."""
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """A fresh store's URL on the test server: a schema of its own."""
    return pg_server.url(f"test_{next(_schemas)}")


@pytest.fixture(params=["disk", "memory", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store contract holds for every store."""
    if request.param == "postgres":
        store: Store = PostgresStore(request.getfixturevalue("pg_url"))
    else:
        store = DiskStore(tmp_path / "store") if request.param == "disk" else MemoryStore()
    yield store
    store.close()


@pytest.fixture
def client(disk_store: Store, clock: FakeClock) -> TriggerClient:
    return TriggerClient("tests", store=disk_store, clock=clock)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "leaves_running: the test leaves a run RUNNING on purpose (a SIGKILLed worker, a crashed "
        "process); the no-run-left-RUNNING guard does not check it",
    )


@pytest.fixture(autouse=True)
def _no_run_left_running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    """After each test, no run in any store under its ``tmp_path`` may still be RUNNING: every
    run a test starts must end in a clear state (SUCCESS, FAILURE, WAITING, CANCELED), whatever
    went wrong in it. Tests that kill a worker on purpose carry ``@pytest.mark.leaves_running``."""
    yield
    if request.node.get_closest_marker("leaves_running") is not None:
        return
    left = []
    for database in tmp_path.rglob("cache.db"):
        try:
            store = DiskStore(database.parent)
        except Exception:  # a store the test damaged on purpose: not this guard's business
            continue
        try:
            runs = store.list_runs()
        except Exception:
            continue
        finally:
            store.close()
        where = database.parent.relative_to(tmp_path)
        left += [f"{r.id} (job {r.job_id!r}) in {where}" for r in runs if r.status == "RUNNING"]
    if left:
        pytest.fail(
            f"{len(left)} run(s) left RUNNING after the test: {', '.join(left)}; a run must end "
            "SUCCESS, FAILURE, WAITING or CANCELED (mark a test that kills a worker on purpose "
            "with @pytest.mark.leaves_running)",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _isolated_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Code that uses the default store writes under tmp_path, never into the checkout."""
    import trigger_nb._client.client

    monkeypatch.setenv("TRIGGER_NB_DIR", str(tmp_path / "default-store"))
    monkeypatch.delenv("TRIGGER_NB_STORE", raising=False)
    monkeypatch.setattr(trigger_nb._client.client, "_default", None)
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
