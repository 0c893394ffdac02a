"""Shared fixtures: a real DiskStore on tmp_path (and its in-memory twin), a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
