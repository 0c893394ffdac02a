"""Re-running part of a run from Python (SPEC 3.7): ``run.refresh_task(task)``,
``run.rerun(from_task=task)``, the superseded attempts and outputs kept in each task's history,
and the errors for an unknown task or a job not defined here.

Side effects are counted in a file (``Effects``), so counting never changes what a task reads
(a shared counter would make the tasks stale, see tests/test_code_change.py).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import (
    CacheReadError,
    DiskStore,
    InvalidCacheKeyError,
    JobDefinitionError,
    JobRun,
    MemoryStore,
    NotFoundError,
    Store,
    TriggerClient,
)
from trigger_nb._render.html import render_html
from trigger_nb._render.text import render_text
from trigger_nb.errors import TaskNotFoundError


class Effects:
    """Side effects, one line per call in a file; a task's output is ``name#n``, n the number
    of times its side effect ran so far (so a re-run returns something new)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, name: str) -> str:
        with self.path.open("a") as file:
            file.write(name + "\n")
        return f"{name}#{self.count(name)}"

    def count(self, name: str) -> int:
        return self.all().count(name)

    def all(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []

    def counts(self) -> dict[str, int]:
        return {name: self.count(name) for name in ("a", "p", "c1", "c2", "c3", "d")}


@pytest.fixture
def effect(tmp_path: Path) -> Effects:
    return Effects(tmp_path / "effects.log")


def define(client: TriggerClient, effect: Effects) -> Any:
    """``a``; then ``p`` with subtasks ``c1``, ``c2``, ``c3``; then ``d``."""
    job = client.define_job("partial", name="Partial re-runs")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[str]:
        a = io.run_task("a", lambda: effect("a"))

        def parent() -> list[str]:
            effect("p")
            return [
                io.run_task(name, lambda name=name: effect(name)) for name in ("c1", "c2", "c3")
            ]

        p = io.run_task("p", parent)
        d = io.run_task("d", lambda: effect("d"))
        return [a, *p, d]

    return job


ONCE = {"a": 1, "p": 1, "c1": 1, "c2": 1, "c3": 1, "d": 1}


@pytest.fixture
def first(client: TriggerClient, effect: Effects) -> JobRun:
    run = define(client, effect).trigger()
    assert run.status == "SUCCESS", run.error
    assert effect.counts() == ONCE
    return run


def test_refresh_a_top_level_task_runs_exactly_it_on_the_next_execution(
    first: JobRun, effect: Effects
) -> None:
    returned = first.refresh_task("a")
    assert returned is first  # a handle: updated and returned
    assert effect.counts() == ONCE  # marking runs nothing
    assert first.task("a").refresh_pending
    assert [t.record.name for t in first.all_tasks if t.refresh_pending] == ["a"]
    assert first.resume() is first
    assert effect.counts() == {**ONCE, "a": 2}
    assert first.output == ["a#2", "c1#1", "c2#1", "c3#1", "d#1"]
    assert not any(t.refresh_pending for t in first.all_tasks)  # the mark is used up
    latest = first.executions[-1]
    assert (latest.executed, latest.replayed) == (1, 5)
    first.resume()  # and the next execution replays it again
    assert effect.counts() == {**ONCE, "a": 2}


def test_refresh_a_parent_runs_it_and_its_subtasks(first: JobRun, effect: Effects) -> None:
    first.refresh_task("p").resume()
    assert effect.counts() == {"a": 1, "p": 2, "c1": 2, "c2": 2, "c3": 2, "d": 1}


def test_refresh_a_subtask_runs_it_and_the_parent_that_reaches_it(
    first: JobRun, effect: Effects
) -> None:
    c2 = next(t for t in first.all_tasks if t.record.name == "c2")
    first.refresh_task(c2).resume()  # a TaskView
    # The parent's own code runs again to reach c2; its other subtasks are replayed.
    assert effect.counts() == {**ONCE, "p": 2, "c2": 2}
    assert first.output == ["a#1", "c1#1", "c2#2", "c3#1", "d#1"]


def test_a_task_id_names_the_task_too(first: JobRun, effect: Effects) -> None:
    first.refresh_task(first.task("d").id).resume()
    assert effect.counts() == {**ONCE, "d": 2}


def test_rerun_from_a_task_runs_it_and_every_later_one(first: JobRun, effect: Effects) -> None:
    c2 = next(t for t in first.all_tasks if t.record.name == "c2")
    assert first.rerun(from_task=c2) is first
    # c2, c3 and d started after c2; p reaches them; a and c1 started before: replayed.
    assert effect.counts() == {"a": 1, "p": 2, "c1": 1, "c2": 2, "c3": 2, "d": 2}
    assert first.output == ["a#1", "c1#1", "c2#2", "c3#2", "d#2"]
    assert first.executions == 2
    assert not any(t.refresh_pending for t in first.all_tasks)


def test_rerun_from_the_same_task_twice_runs_every_later_task_both_times(
    first: JobRun, effect: Effects
) -> None:
    """The second re-run counts as later the tasks the first one ran again (they were
    reached by the latest execution, not left untouched by it)."""
    first.rerun(from_task="p")
    first.rerun(from_task="p")
    assert effect.counts() == {"a": 1, "p": 3, "c1": 3, "c2": 3, "c3": 3, "d": 3}


def test_rerun_from_a_top_level_key(first: JobRun, effect: Effects) -> None:
    first.rerun(from_task="p")
    assert effect.counts() == {"a": 1, "p": 2, "c1": 2, "c2": 2, "c3": 2, "d": 2}


def test_rerun_without_a_task_runs_every_task(first: JobRun, effect: Effects) -> None:
    first.rerun()
    assert effect.counts() == dict.fromkeys(ONCE, 2)
    first.resume()  # plain execution again: everything replayed
    assert effect.counts() == dict.fromkeys(ONCE, 2)


def test_rerun_order_is_the_order_of_the_latest_execution_not_of_the_last_runs(
    first: JobRun, effect: Effects
) -> None:
    """a ran again after d (refreshed alone), yet it comes before p in the run."""
    first.refresh_task("a").resume()
    first.rerun(from_task="p")
    assert effect.counts() == {"a": 2, "p": 2, "c1": 2, "c2": 2, "c3": 2, "d": 2}


def test_superseded_attempts_and_outputs_stay_in_the_history(
    first: JobRun, effect: Effects
) -> None:
    first.rerun(from_task="d")
    first.rerun(from_task="d")
    d = first.task("d")
    assert d.output == "d#3"
    history = d.history
    assert [(h.number, h.execution, h.superseded) for h in history] == [
        (1, 1, True),
        (2, 2, True),
        (3, 3, False),
    ]
    assert [h.output for h in history] == ["d#1", "d#2", "d#3"]
    assert history[0].output_preview == "'d#1'"  # what it was, without loading it
    assert "superseded" in repr(history[0])
    assert d.attempts[0].superseded and not d.attempts[-1].superseded
    # every view says so
    text = render_text(first.run_data())
    assert "3 attempts" in text
    page = render_html(first.run_data())
    assert page.count("completed · superseded (was &#x27;d#") == 2


def test_an_attempt_that_did_not_complete_has_no_output(
    client: TriggerClient, effect: Effects
) -> None:
    job = client.define_job("flaky")
    state = {"fail": True}

    @job.run
    def work(payload: Any, io: Any, ctx: Any) -> str:
        def flaky() -> str:
            if state["fail"]:
                raise RuntimeError("not yet")
            return effect("f")

        return str(io.run_task("f", flaky))

    assert job.trigger().status == "FAILURE"
    state["fail"] = False
    run = job.trigger()
    assert [h.output for h in run.task("f").history] == [None, "f#1"]


def test_views_mark_the_tasks_pending_until_they_run(first: JobRun) -> None:
    first.refresh_task("a")
    assert "refresh pending" in render_text(first.run_data())
    assert "tnb-refresh-pending" in render_html(first.run_data())
    first.resume()
    assert "refresh pending" not in render_text(first.run_data())


def test_a_big_output_superseded_stays_readable(tmp_path: Path) -> None:
    """Outputs over 8 KiB live in a value of their own (over 32 KB, a file): moved as is."""
    client = TriggerClient("big", store=DiskStore(tmp_path / "store"))
    job = client.define_job("big")
    sizes = iter([50_000, 20_000, 10])

    @job.run
    def work(payload: Any, io: Any, ctx: Any) -> int:
        return len(io.run_task("blob", lambda: b"x" * next(sizes)))

    run = job.trigger()
    run.rerun(from_task="blob")
    run.rerun(from_task="blob")
    assert [len(h.output) for h in run.task("blob").history] == [50_000, 20_000, 10]
    assert run.output == 10


def test_refresh_true_and_code_change_rerun_keep_the_earlier_output(
    client: TriggerClient, effect: Effects
) -> None:
    """The same history for every way a completed task runs again (SPEC 3.5: "its earlier
    output stays in its history")."""
    job = client.define_job("options")
    settings = {"refresh": False}

    @job.run
    def work(payload: Any, io: Any, ctx: Any) -> str:
        return str(io.run_task("t", lambda: effect("t"), refresh=settings["refresh"]))

    job.trigger()
    settings["refresh"] = True
    run = job.trigger()
    assert [(h.superseded, h.output) for h in run.task("t").history] == [
        (True, "t#1"),
        (False, "t#2"),
    ]


def test_unknown_task_names_it_and_the_closest_ones(first: JobRun) -> None:
    with pytest.raises(TaskNotFoundError) as raised:
        first.refresh_task("dd")
    error = raised.value
    assert isinstance(error, KeyError) and isinstance(error, NotFoundError)
    assert str(error) == f"run {first.id} has no task 'dd'; closest: 'd'"  # prose, not repr
    assert error.task == "dd"
    with pytest.raises(KeyError, match="has no task 'zzz'; its tasks: 'a', 'p', 'd'"):
        first.rerun(from_task="zzz")
    with pytest.raises(InvalidCacheKeyError):
        first.refresh_task(object())
    assert first.executions == 1  # nothing ran


def test_a_nested_key_is_not_a_top_level_key(client: TriggerClient, effect: Effects) -> None:
    job = client.define_job("twins")

    @job.run
    def work(payload: Any, io: Any, ctx: Any) -> None:
        for parent in ("left", "right"):
            io.run_task(parent, lambda: io.run_task("x", lambda: effect("x")))

    run = job.trigger()
    with pytest.raises(TaskNotFoundError, match="'x' is not a top-level cache key; a subtask"):
        run.refresh_task("x")
    left_x = run.task("left").children[0]
    run.refresh_task(left_x).resume()
    assert effect.count("x") == 3  # only the left one ran again


def test_a_task_of_another_run_is_refused(client: TriggerClient, effect: Effects) -> None:
    job = define(client, effect)
    one, two = job.trigger(), job.trigger(new_run=True)
    with pytest.raises(TaskNotFoundError, match="belongs to run"):
        two.refresh_task(one.task("a"))


def test_rerun_needs_the_job_defined_here_and_marks_nothing_without_it(
    first: JobRun, disk_store: Store, effect: Effects
) -> None:
    elsewhere = TriggerClient("tests", store=disk_store).load_run(first.id)  # no job defined
    with pytest.raises(JobDefinitionError, match="not defined in this process") as raised:
        elsewhere.rerun(from_task="a")
    assert "refresh_task" in str(raised.value) and "trigger-nb refresh" in str(raised.value)
    assert disk_store.refresh_marks(first.id) == set()
    bare = JobRun(disk_store, first.record)  # a handle without a client
    with pytest.raises(JobDefinitionError, match="no client"):
        bare.rerun()
    # refresh_task needs no job: the next execution, wherever the job is defined, runs it
    elsewhere.refresh_task("c3")
    first.resume()
    assert effect.counts() == {**ONCE, "p": 2, "c3": 2}


def test_marks_and_history_go_with_the_run(first: JobRun, disk_store: Store) -> None:
    first.rerun(from_task="d")
    first.refresh_task("a")
    backend = disk_store.backend
    assert backend.scan(f"h:{first.id}:") and backend.scan(f"f:{first.id}:")
    disk_store.remove_run(first.id)
    assert not backend.scan(f"h:{first.id}:") and not backend.scan(f"f:{first.id}:")


@pytest.mark.parametrize("store_kind", ["disk", "memory"])
def test_both_stores_keep_the_history(store_kind: str, tmp_path: Path, effect: Effects) -> None:
    store = DiskStore(tmp_path / "s") if store_kind == "disk" else MemoryStore()
    run = define(TriggerClient("both", store=store), effect).trigger()
    run.rerun(from_task="c3")
    c3 = next(t for t in run.all_tasks if t.record.name == "c3")
    assert [h.output for h in c3.history] == ["c3#1", "c3#2"]
    raw = store.read_superseded_output(run.id, c3.id, 1)
    assert pickle.loads(raw) == "c3#1"
    store.close()


def test_a_superseded_output_lost_or_damaged_says_so(first: JobRun, disk_store: Store) -> None:
    first.rerun(from_task="d")
    d = first.task("d")
    key = f"h:{first.id}:{d.id}:1"
    blob = disk_store.backend.get(key)
    assert isinstance(blob, bytes)
    disk_store.backend.write([(key, blob[:-1] + b"?")])
    with pytest.raises(CacheReadError, match=r"superseded output of attempt 1 .* damaged"):
        _ = d.history[0].output
    disk_store.backend.delete(key)
    with pytest.raises(CacheReadError, match="it is not in the store"):
        _ = d.history[0].output
    assert d.history[1].output == "d#2"  # the current one is unaffected


def test_a_long_superseded_output_is_shortened_in_the_views(client: TriggerClient) -> None:
    job = client.define_job("long")
    texts = iter(["x" * 500, "y"])

    @job.run
    def work(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("t", lambda: next(texts))

    run = job.trigger()
    run.rerun(from_task="t")
    page = render_html(run.run_data())
    assert "completed · superseded (was &#x27;" + "x" * 38 + "…)" in page
