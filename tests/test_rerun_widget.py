"""The "Refresh" and "Re-run from here" buttons of a task's details, at the Python level: real
ipywidgets, their click handlers, the views following the re-run. (In the browser:
tests/browser/test_rerun_browser.py.)"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from trigger_nb import JobRun, TriggerClient
from trigger_nb._widgets.live import LiveRunView, follow_reruns
from trigger_nb._widgets.run_view import RunView, run_data
from trigger_nb._widgets.toolbar import TreeBar


class Effects:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, name: str) -> str:
        with self.path.open("a") as file:
            file.write(name + "\n")
        return name

    def all(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []


def steps(client: TriggerClient, effect: Effects) -> Any:
    job = client.define_job("steps")

    @job.run
    def work(payload: Any, io: Any, ctx: Any) -> None:
        for name in ("one", "two", "three"):
            io.run_task(name, lambda name=name: effect(name))

    return job


def _actions(view: RunView, name: str) -> Any:
    row = next(row for row in view.rows.values() if row.node.record.name == name)
    if not row.details_open:
        row.toggle_details()
    (actions,) = [w for w in row.details.children if "tnb-actions" in w._dom_classes]
    refresh, rerun, note = actions.children
    assert (refresh.description, rerun.description) == ("Refresh", "Re-run from here")
    return refresh, rerun, note


def _meta(view: RunView, name: str) -> str:
    row = next(row for row in view.rows.values() if row.node.record.name == name)
    return str(row.meta.value)


def test_refresh_button_marks_the_task_and_its_row(client: TriggerClient, tmp_path: Path) -> None:
    effect = Effects(tmp_path / "effects.log")
    run = steps(client, effect).trigger()
    view = RunView(run)
    refresh, _rerun, note = _actions(view, "two")
    refresh.click()
    assert html.unescape(note.value) == (
        '<span class="tnb-muted">two runs again on the run\'s next execution (re-run the '
        "cell); its earlier output stays in its history</span>"
    )
    assert "tnb-refresh-pending" in _meta(view, "two")
    assert "tnb-refresh-pending" not in _meta(view, "one") + _meta(view, "three")
    assert effect.all() == ["one", "two", "three"]  # nothing ran yet
    run.resume()
    assert effect.all() == ["one", "two", "three", "two"]


def test_rerun_button_in_a_finished_live_view_follows_the_execution(
    client: TriggerClient, tmp_path: Path
) -> None:
    """What a %%trigger_job cell shows: the same view goes live again, then shows the new
    finished tree."""
    effect = Effects(tmp_path / "effects.log")
    job = steps(client, effect)
    live = LiveRunView(title="steps")
    run = job.trigger(listeners=[live.listener])
    live.finish(run)
    first_tree = live.open_tree()  # the "interactive tree" button beside the run's page
    _refresh, rerun, note = _actions(first_tree, "two")
    rerun.click()
    assert effect.all() == ["one", "two", "three", "two", "three"]
    assert note.value == '<span class="tnb-muted"></span>'
    # The new finished run: its page, and the button (the tree is made when asked for).
    assert live.bar is not None and live.run_view is None
    assert live.widget.children == (live.bar.button,)
    new_tree = live.open_tree()
    assert new_tree is not first_tree and new_tree.run.executions == 2
    statuses = {r.node.record.name: r.node.status for r in new_tree.rows.values()}
    assert statuses == {"one": "replayed", "two": "completed", "three": "completed"}
    # and again, from the new tree
    _refresh, rerun, _note = _actions(new_tree, "three")
    rerun.click()
    assert effect.all()[-1:] == ["three"] and len(effect.all()) == 6


def test_rerun_button_of_a_displayed_run_follows_in_place(
    client: TriggerClient, tmp_path: Path
) -> None:
    """A JobRun displayed on its own (``display.run_mimebundle``)."""
    effect = Effects(tmp_path / "effects.log")
    run = steps(client, effect).trigger()
    bar = TreeBar(run, run_data(run))
    follow_reruns(bar)
    _refresh, rerun, _note = _actions(bar.open(), "three")
    rerun.click()
    assert effect.all() == ["one", "two", "three", "three"]
    (live_widget,) = bar.widget.children
    (button,) = live_widget.children  # the live view, now showing the finished run's button
    assert "tnb-open-tree" in button._dom_classes


def test_rerun_where_the_job_is_not_defined_says_so_and_keeps_the_tree(
    client: TriggerClient, tmp_path: Path
) -> None:
    effect = Effects(tmp_path / "effects.log")
    run = steps(client, effect).trigger()
    elsewhere = JobRun(client.store, run.record)  # as the explorer holds it: no client
    bar = TreeBar(elsewhere, run_data(elsewhere))
    follow_reruns(bar)
    view = bar.open()
    shown = bar.widget.children
    _refresh, rerun, note = _actions(view, "two")
    rerun.click()
    assert "tnb-err" in note.value and "no client to execute it with" in note.value
    assert bar.widget.children == shown
    other = TriggerClient("tests", store=client.store).load_run(run.id)  # job not defined
    view = RunView(other)
    _refresh, rerun, note = _actions(view, "two")
    rerun.click()
    assert "is not defined in this process" in note.value
    assert effect.all() == ["one", "two", "three"]
    assert client.store.refresh_marks(run.id) == set()


def test_rerun_button_without_a_following_view_rebuilds_the_tree_in_place(
    client: TriggerClient, tmp_path: Path
) -> None:
    effect = Effects(tmp_path / "effects.log")
    run = steps(client, effect).trigger()
    view = RunView(run)  # as the explorer shows a run: nothing follows it
    before = view.widget.children
    _refresh, rerun, _note = _actions(view, "one")
    rerun.click()
    assert effect.all() == ["one", "two", "three", "one", "two", "three"]
    assert view.widget.children != before
    assert "3 executed · 0 replayed" in view.widget.children[0].value


def test_rerun_from_the_explorer_executes_where_the_job_is_defined(
    client: TriggerClient, tmp_path: Path
) -> None:
    """The explorer's runs come with the client that lists them: "Re-run from here" works
    there too when the job is defined in this kernel."""
    from trigger_nb._widgets.explorer import runs_explorer

    effect = Effects(tmp_path / "effects.log")
    run = steps(client, effect).trigger()
    view = runs_explorer(client).select(run.id)
    _refresh, rerun, note = _actions(view, "two")
    rerun.click()
    assert "tnb-err" not in note.value, note.value
    assert effect.all() == ["one", "two", "three", "two", "three"]
