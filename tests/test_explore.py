"""Exploring past runs from Python: ``trigger_nb.list_runs`` / ``load_run``, the task tree, lazy
outputs, logs, attempts, records and DataFrames, and pruning old runs."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import trigger_nb
from trigger_nb import (
    DiskStore,
    FakeClock,
    InvalidOptionError,
    NotFoundError,
    RetryOptions,
    RunStatus,
    TaskStatus,
    TriggerClient,
)

DAY = 86400.0
UNPICKLED: Counter[str] = Counter()


def _unpickle(label: str) -> Report:
    UNPICKLED[label] += 1
    return Report(label)


class Report:
    """An output that counts how often it is unpickled, to prove outputs load lazily."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_unpickle, (self.label,))


def _build(store: Any, clock: FakeClock) -> dict[str, Any]:
    client = TriggerClient("explore", store=store, clock=clock)
    job = client.define_job("pipeline", version="1.0.0")

    @job.run
    def pipeline(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        io.logger.info("begin")

        def parent(task: Any) -> Report:
            task.logger.warn("slow source")
            io.run_task("leaf", lambda: Report("leaf"))
            return Report("parent")

        io.run_task("parent", parent)
        if payload.get("fail"):

            def flaky() -> None:
                raise ValueError("flaky source")

            io.run_task("flaky", flaky, retry=RetryOptions(limit=2, randomize=False))
        if payload.get("wait"):
            io.wait("pause", DAY)
        return {"done": True}

    ok = job.trigger({})
    clock.advance(DAY)
    failed = job.trigger({"fail": True})
    clock.advance(DAY)
    waiting = job.trigger({"wait": True})
    clock.advance(60)
    other = client.define_job("other", run=lambda payload, io, ctx: 7).trigger()
    return {"ok": ok.id, "failed": failed.id, "waiting": waiting.id, "other": other.id}


@pytest.fixture
def store_dir(tmp_path: Path) -> tuple[str, dict[str, str]]:
    store = DiskStore(tmp_path / "store")
    ids = _build(store, FakeClock())
    store.close()
    UNPICKLED.clear()
    return str(tmp_path / "store"), ids


def test_list_runs_newest_first_filtered_by_job_and_status(
    store_dir: tuple[str, dict[str, str]],
) -> None:
    directory, ids = store_dir
    everything = trigger_nb.list_runs(store=directory)
    assert [r.id for r in everything] == [ids["other"], ids["waiting"], ids["failed"], ids["ok"]]
    assert [r.id for r in trigger_nb.list_runs("pipeline", store=directory)] == [
        ids["waiting"],
        ids["failed"],
        ids["ok"],
    ]
    failed = trigger_nb.list_runs(status="FAILURE", store=directory)
    assert [r.id for r in failed] == [ids["failed"]]
    assert failed[0].error is not None and "flaky source" in failed[0].error.message
    assert trigger_nb.list_runs(job="nope", store=directory) == []
    assert [r.id for r in trigger_nb.list_runs(status="waiting", store=directory)] == [
        ids["waiting"]
    ]
    assert len(trigger_nb.list_runs(status=RunStatus.SUCCESS, store=directory)) == 2
    with pytest.raises(InvalidOptionError, match="status='done' is not a run status: use one of"):
        trigger_nb.list_runs(status="done", store=directory)


def test_the_default_store_is_explored_without_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIGGER_NB_DIR", str(tmp_path / "notebook-store"))
    client = trigger_nb.default_client()
    run = client.define_job("j", run=lambda payload, io, ctx: io.run_task("t", lambda: 1)).trigger()
    assert [r.id for r in trigger_nb.list_runs()] == [run.id]
    assert trigger_nb.load_run(run.id[:8]).task("t").output == 1


def test_load_run_by_prefix_and_clear_errors(store_dir: tuple[str, dict[str, str]]) -> None:
    directory, ids = store_dir
    run = trigger_nb.load_run(ids["ok"][4:12], store=directory)  # "run_" may be left off
    assert (run.id, run.job_id, run.status, run.output) == (
        ids["ok"],
        "pipeline",
        RunStatus.SUCCESS,
        {"done": True},
    )
    with pytest.raises(NotFoundError, match="no run matches 'zzz'"):
        trigger_nb.load_run("zzz", store=directory)
    with pytest.raises(NotFoundError, match="ambiguous"):
        trigger_nb.load_run("run_", store=directory)


def test_tasks_as_a_tree_and_flat(store_dir: tuple[str, dict[str, str]]) -> None:
    directory, ids = store_dir
    run = trigger_nb.load_run(ids["failed"], store=directory)
    tree = run.tasks
    assert [t.name for t in tree] == ["parent", "flaky"]
    assert [c.name for c in tree[0].children] == ["leaf"]
    assert [t.name for t in run.all_tasks] == ["parent", "leaf", "flaky"]
    assert [t.name for t in tree[0].walk()] == ["parent", "leaf"]
    assert (tree[0].status, tree[1].status) == (TaskStatus.COMPLETED, TaskStatus.FAILED)
    assert run.task("leaf").parent_id == tree[0].id  # record fields read through the view


def test_outputs_load_lazily(store_dir: tuple[str, dict[str, str]]) -> None:
    directory, ids = store_dir
    run = trigger_nb.load_run(ids["ok"], store=directory)
    views = run.all_tasks
    records = run.to_records()
    assert [r["output_type"] for r in records] == [f"{__name__}.Report"] * 2
    assert not UNPICKLED  # listing, tree and records never unpickle an output
    leaf = run.task("leaf").output
    assert (type(leaf), leaf.label, dict(UNPICKLED)) == (Report, "leaf", {"leaf": 1})
    assert views[0].output.label == "parent"
    assert dict(UNPICKLED) == {"leaf": 1, "parent": 1}


def test_task_logs_and_attempts(store_dir: tuple[str, dict[str, str]]) -> None:
    directory, ids = store_dir
    run = trigger_nb.load_run(ids["failed"], store=directory)
    assert [(log.level, log.message) for log in run.logs] == [
        ("info", "begin"),
        ("warn", "slow source"),
    ]
    assert [log.message for log in run.task("parent").logs] == ["slow source"]
    assert run.task("leaf").logs == []
    flaky = run.task("flaky")
    assert [a.number for a in flaky.attempts] == [1, 2]
    assert all(a.status is TaskStatus.FAILED for a in flaky.attempts)
    last_error = flaky.attempts[-1].error
    assert last_error is not None and last_error.summary() == "ValueError: flaky source"
    assert "raise ValueError" in last_error.traceback
    assert flaky.output is None  # a failed task has no output


def test_waiting_run_shows_its_wait(store_dir: tuple[str, dict[str, str]]) -> None:
    directory, ids = store_dir
    run = trigger_nb.load_run(ids["waiting"], store=directory)
    assert run.status is RunStatus.WAITING and run.wait_until is not None
    assert run.task("pause").status is TaskStatus.WAITING
    assert run.completed_at is None and run.output is None


def test_to_records_and_to_dataframe(store_dir: tuple[str, dict[str, str]]) -> None:
    directory, ids = store_dir
    run = trigger_nb.load_run(ids["failed"], store=directory)
    records = run.to_records()
    assert [(r["name"], r["status"], r["attempts"]) for r in records] == [
        ("parent", "COMPLETED", 1),
        ("leaf", "COMPLETED", 1),
        ("flaky", "FAILED", 2),
    ]
    assert records[1]["parent_id"] == records[0]["task_id"]
    assert records[2]["error"] == "ValueError: flaky source"
    frame = run.to_dataframe()
    assert list(frame["name"]) == ["parent", "leaf", "flaky"]
    assert frame.loc[frame["status"] == "FAILED", "attempts"].item() == 2


def test_to_dataframe_without_pandas_says_how_to_get_it(
    store_dir: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, ids = store_dir
    run = trigger_nb.load_run(ids["ok"], store=directory)
    monkeypatch.setitem(sys.modules, "pandas", None)  # what `import pandas` sees when it is absent
    with pytest.raises(ImportError, match=r"to_dataframe\(\) needs pandas: pip install pandas"):
        run.to_dataframe()
    assert len(run.to_records()) == 2  # records need no pandas


def test_store_prune_by_last_activity(tmp_path: Path) -> None:
    clock = FakeClock()
    store = DiskStore(tmp_path / "store")
    ids = _build(store, clock)  # ok at day 0, failed at day 1, waiting+other at day 2 (due day 3)
    start = FakeClock().now()
    assert store.prune(start + timedelta(days=0.5), dry_run=True) == [ids["ok"]]
    assert len(store.list_runs()) == 4  # a dry run deletes nothing
    assert store.prune(start + timedelta(days=2.5)) == [ids["ok"], ids["failed"], ids["other"]]
    assert [r.id for r in store.list_runs()] == [ids["waiting"]]  # its wait is due on day 3
    assert store.prune(start + timedelta(days=3.5)) == [ids["waiting"]]
    assert store.list_runs() == []
    store.close()
