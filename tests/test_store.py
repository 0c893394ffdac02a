"""The store contract, against DiskStore and MemoryStore (trigger_nb/store.py)."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import diskcache
import pytest

from trigger_nb import (
    CacheReadError,
    DiskStore,
    Job,
    Store,
    StoreError,
    StoreVersionError,
    TriggerClient,
)
from trigger_nb._core.model import (
    EventInfo,
    LogRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskStatus,
)
from trigger_nb._store.backend import MemoryBackend
from trigger_nb._store.sealed import INLINE, INLINE_OUTPUT_BYTES, NO_OUTPUT, SEPARATE
from trigger_nb._store.snapshot import MANY_REREADS
from trigger_nb._store.store import FORMAT_VERSION

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def task(run_id: str, task_id: str, status: TaskStatus = TaskStatus.RUNNING) -> TaskRecord:
    return TaskRecord(
        id=task_id, run_id=run_id, key="s" + task_id, cache_key=task_id, idempotency_key="0" * 64,
        name=task_id, status=status, created_at=NOW,
    )  # fmt: skip


def run_record(run_id: str, job_id: str = "job") -> RunRecord:
    """A finished run's record, as the engine leaves one."""
    return RunRecord(
        id=run_id, job_id=job_id, job_name=job_id, job_version="1", client_id="c",
        status=RunStatus.SUCCESS, event=EventInfo(id="e", timestamp=NOW), created_at=NOW,
        updated_at=NOW, completed_at=NOW,
    )  # fmt: skip


def test_runs_round_trip_and_list_newest_first(any_store: Store) -> None:
    older, newer = run_record("run_a"), run_record("run_b")
    newer.created_at = datetime(2026, 2, 1, tzinfo=timezone.utc)
    any_store.save_run(older)
    any_store.save_run(newer)
    assert any_store.load_run("run_a") == older
    assert [r.id for r in any_store.list_runs()] == ["run_b", "run_a"]
    assert any_store.load_run("run_missing") is None


def test_completion_is_visible_in_one_bulk_snapshot(any_store: Store) -> None:
    any_store.write_task(task("run_a", "t1"))
    done = task("run_a", "t2", TaskStatus.COMPLETED)
    any_store.write_task(done, b"payload")
    any_store.append_log(
        LogRecord(run_id="run_a", execution=1, seq=1, level="info", message="m", time=NOW)
    )
    # Run ids that extend each other must not leak into each other's prefix reads.
    any_store.write_task(task("run_ab", "t9", TaskStatus.COMPLETED), b"other run")
    any_store.write_task(task("run_", "t8", TaskStatus.COMPLETED), b"other run")
    snapshot = any_store.load_snapshot("run_a")
    assert set(snapshot.entries) == {"t1", "t2"}
    assert snapshot.task("t2") == done and snapshot.task("t1") == task("run_a", "t1")
    first, second = snapshot.entry("t1"), snapshot.entry("t2")
    assert first is not None and first.placement == NO_OUTPUT and first.output is None
    assert second is not None and second.placement == INLINE and second.output == b"payload"
    assert any_store.read_output("run_a", "t2") == b"payload"
    assert [log.message for log in snapshot.logs] == ["m"]


def test_small_outputs_live_in_the_entry_and_big_ones_in_a_blob_of_their_own(
    any_store: Store,
) -> None:
    small, big = b"s" * INLINE_OUTPUT_BYTES, b"b" * (INLINE_OUTPUT_BYTES + 1)
    any_store.write_task(task("run_a", "small", TaskStatus.COMPLETED), small)
    any_store.write_task(task("run_a", "big", TaskStatus.COMPLETED), big)
    snapshot = any_store.load_snapshot("run_a")
    assert [snapshot.entry(t).placement for t in ("small", "big")] == [INLINE, SEPARATE]  # type: ignore[union-attr]
    assert any_store.backend.get("o:run_a:small") is None
    assert any_store.backend.get("o:run_a:big") is not None
    assert bytes(any_store.read_output("run_a", "small")) == small
    assert bytes(any_store.read_output("run_a", "big")) == big


def test_refresh_drops_the_old_output_with_the_running_record(any_store: Store) -> None:
    any_store.write_task(task("run_a", "t1", TaskStatus.COMPLETED), b"x" * 50_000)
    any_store.write_task(task("run_a", "t1"), drop_output=True)
    entry = any_store.load_snapshot("run_a").entry("t1")
    assert entry is not None and entry.placement == NO_OUTPUT
    assert any_store.backend.get("o:run_a:t1") is None


def test_delete_run_removes_only_that_run(any_store: Store) -> None:
    for run_id in ("run_a", "run_ab"):
        any_store.save_run(run_record(run_id))
        any_store.write_task(task(run_id, "t", TaskStatus.COMPLETED), b"x" * 50_000)
        any_store.write_task(task(run_id, "u", TaskStatus.COMPLETED), b"small")
        any_store.append_log(
            LogRecord(run_id=run_id, execution=1, seq=1, level="info", message="m", time=NOW)
        )
        any_store.save_run_output(run_id, b"out")
    any_store.delete_run("run_a")
    assert any_store.load_run("run_a") is None
    gone = any_store.load_snapshot("run_a")
    assert gone.entries == {} and gone.logs == []
    assert any_store.read_run_output("run_a") is None
    assert any_store.backend.get("o:run_a:t") is None
    assert bytes(any_store.read_output("run_ab", "t")) == b"x" * 50_000
    assert [r.id for r in any_store.list_runs()] == ["run_ab"]
    assert len(any_store.load_snapshot("run_ab").logs) == 1


def test_find_run_by_unique_prefix(any_store: Store) -> None:
    for run_id in ("run_abc1", "run_abc2", "run_xyz"):
        any_store.save_run(run_record(run_id))
    assert any_store.find_run("xy").id == "run_xyz"
    assert any_store.find_run("run_abc1").id == "run_abc1"
    with pytest.raises(LookupError, match="ambiguous"):
        any_store.find_run("abc")
    with pytest.raises(LookupError, match="no run matches"):
        any_store.find_run("nope")


def test_damaged_bytes_are_detected_by_the_checksum(any_store: Store) -> None:
    any_store.write_task(task("run_a", "t1", TaskStatus.COMPLETED), b"payload")
    any_store.write_task(task("run_a", "t2", TaskStatus.COMPLETED), b"x" * 50_000)
    for key in ("t:run_a:t1", "o:run_a:t2"):
        blob = any_store.backend.get(key)
        assert isinstance(blob, bytes)
        any_store.backend.write([(key, blob[:-1] + b"X")])
    for task_id in ("t1", "t2"):
        with pytest.raises(CacheReadError, match=f"task {task_id} of run run_a.*checksum") as hit:
            any_store.read_output("run_a", task_id)
        assert "refresh=True" in str(hit.value) and "trigger-nb clear --run run_a" in str(hit.value)
    any_store.backend.write([("t:run_a:t1", b"short"), ("o:run_a:t2", b"short")])
    for task_id in ("t1", "t2"):
        with pytest.raises(CacheReadError, match="truncated"):
            any_store.read_output("run_a", task_id)
    any_store.backend.write([("t:run_a:t1", "a str")])
    with pytest.raises(CacheReadError, match="a str where bytes belong"):
        any_store.read_output("run_a", "t1")
    with pytest.raises(CacheReadError, match="task t1 of run run_a"):
        any_store.load_snapshot("run_a").task("t1")


def test_a_lean_snapshot_answers_a_replay_as_the_whole_one_and_reads_records_again(
    any_store: Store,
) -> None:
    """What an execution nobody watches reads (issue 16): the replay's answers kept, the
    records read again, one at a time or many at once, for whoever asks."""
    checked = task("run_a", "checked", TaskStatus.COMPLETED)
    # "fingerprint" also as a params key: the record's last field is the one that counts
    checked.params = {"fingerprint": "not the key"}
    checked.fingerprint_names, checked.fingerprint = "python|code", "3.11|0123456789ab"
    any_store.write_task(checked, b"small output")
    any_store.write_task(task("run_a", "plain", TaskStatus.COMPLETED), b"x")
    any_store.write_task(task("run_a", "big", TaskStatus.COMPLETED), b"b" * 50_000)
    any_store.write_task(task("run_a", "running"))
    any_store.write_task(task("run_a", "damaged", TaskStatus.COMPLETED), b"payload")
    blob = any_store.backend.get("t:run_a:damaged")
    assert isinstance(blob, bytes)
    any_store.backend.write([("t:run_a:damaged", blob[:-1] + b"X")])
    ids = ["checked", "plain", "big", "running", "damaged"]

    whole, lean = any_store.load_snapshot("run_a"), any_store.load_snapshot("run_a", lean=True)
    assert sorted(lean.entries) == sorted(whole.entries) == sorted(ids)
    assert lean.digest("checked") == whole.digest("checked") == b"3.11|0123456789ab"
    assert lean.completed("checked") == (b"small output", 0.0)
    assert lean.completed("big") == (None, 0.0)
    for task_id in ids:
        assert lean.completed(task_id) == whole.completed(task_id)
        assert lean.digest(task_id) == whole.digest(task_id)
    for task_id in ["checked", "plain", "big", "running"]:
        assert lean.task(task_id) == whole.task(task_id)
        assert lean.entry(task_id) == whole.entry(task_id)
    assert lean.completed("damaged") is None  # not replayed: reading it says why
    # Read without fingerprint keys (on_code_change="ignore"): a task whose own option
    # compares gets its key from its record.
    blind = any_store.load_snapshot("run_a", lean=True, digests=False)
    assert [blind.digest(t) for t in ids] == [whole.digest(t) for t in ids]
    assert [blind.completed(t) for t in ids] == [whole.completed(t) for t in ids]
    with pytest.raises(CacheReadError, match=r"task damaged of run run_a.*checksum"):
        lean.entry("damaged")

    # Many records at once: one read, kept until asked for (the store may change after).
    many = any_store.load_snapshot("run_a", lean=True)
    many.prefetch(["checked", "plain", "big"])
    any_store.delete_run("run_a")
    assert many.task("checked") == checked
    assert [many.entry(t) is not None for t in ("plain", "big")] == [True, True]
    # An entry deleted since the lean read has no record (``trigger-nb clear`` meanwhile).
    assert lean.task("running") is not None and lean.entry("plain") is None
    assert blind.task("plain") is None
    assert lean.task("checked") is not None  # parsed before: kept


def test_a_lean_snapshot_asked_for_many_records_reads_the_rest_at_once(any_store: Store) -> None:
    """Every task stale after a code change: each replay explains it from its record."""
    ids = [f"t{i:03}" for i in range(MANY_REREADS + 10)]
    for task_id in ids:
        any_store.write_task(task("run_a", task_id, TaskStatus.COMPLETED), task_id.encode())
    whole, lean = any_store.load_snapshot("run_a"), any_store.load_snapshot("run_a", lean=True)
    for task_id in ids[:MANY_REREADS]:
        assert lean.task(task_id) == whole.task(task_id)
    any_store.delete_run("run_a")  # the rest were read with the last one asked for
    assert [lean.task(t) for t in ids[MANY_REREADS:]] == [whole.task(t) for t in ids[MANY_REREADS:]]


def test_lock_run_makes_a_second_holder_wait(any_store: Store) -> None:
    order: list[str] = []
    entered = threading.Event()

    def second() -> None:
        entered.wait()
        with any_store.lock_run("run_a"):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with any_store.lock_run("run_a"):
        entered.set()
        time.sleep(0.1)
        order.append("first")
    thread.join()
    assert order == ["first", "second"]


def test_removing_a_run_waits_for_its_holder_and_takes_its_lock_along(any_store: Store) -> None:
    any_store.save_run(run_record("run_a"))
    order: list[str] = []
    holding = threading.Event()

    def executing() -> None:
        with any_store.lock_run("run_a"):
            holding.set()
            time.sleep(0.1)
            order.append("executed")

    thread = threading.Thread(target=executing)
    thread.start()
    holding.wait()
    any_store.remove_run("run_a")
    order.append("removed")
    thread.join()
    assert order == ["executed", "removed"] and any_store.load_run("run_a") is None
    if isinstance(any_store, DiskStore):  # no lock file left behind per deleted run
        assert not (Path(any_store.location) / "locks" / "run_a.lock").exists()
    with any_store.lock_run("run_a"):  # the name can be locked again
        pass


def test_disk_store_never_evicts_and_refuses_unknown_formats(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "s")
    store.close()
    cache = diskcache.Cache(str(tmp_path / "s"))
    assert cache.eviction_policy == "none"
    cache.set("__format__", "99")
    cache.close()
    with pytest.raises(StoreVersionError, match=r"format version '99'.*upgrade trigger_nb"):
        DiskStore(tmp_path / "s")
    with diskcache.Cache(str(tmp_path / "s")) as cache:
        cache.set("__format__", "1")
    with pytest.raises(StoreVersionError, match=r"format version '1'.*earlier trigger_nb wrote"):
        DiskStore(tmp_path / "s")


def test_default_directory_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIGGER_NB_DIR", str(tmp_path / "env-store"))
    store = DiskStore()
    assert store.location == str((tmp_path / "env-store").resolve())
    store.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tiny tmpfs")
def test_a_full_disk_is_a_store_error_and_the_task_is_not_cached(tmp_path: Path) -> None:
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        from trigger_nb import TriggerClient

        client = TriggerClient("full", store=DiskStore(mount / "store"))
        job = client.define_job(id="big")
        job.run(lambda payload, io, ctx: io.run_task("huge", lambda: os.urandom(4_000_000)))
        try:
            error = job.trigger().exception
        except StoreError as raised:  # the run record itself could not be saved either
            error = raised
        assert isinstance(error, StoreError)
        assert "disk is not full" in str(error)
        run_id = job.run_id_for(None)
        snapshot = client.store.load_snapshot(run_id)
        assert all(e.placement == NO_OUTPUT for e in map(snapshot.entry, snapshot.entries))  # type: ignore[union-attr]
        client.store.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)])


def test_task_entries_live_in_a_table_of_their_own_beside_diskcaches(tmp_path: Path) -> None:
    """One executed task, one committed row in the entry table (one B-tree page); a big entry
    stays a row too; diskcache's Cache table keeps everything else."""
    store = DiskStore(tmp_path / "s")
    big = task("run_a", "t1", TaskStatus.COMPLETED)
    big.params = "p" * 40_000  # more than diskcache's 32 KB file threshold: still one row
    store.write_task(big, b"out")
    store.write_task(task("run_a", "t2", TaskStatus.COMPLETED), b"two")
    store.write_task(task("run_a", "t2", TaskStatus.COMPLETED), b"again")  # replaced in place
    assert not list((tmp_path / "s").rglob("*.val"))
    store.close()
    with diskcache.Cache(str(tmp_path / "s")) as cache:
        assert list(cache) == ["__format__"] and cache["__format__"] == str(FORMAT_VERSION)
    reopened = DiskStore(tmp_path / "s")
    assert reopened.load_snapshot("run_a").task("t1") == big
    assert bytes(reopened.read_output("run_a", "t2")) == b"again"
    reopened.delete_run("run_a")
    assert reopened.load_snapshot("run_a").entries == {}
    reopened.close()


def test_a_format_2_store_is_upgraded_when_opened_and_replays_as_before(tmp_path: Path) -> None:
    """Format 2 kept task entries in diskcache's Cache table (a big one in a file): opening the
    store moves them into the entry table, once, and marks it format 3; nothing re-runs."""
    calls: list[str] = []

    def make_job(store: DiskStore) -> Job:
        job = TriggerClient("c", store=store, on_code_change="ignore").define_job(id="j")

        @job.run
        def run(payload: Any, io: Any, ctx: Any) -> Any:
            small = io.run_task("small", lambda: calls.append("small") or 1)
            # params of more than 32 KB: format 2 kept this entry in a file of diskcache's
            big = io.run_task("big", lambda: calls.append("big") or 2, params="p" * 40_000)
            return small, big

        return job

    store = DiskStore(tmp_path / "s")
    first = make_job(store).trigger()
    assert first.output == (1, 2)
    entries = store.load_snapshot(first.id).entries
    store.close()
    with diskcache.Cache(str(tmp_path / "s")) as cache:  # the same store, as format 2 kept it
        for rest, value in entries.items():
            cache.set(f"t:{first.id}:{rest}", value)
        cache["__format__"] = "2"
        cache._sql("DELETE FROM TaskEntry")
    assert list((tmp_path / "s").rglob("*.val")), "format 2 kept the big entry in a file"

    upgraded = DiskStore(tmp_path / "s")
    again = make_job(upgraded).trigger()
    assert again.output == (1, 2) and calls == ["small", "big"]
    assert again.execution_history[-1].replayed == 2
    upgraded.close()
    assert not list((tmp_path / "s").rglob("*.val")), "the moved entry's file is gone"
    with diskcache.Cache(str(tmp_path / "s")) as cache:
        assert cache["__format__"] == str(FORMAT_VERSION)
        assert [key for key in cache if key.startswith("t:")] == []


def test_a_read_error_carries_its_reason_as_data(any_store: Store) -> None:
    any_store.write_task(task("run_a", "t1", TaskStatus.COMPLETED), b"x" * 50_000)
    any_store.backend.delete("o:run_a:t1")
    with pytest.raises(CacheReadError) as hit:
        any_store.read_output("run_a", "t1")
    assert hit.value.reason == "its stored output is missing" and hit.value.task_id == "t1"
    assert str(hit.value).startswith("task t1 of run run_a: its stored output is missing; ")


def test_a_newer_memory_store_format_names_no_directory() -> None:
    """The fix a version mismatch suggests fits the store: no directory for a store that has
    none (PostgreSQL gets the same wording; its own test runs on a real server)."""
    backend = MemoryBackend()
    backend.write([("__format__", "99")])
    with pytest.raises(StoreVersionError, match=r"upgrade trigger_nb, or use another store"):
        Store(backend)
