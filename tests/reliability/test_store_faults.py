"""A full disk and a read-only store directory: a clear StoreError, and a side effect whose result
could not be stored is never reported as cached.

Tests run as root here, where ``chmod`` does not stop writes, so the faults are real file systems:
a 8 MB tmpfs that a task fills up, and a read-only bind mount of a store directory. (A read-only
remount under an open store fails with "mount point is busy", so "read-only" is tested at open.)
Without the right to mount, the tests skip and say why.
"""

from __future__ import annotations

import collections
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import DiskStore, Job, StoreError, TaskStatus, TriggerClient

pytestmark = pytest.mark.slow


def mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a test file system here ({done.stderr.strip()}); needs root")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs: small enough for a task to fill it."""
    point = tmp_path / "small-disk"
    point.mkdir()
    mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(point))
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a writable directory, a read-only bind mount of it)."""
    real, view = tmp_path / "store", tmp_path / "read-only-view"
    real.mkdir()
    view.mkdir()
    mount("--bind", str(real), str(view))
    try:
        mount("-o", "remount,ro,bind", str(view))
        yield real, view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def define(client: TriggerClient, calls: collections.Counter[str], fault: Any) -> Job:
    job = client.define_job("faulty-disk")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        io.run_task("before", lambda: calls.update(["before"]) or "before")
        io.run_task("fault", lambda: calls.update(["fault"]) or fault())
        return str(io.run_task("after", lambda: calls.update(["after"]) or "after"))

    return job


def fill(directory: Path) -> None:
    with open(directory / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC


@pytest.mark.parametrize("output_bytes", [1_000, 100_000], ids=["inline output", "file output"])
def test_a_full_disk_is_a_store_error_and_the_result_is_not_cached(
    small_disk: Path, output_bytes: int
) -> None:
    calls: collections.Counter[str] = collections.Counter()
    store_dir = small_disk / "store"
    client = TriggerClient("faults", store=DiskStore(store_dir))

    def fill_the_disk_once() -> bytes:
        if calls["fault"] == 1:
            fill(small_disk)
        return b"y" * output_bytes

    job = define(client, calls, fill_the_disk_once)
    try:
        error: BaseException | None = job.trigger().exception
    except StoreError as raised:
        error = raised
    assert isinstance(error, StoreError), repr(error)
    message = str(error)
    assert f"cannot write the trigger_nb store at {store_dir}" in message, message
    assert "disk is not full" in message and "TRIGGER_NB_DIR" in message, message

    (small_disk / "filler").unlink()
    store = DiskStore(store_dir)
    (run_record,) = store.list_runs()
    snapshot = store.load_snapshot(run_record.id)
    fault_records = [t for t in snapshot.tasks() if t.cache_key == "fault"]
    assert all(t.status is not TaskStatus.COMPLETED for t in fault_records)
    store.close()
    assert calls == {"before": 1, "fault": 1}

    rerun = job.trigger()

    assert rerun.status == "SUCCESS", rerun.error
    assert calls == {"before": 1, "fault": 2, "after": 1}, "the uncached task ran again"


def test_a_read_only_store_directory_is_a_store_error_before_any_side_effect(
    read_only_view: tuple[Path, Path],
) -> None:
    real, view = read_only_view
    calls: collections.Counter[str] = collections.Counter()
    writable = DiskStore(real)
    define(TriggerClient("faults", store=writable), calls, lambda: "fault").trigger()
    writable.close()
    assert calls == {"before": 1, "fault": 1, "after": 1}

    for directory in (view, view / "not-yet-created"):
        with pytest.raises(StoreError) as caught:
            TriggerClient("faults", store=str(directory))
        message = str(caught.value)
        assert f"trigger_nb store at {directory}" in message, message
        assert "writable" in message and "TRIGGER_NB_DIR" in message, message
    assert calls == {"before": 1, "fault": 1, "after": 1}, "nothing ran against the read-only store"
