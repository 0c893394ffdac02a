"""Comparing two runs (SPEC 3.7): ``client.compare(a, b)`` and ``trigger-nb diff A B``: tasks
added, removed, or whose status, output, code fingerprint or duration changed."""

from __future__ import annotations

import json
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import FakeClock, RetryOptions, TriggerClient
from trigger_nb._cli.main import main


class Flaky:
    """Fails its first call after ``armed`` is set. It holds a lock, so a fingerprint counts it
    by its type only: arming it changes no task's code or inputs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.armed = False

    def __call__(self) -> str:
        if self.armed:
            self.armed = False
            raise TimeoutError("try again")
        return "done"


def define(client: TriggerClient, flaky: Flaky) -> Any:
    """One job whose payload decides what its run does, so two payloads give two runs."""
    job = client.define_job("report")

    @job.run
    def run(payload: dict[str, Any], io: Any, ctx: Any) -> None:
        io.run_task("same", lambda: {"rows": [1, 2, 3]})
        io.run_task("total", lambda: payload["total"])
        threshold = payload["threshold"]
        io.run_task("filter", lambda: threshold > 0)  # reads a closure value
        io.run_task(["page", payload["page"]], lambda: "page")  # a key only one run has
        # a retry's back-off counts in the task's duration (5 s on the fake clock)
        io.run_task(
            "fetch", lambda: flaky(), retry=RetryOptions(limit=2, min_timeout=5, randomize=False)
        )

        def parent() -> None:
            io.run_task("child", lambda: payload["total"] * 2)

        io.run_task("parent", parent)
        if payload["fail"]:
            io.run_task("load", lambda: 1 / 0)
        else:
            io.run_task("load", lambda: "loaded")

    return job


BASE = {"total": 10, "threshold": 1, "page": 1, "fail": False}


@pytest.fixture
def runs(client: TriggerClient) -> tuple[Any, Any]:
    flaky = Flaky()
    job = define(client, flaky)
    a = job.trigger(BASE)
    flaky.armed = True
    b = job.trigger({**BASE, "total": 11, "threshold": 2, "page": 2, "fail": True})
    assert a.status == "SUCCESS" and b.status == "FAILURE"
    return a, b


def test_compare_lists_added_removed_and_changed_tasks(
    client: TriggerClient, runs: tuple[Any, Any]
) -> None:
    a, b = runs
    diff = client.compare(a, b)
    assert [c.label for c in diff.added] == ["[page, 2]"]
    assert [c.label for c in diff.removed] == ["[page, 1]"]
    changed = {c.label: c for c in diff.changed}
    assert set(changed) == {"total", "filter", "fetch", "load", "parent", "parent › child"}
    # "total" reads the payload, which differs: its code's inputs changed too
    assert changed["total"].fields == ("output", "fingerprint")
    assert changed["total"].details == ("output: 10 → 11", "code: closure value 'payload' changed")
    assert changed["filter"].fields == ("fingerprint",)
    assert changed["filter"].details == ("code: closure value 'threshold' changed",)
    assert changed["fetch"].fields == ("duration",)
    assert changed["fetch"].details[0].startswith("duration: 0 ms → 5.00 s")
    assert changed["load"].fields[0] == "status"
    assert changed["load"].details[0] == "status: COMPLETED → FAILED"
    assert changed["parent › child"].details[0] == "output: 20 → 22"
    assert diff.unchanged == 1  # "same"
    assert not diff.same
    assert repr(diff).endswith("1 added, 1 removed, 6 changed, 1 unchanged>")


def test_a_run_compared_with_itself_is_the_same(
    client: TriggerClient, runs: tuple[Any, Any]
) -> None:
    a, _ = runs
    diff = client.compare(a.id, a.id[:12])  # ids and unique prefixes work too
    assert diff.same and diff.unchanged == len(a.all_tasks)
    assert "No task was added, removed or changed." in str(diff)
    assert "No task was added, removed or changed." in diff._repr_html_()


class Flipper:
    """The same dict, built in the other order on every call: equal values whose pickles
    differ. It holds a lock, so a fingerprint counts it by its type only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0

    def __call__(self) -> dict[str, int]:
        self.calls += 1
        return {"x": 1, "y": 2} if self.calls % 2 else {"y": 2, "x": 1}


def test_equal_values_that_pickle_differently_are_not_a_change(client: TriggerClient) -> None:
    job = client.define_job("dicts")
    flip = Flipper()

    @job.run
    def run(payload: int, io: Any, ctx: Any) -> None:
        io.run_task("dict", lambda: flip())

    a, b = job.trigger(1), job.trigger(2)
    assert pickle.dumps(a.task("dict").output) != pickle.dumps(b.task("dict").output)
    assert client.compare(a, b).same


def test_small_duration_jitter_is_not_a_change(client: TriggerClient, clock: FakeClock) -> None:
    job = client.define_job("jitter")

    @job.run
    def run(payload: int, io: Any, ctx: Any) -> None:
        io.run_task("t", lambda: 1)

    a, b = job.trigger(1), job.trigger(2)
    assert client.compare(a, b).same
    assert client.compare(a, b, min_duration_change=0.0, duration_ratio=1.0).changed


def test_the_comparison_prints_as_a_table_html_and_json(
    client: TriggerClient, runs: tuple[Any, Any]
) -> None:
    a, b = runs
    diff = client.compare(a, b)
    text = str(diff)
    assert text.splitlines()[0] == (
        f"Tasks of run {a.id} → run {b.id}: 1 added · 1 removed · 6 changed · 1 unchanged"
    )
    assert "+ [page, 2]" in text and "- [page, 1]" in text
    assert "~ total" in text and "output: 10 → 11" in text
    page = diff._repr_html_()
    assert '<tr class="tnb-diff-added">' in page and "closure value &#x27;threshold&#x27;" in page
    data = diff.to_json()
    assert (data["added"], data["removed"], data["changed"], data["unchanged"]) == (1, 1, 6, 1)
    json.dumps(data)  # plain data


def test_cli_diff(
    client: TriggerClient,
    runs: tuple[Any, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = runs
    store = str(tmp_path / "store")
    assert main(["diff", a.id, b.id, "--dir", store]) == 0
    out = capsys.readouterr().out
    assert "~ filter" in out and "code: closure value 'threshold' changed" in out
    assert main(["diff", a.id, b.id, "--dir", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] == 6
    assert main(["--dir", store, "diff", a.id, b.id, "--format", "html"]) == 0
    assert "<table" in capsys.readouterr().out
    assert main(["diff", a.id, "run_nope", "--dir", store]) == 1
    assert "no run matches 'run_nope'" in capsys.readouterr().err
    assert main(["diff", a.id, "--dir", store]) == 2
    assert main(["diff", a.id, b.id, "--format", "xml", "--dir", store]) == 2
