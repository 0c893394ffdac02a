"""A stale task (replayed although its code or inputs changed since it ran; SPEC 3.5) in every
view: the text outline, the static HTML, the live tree (while the execution runs and after),
the interactive tree, the explorer, ``trigger-nb show`` (``--task``, ``--stale``, ``--json``) and
``export``; and ``TaskView.stale``, ``TaskView.stale_reasons``, ``JobRun.stale_tasks``.

The runs are real (a DiskStore); the staleness is set on the stored execution by hand
(``ExecutionRecord.stale``, what the engine records under ``on_code_change="warn"``), so these
tests read only what the views make of it. The last test lets the engine find a changed closure
value itself.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import FakeClock, JobRun, TriggerClient
from trigger_nb._cli.main import main
from trigger_nb._core.model import TaskRecord
from trigger_nb._render.html import render_html
from trigger_nb._render.text import render_text
from trigger_nb._render.tree import COLORS, STALE
from trigger_nb._widgets.explorer import RunsExplorer
from trigger_nb._widgets.live import LiveRunView
from trigger_nb._widgets.run_view import RunView, run_data

THRESHOLD = "closure value 'threshold' changed"
HELPER = "helper 'clean' changed"
CODE = "code of fn changed"
# what each stale task's details say, and how to run it again (the two ways that exist)
REASONS = {"score": [THRESHOLD, HELPER], "load": [CODE]}
HINTS = ("refresh=True", "%%trigger_job ... --refresh-stale")
AMBER = COLORS[STALE]


def _define(client: TriggerClient) -> Any:
    def body(payload: Any, io: Any, ctx: Any) -> int:
        rows = io.run_task("load", lambda: [0.2, 0.7, 0.9])

        def parent() -> int:
            return int(io.run_task("score", lambda: sum(x > 0.5 for x in rows)))

        return int(io.run_task("parent", parent))

    return client.define_job("scores", run=body)


def mark_stale(client: TriggerClient, run: JobRun, reasons: dict[str, list[str]]) -> None:
    """Record in the stored run that its latest execution replayed these tasks (by name)
    although their code or inputs changed: what the engine does under ``on_code_change="warn"``."""
    record = client.store.load_run(run.id)
    assert record is not None
    ids = {view.record.name: view.record.id for view in run.all_tasks}
    record.execution_history[-1].stale = {ids[name]: list(why) for name, why in reasons.items()}
    client.store.save_run(record)


@pytest.fixture
def stale_run(client: TriggerClient) -> JobRun:
    job = _define(client)
    job.trigger()
    run = job.trigger()  # replays every task
    mark_stale(client, run, REASONS)
    return run


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


# --- the read model ---------------------------------------------------------------------------


def test_task_views_and_the_run_say_which_tasks_are_stale_and_why(stale_run: JobRun) -> None:
    assert [view.name for view in stale_run.stale_tasks] == ["load", "score"]
    assert {view.name: view.stale_reasons for view in stale_run.stale_tasks} == REASONS
    by_name = {view.name: view for view in stale_run.all_tasks}
    assert (by_name["score"].stale, by_name["score"].stale_reasons) == (True, REASONS["score"])
    assert (by_name["parent"].stale, by_name["parent"].stale_reasons) == (False, [])
    # the tree and the look-up by key say the same
    (load, parent) = stale_run.tasks
    assert (load.stale, parent.stale, parent.children[0].stale) == (True, False, True)
    assert stale_run.task("score").stale_reasons == [THRESHOLD, HELPER]


def test_a_later_execution_that_replays_unchanged_code_is_not_stale(
    client: TriggerClient, stale_run: JobRun
) -> None:
    again = client.get_job("scores").trigger()
    assert again.id == stale_run.id and again.executions == 3
    assert again.stale_tasks == [] and not again.task("score").stale
    assert stale_run.stale_tasks == []  # a handle shows the run's latest execution
    assert " stale" not in render_text(run_data(again)).splitlines()[1]


def test_a_run_without_stale_tasks_shows_no_stale_marks(client: TriggerClient) -> None:
    run = _define(client).trigger()
    assert run.stale_tasks == [] and not any(view.stale for view in run.all_tasks)
    text, page = render_text(run_data(run)), render_html(run_data(run))
    assert "stale" not in text and "tnb-stale" not in page.replace(".tnb-stale", "")


# --- the static renderings --------------------------------------------------------------------


def test_text_outline_marks_stale_tasks_with_their_reasons(stale_run: JobRun) -> None:
    lines = render_text(run_data(stale_run)).splitlines()
    assert lines[1].endswith(" saved · 2 stale")
    assert lines[2].startswith("⚠ 2 stale tasks: replayed although their code or inputs changed")
    assert all(hint in lines[2] for hint in HINTS)
    rows = {
        m[1]: m[2] for m in re.finditer(r"^ *↻ (\w+) · .*? · replayed(.*)$", "\n".join(lines), re.M)
    }
    assert rows == {
        "load": f" · ⚠ stale: {CODE}",
        "parent": "",
        "score": f" · ⚠ stale: {THRESHOLD}; {HELPER}",
    }


def _row(page: str, name: str) -> str:
    """The ``<details>`` of task ``name`` (its line and its details) in a static page."""
    start = page.index(f'<span class="tnb-name">{name}</span>')
    return page[start : page.index("</details>", start)]


def test_static_html_badges_stale_tasks_and_explains_them_in_their_details(
    stale_run: JobRun,
) -> None:
    page = render_html(run_data(stale_run))
    counts = re.search(r'<div class="tnb-counts">(.*?)</div>', page)
    assert counts is not None
    assert re.sub(r"<[^>]+>", "", counts[1]).endswith(" saved · 2 stale")
    assert f'<span class="tnb-stale-count" style="color:{AMBER}">' in counts[1]
    for name, reasons in REASONS.items():
        row = _row(page, name)
        line, details = row.split("</summary>", 1)
        badge = re.search(
            r'<span class="tnb-badge tnb-stale" style="background:(#\w+)" '
            r'title="([^"]*)">⚠ stale</span>',
            line,
        )
        assert badge is not None and badge[1] == AMBER
        assert html.unescape(badge[2]) == "stale: " + "; ".join(reasons)
        note = html.unescape(re.sub(r"<[^>]+>", "", details))
        assert f"⚠ stale: {'; '.join(reasons)}" in note
        assert "replayed although its code or inputs changed since it ran" in note
        assert all(hint in note for hint in HINTS)
    assert "tnb-stale" not in _row(page, "parent").split("</summary>")[0]
    # three colours apart: stale amber, replayed purple, failed red
    assert len({AMBER, COLORS["replayed"], COLORS["failed"], COLORS["waiting"]}) == 4


def test_stale_reasons_are_escaped(client: TriggerClient) -> None:
    job = _define(client)
    job.trigger()
    run = job.trigger()
    mark_stale(client, run, {"load": ["global '<script>x</script>' changed"]})
    page = render_html(run_data(run))
    assert "<script>" not in page
    assert "global &#x27;&lt;script&gt;x&lt;/script&gt;&#x27; changed" in page


# --- the notebook views -----------------------------------------------------------------------


def _check_tree(tree: RunView, stale: dict[str, list[str]] = REASONS) -> None:
    """An interactive tree (a RunView, the explorer's, the live view's once finished)."""
    assert " · 2 stale" in tree.header.value and "2 stale tasks" in tree.header.value
    rows = {row.button.description: row for row in tree.rows.values()}
    assert {n for n, row in rows.items() if "tnb-stale" in row.button._dom_classes} == set(stale)
    for name, reasons in stale.items():
        row = rows[name]
        assert "tnb-st-replayed" in row.button._dom_classes  # still replayed, and marked stale
        assert "stale: " + "; ".join(reasons) in row.button.tooltip
        assert '<i class="fa fa-exclamation-triangle"></i> stale</span>' in row.meta.value
        row.toggle_details()
        details = html.unescape(row.details.children[0].value)
        assert "stale: " + "; ".join(reasons) in details
        assert all(hint in details for hint in HINTS)
    fresh = next(name for name in rows if name not in stale)
    assert "tnb-stale" not in rows[fresh].meta.value


def test_interactive_tree_and_explorer_badge_stale_tasks(stale_run: JobRun) -> None:
    _check_tree(RunView(stale_run))
    explorer = RunsExplorer(stale_run._store)
    _check_tree(explorer.select(stale_run.id))


def test_live_view_marks_stale_replays_while_the_execution_runs_and_after(
    client: TriggerClient,
) -> None:
    job = _define(client)
    job.trigger()
    view = LiveRunView(title="scores")
    drawn: list[str] = []
    # a replayed parent's subtasks do not run: only "load" and "parent" send a replay event
    stale = {"load": [CODE], "parent": [THRESHOLD, HELPER]}

    def engine(kind: str, payload: Any) -> None:
        """The engine's events, with the reasons it sets on a stale task's replay record."""
        replayed = kind == "task_replayed" and isinstance(payload, TaskRecord)
        if replayed:
            payload = payload.model_copy(update={"stale_reasons": stale.get(payload.name, [])})
        view.listener(kind, payload)
        if replayed and payload.name == "parent":
            view._draw()  # what the screen shows mid-run, once "parent" was replayed
            drawn.append(view._html.value)

    run = job.trigger(listeners=[engine])
    (live,) = drawn
    assert " · 2 stale" in re.sub(r"<[^>]+>", "", live)  # counted as their replays come
    for name, reasons in stale.items():
        line = live[live.index(f'"tnb-name">{name}<') :]
        line = line[: line.index("</div>")]
        assert "tnb-badge tnb-stale" in line and "⚠ stale</span>" in line
        assert html.escape("stale: " + "; ".join(reasons), quote=True) in line

    mark_stale(client, run, stale)  # what the engine stores with the execution
    view.finish(run)
    assert view.open_tree() is not None  # made on demand
    _check_tree(view.run_view, stale)
    saved = view._repr_mimebundle_()  # what the notebook keeps
    # the parent's own duration is measured (0-2 ms, more on a loaded machine): any will do
    line = re.escape(f" · replayed · ⚠ stale: {THRESHOLD}; {HELPER}")
    assert re.search(rf"↻ parent · \d+ ms{line}", saved["text/plain"]), saved["text/plain"]
    assert '<span class="tnb-badge tnb-stale"' in saved["text/html"]


# --- the command line -------------------------------------------------------------------------


def test_cli_show_marks_stale_tasks_and_show_task_says_why(
    stale_run: JobRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    code, out, err = cli(capsys, "show", stale_run.id, "--dir", store)
    assert (code, err) == (0, "")
    assert "(last: 0 executed, 3 replayed, 0 failed, 2 stale, saved" in out
    table = out[out.index("\nTASK") + 1 :].split("\n\n")[0].splitlines()
    assert {columns(t)[0]: columns(t)[1] for t in table[1:]} == {
        "load": "REPLAYED STALE",
        "parent": "REPLAYED",
        "score": "REPLAYED STALE",
    }
    assert f"`trigger-nb show {stale_run.id} --stale`" in out.splitlines()[-1]

    code, out, err = cli(capsys, "show", stale_run.id, "--task", "score", "--dir", store)
    assert (code, err) == (0, "")
    assert out.startswith(f"Task score [REPLAYED STALE] in run {stale_run.id}\n")
    assert re.search(rf"^  stale +{re.escape(THRESHOLD)}; {re.escape(HELPER)}$", out, re.M)
    assert all(hint in out for hint in HINTS)
    _, out, _ = cli(capsys, "show", stale_run.id, "--task", "parent", "--dir", store)
    assert "STALE" not in out and "stale" not in out


def test_cli_show_stale_lists_only_the_stale_tasks(
    stale_run: JobRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    code, out, err = cli(capsys, "show", stale_run.id, "--stale", "--dir", store)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        f"Run {stale_run.id}: 2 stale tasks in execution 2, replayed although their code or "
        "inputs changed since they ran"
    )
    table = lines[lines.index("") + 1 :]
    assert columns(table[0]) == ["TASK", "WHY IT IS STALE"]
    assert [columns(line) for line in table[1:3]] == [
        ["load", CODE],
        ["score", f"{THRESHOLD}; {HELPER}"],
    ]
    assert all(hint in lines[-1] for hint in HINTS)

    code, out, err = cli(capsys, "show", stale_run.id, "--stale", "--json", "--dir", store)
    assert (code, err) == (0, "")
    assert {t["name"]: t["stale_reasons"] for t in json.loads(out)} == REASONS


def test_cli_show_stale_without_stale_tasks_exits_0(
    client: TriggerClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _define(client).trigger()
    store = str(tmp_path / "store")
    code, out, err = cli(capsys, "show", run.id, "--stale", "--dir", store)
    assert (code, out, err) == (0, f"Run {run.id}: no stale tasks in the latest execution.\n", "")
    assert cli(capsys, "show", run.id, "--stale", "--json", "--dir", store) == (0, "[]\n", "")
    code, out, err = cli(capsys, "show", run.id, "--stale", "--task", "load", "--dir", store)
    assert (code, out) == (2, "") and "leave out --task" in err


def test_cli_json_carries_the_stale_marks(
    stale_run: JobRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    exported = json.loads(cli(capsys, "export", stale_run.id, "--dir", store)[1])
    assert exported["stale"] == 2

    def stale(tasks: list[dict[str, Any]]) -> dict[str, list[str]]:
        found = {t["name"]: t["stale_reasons"] for t in tasks if t["stale"]}
        for task in tasks:
            found.update(stale(task["children"]))
        return found

    assert stale(exported["tasks"]) == REASONS
    listed = json.loads(cli(capsys, "runs", "--json", "--dir", store)[1])
    assert [run["stale"] for run in listed] == [2]
    one = json.loads(
        cli(capsys, "show", stale_run.id, "--task", "score", "--json", "--dir", store)[1]
    )
    assert (one["stale"], one["stale_reasons"]) == (True, REASONS["score"])


# --- the engine finds it ----------------------------------------------------------------------


def test_a_changed_closure_value_is_stale_in_every_view(
    client: TriggerClient, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threshold = 0.5

    def body(payload: Any, io: Any, ctx: Any) -> list[float]:
        return list(io.run_task("score", lambda: [x for x in (0.2, 0.7) if x > threshold]))

    job = client.define_job("threshold", run=body)
    job.trigger()
    threshold = 0.8
    view = LiveRunView(title="threshold", clock=clock)
    received: list[TaskRecord] = []

    def listener(kind: str, payload: Any) -> None:
        if kind == "task_replayed":
            received.append(payload)
        view.listener(kind, payload)

    run = job.trigger(listeners=[listener])
    view._draw()  # the live tree as the execution ended, before the interactive one replaces it
    live = view._html.value
    assert " · 1 stale" in re.sub(r"<[^>]+>", "", live) and "tnb-badge tnb-stale" in live
    view.finish(run)
    assert run.output == [0.7]  # replayed: the stored output, under the default "warn"
    assert [r.stale_reasons for r in received] == [[THRESHOLD]]
    assert [(t.name, t.stale_reasons) for t in run.stale_tasks] == [("score", [THRESHOLD])]
    assert f"⚠ stale: {THRESHOLD}" in render_text(run_data(run))
    assert html.escape(f"stale: {THRESHOLD}") in render_html(run_data(run))
    assert " · 1 stale" in view.open_tree().header.value  # made on demand
    store = str(tmp_path / "store")
    out = cli(capsys, "show", run.id, "--stale", "--dir", store)[1]
    assert re.search(rf"^score +{re.escape(THRESHOLD)}$", out, re.M)
