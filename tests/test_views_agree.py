"""Every view of one run tells the same story: the text outline, the static HTML, the
interactive tree, the explorer, and the command line (``runs``, ``show``, ``export``).

One real run on a real store, executed twice: the second execution replays a top-level task and
a parent (whose subtasks count as replayed with it), runs a new task, no longer calls a task the
first one completed, and retries a flaky task for the third time. Each view is read as a user
reads it (what it prints), and all must agree on which tasks were replayed and how many, how long
the run worked, and the attempts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import FakeClock, JobRun, RetryOptions, TriggerClient
from trigger_nb._cli.main import main
from trigger_nb._render.html import render_html
from trigger_nb._render.text import render_text
from trigger_nb._widgets.explorer import RunsExplorer
from trigger_nb._widgets.live import LiveRunView
from trigger_nb._widgets.run_view import RunView, run_data

DAY = 86400.0
REPLAYED = {"a", "parent", "c1", "c2", "g"}  # "gone" completed earlier but was not used again
ACTIVE = "active 2.30 s over 2 executions, 1d 00h span"  # 1.80 s + 0.50 s of work, a day apart


@pytest.fixture
def live() -> LiveRunView:
    """The cell's view that follows the second execution live, then shows it finished."""
    return LiveRunView(title="story")


@pytest.fixture
def run(client: TriggerClient, clock: FakeClock, live: LiveRunView) -> JobRun:
    state = {"second": False}

    def body(payload: Any, io: Any, ctx: Any) -> None:
        def a() -> int:
            clock.advance(0.1)
            return 1

        io.run_task("a", a)

        def parent() -> None:
            io.run_task("c1", lambda: 1)
            io.run_task("c2", lambda: io.run_task("g", lambda: 2))

        io.run_task("parent", parent)
        io.run_task("new" if state["second"] else "gone", lambda: 3)

        def flaky(task: Any) -> int:
            clock.advance(0.2 + 0.1 * task.attempt)  # attempts take 300, 400, then 500 ms
            if not state["second"]:
                raise ValueError("not yet")
            return 5

        io.run_task("flaky", flaky, retry=RetryOptions(limit=2, randomize=False))

    job = client.define_job("story", run=body)
    job.trigger()  # fails at "flaky" after two attempts and a 1 s back-off: 1.80 s
    clock.advance(DAY)
    state["second"] = True
    second = job.trigger(listeners=[live.listener])
    live.finish(second)  # the cell's view: from the live tree to the finished one
    return second


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), argv
    return out


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_every_view_marks_the_same_replayed_tasks_and_counts_them(
    run: JobRun, live: LiveRunView, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    n = len(REPLAYED)

    text = render_text(run_data(run))
    assert f" · {n} replayed · " in text.splitlines()[1]
    marked = {m[1] for m in re.finditer(r"^ *↻ (\S+) · ", text, re.M)}
    assert marked == REPLAYED
    assert "  ✓ gone · " in text  # completed by the first execution, not replayed by the second

    page = render_html(run_data(run))
    assert re.search(rf'<div class="tnb-counts">\d+ executed · {n} replayed · ', page)
    rows = re.findall(r'class="tnb-task tnb-st-(\w+)"><summary>.*?"tnb-name">(\w+)<', page)
    assert {name for status, name in rows if status == "replayed"} == REPLAYED

    for tree in (RunView(run), live.open_tree()):  # the live view's, made on demand
        assert f" · {n} replayed · " in tree.header.value
        assert len(tree.rows) == 8  # every row is open: a small tree
        buttons = [row.button for row in tree.rows.values()]
        assert {b.description for b in buttons if "tnb-st-replayed" in b._dom_classes} == REPLAYED
    saved = live._repr_mimebundle_()  # what the notebook keeps
    assert f" · {n} replayed · " in saved["text/plain"]
    assert set(re.findall(r"^ *↻ (\S+) · ", saved["text/plain"], re.M)) == REPLAYED

    listed = RunsExplorer(run._store)
    assert columns(listed.to_text().splitlines()[1])[6] == str(n)  # replayed
    picked = listed.select(run.id)
    assert f" · {n} replayed · " in picked.header.value

    table = cli(capsys, "runs", "--dir", store).splitlines()
    assert columns(table[0])[-1] == "REPLAYED" and columns(table[1])[-1] == str(n)

    shown = cli(capsys, "show", run.id, "--dir", store)
    assert f"(last: 2 executed, {n} replayed, 0 failed" in shown
    tasks = shown[shown.index("\nTASK") + 1 :].splitlines()[1:]
    assert {columns(t)[0] for t in tasks if columns(t)[1] == "REPLAYED"} == REPLAYED

    exported = json.loads(cli(capsys, "export", run.id, "--dir", store))
    assert exported["replayed"] == n == exported["execution_history"][-1]["replayed"]

    def replayed(tasks: list[dict[str, Any]]) -> set[str]:
        found = {t["name"] for t in tasks if t["replayed"]}
        return found.union(*(replayed(t["children"]) for t in tasks))

    assert replayed(exported["tasks"]) == REPLAYED


def test_every_view_shows_the_active_time_and_the_span_apart(
    run: JobRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    assert f" · {ACTIVE}\n" in render_text(run_data(run))
    assert f'<span class="tnb-duration">{ACTIVE}</span>' in render_html(run_data(run))
    assert ACTIVE in RunView(run).header.value
    assert re.search(rf"^  duration +{ACTIVE}$", cli(capsys, "show", run.id, "--dir", store), re.M)
    # the run lists: its active time (a day of waiting between executions is not work)
    assert columns(cli(capsys, "runs", "--dir", store).splitlines()[1])[4] == "2.30 s"
    assert columns(RunsExplorer(run._store).to_text().splitlines()[1])[4] == "2.30 s"
    listed = json.loads(cli(capsys, "runs", "--json", "--dir", store))[0]
    assert listed["duration_seconds"] == listed["active_seconds"] == pytest.approx(2.3)
    assert listed["wall_seconds"] == pytest.approx(DAY + 2.3)
    exported = json.loads(cli(capsys, "export", run.id, "--dir", store))
    assert exported["duration_seconds"] == pytest.approx(2.3)


def test_every_view_numbers_attempts_across_executions_with_their_own_time(
    run: JobRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    expected = [("1", "1", "300 ms"), ("2", "1", "400 ms"), ("3", "2", "500 ms")]

    assert re.search(r"^  ✓ flaky · .* · 3 attempts · completed$", render_text(run_data(run)), re.M)
    page = render_html(run_data(run))
    flaky = page[page.index('"tnb-name">flaky<') :]
    assert "3 attempts" in flaky[: flaky.index("</summary>")]
    attempts = re.findall(
        r'<tr class="tnb-attempt"><td>#(\d)</td><td>execution (\d)</td><td>[^<]+</td>'
        r"<td>([^<]+)</td>",
        flaky[: flaky.index("</details>")],
    )
    assert attempts == expected

    tree = RunView(run)
    row = next(r for r in tree.rows.values() if r.button.description == "flaky")
    assert "3 attempts" in row.meta.value
    row.toggle_details()
    assert re.findall(r"<td>#(\d)</td><td>execution (\d)</td>", row.details.children[0].value) == [
        e[:2] for e in expected
    ]

    shown = cli(capsys, "show", run.id, "--dir", store)
    assert re.search(r"^flaky +COMPLETED +\S+( ms| s) +3 ", shown, re.M)
    details = cli(capsys, "show", run.id, "--task", "flaky", "--dir", store)
    assert "Attempts (3)" in details
    lines = re.findall(r"^  #(\d)  execution (\d)  [-\d]+ [:\d]+  (\d+ ms)  ", details, re.M)
    assert lines == expected
