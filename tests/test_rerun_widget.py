"""The "show output", "Refresh" and "Re-run from here" actions of a task's details, at the
Python level: the run page's requests through its bridge (real ipywidgets), the ipywidgets
tree's buttons (the explorer's), the views following the re-run. (In the browser:
tests/browser/test_rerun_browser.py.)"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from trigger_nb import JobRun, TriggerClient
from trigger_nb._widgets.live import LiveRunView
from trigger_nb._widgets.run_view import RunView, run_data


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


def _ask(live: LiveRunView, action: str, name: str) -> str:
    """What the page's script does for a task's button: a request into the bridge's hidden
    text box (as ipywidgets sends what the page typed there); returns the kernel's answer."""
    bridge = live.bar
    assert bridge is not None
    by_name = {view.record.name: view.id for view in bridge.run.all_tasks}
    index = bridge.task_ids.index(by_name[name])
    bridge.request.value = json.dumps({"n": f"{action}-{name}", "do": action, "i": index})
    reply = str(bridge.reply.value)
    assert f'data-n="{action}-{name}"' in reply, reply
    return reply


def test_the_pages_refresh_marks_the_task_and_names_its_rows(
    client: TriggerClient, tmp_path: Path
) -> None:
    effect = Effects(tmp_path / "effects.log")
    live = LiveRunView(title="steps")
    run = steps(client, effect).trigger(listeners=[live.listener])
    live.finish(run)
    assert live.bar is not None
    reply = _ask(live, "refresh", "two")
    assert "two runs again on the run&#x27;s next execution (re-run the cell)" in reply
    two = live.bar.task_ids.index(run.task("two").id)
    assert f'data-marked="{two}"' in reply  # the page marks that row "refresh pending"
    assert effect.all() == ["one", "two", "three"]  # nothing ran yet
    run.resume()
    assert effect.all() == ["one", "two", "three", "two"]


def test_the_pages_show_output_renders_the_value_in_the_kernel(
    client: TriggerClient, tmp_path: Path
) -> None:
    job = client.define_job("values")

    @job.run
    def work(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("table", lambda: {"rows": [1, 2, 3], "note": "<b>escaped</b>"})

    live = LiveRunView(title="values")
    live.finish(job.trigger(listeners=[live.listener]))
    reply = _ask(live, "output", "table")
    assert "&#x27;rows&#x27;: [1, 2, 3]" in reply and "&lt;b&gt;escaped" in reply
    live.bar.request.value = "not a request"  # anything else typed there is ignored
    live.bar.request.value = json.dumps({"n": "x", "do": "output", "i": 99})
    live.bar.request.value = json.dumps({"n": "y", "do": "output", "i": -1})
    assert 'data-n="output-table"' in live.bar.reply.value


def test_the_pages_show_output_says_when_the_values_display_fails(
    client: TriggerClient, tmp_path: Path
) -> None:
    job = client.define_job("broken-repr")

    @job.run
    def work(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("odd", lambda: BadRepr())

    live = LiveRunView(title="broken")
    live.finish(job.trigger(listeners=[live.listener]))
    reply = _ask(live, "output", "odd")
    assert "tnb-err" in reply and "output failed: ValueError: no repr today" in reply


class BadRepr:
    def __repr__(self) -> str:
        raise ValueError("no repr today")


def test_the_pages_rerun_from_here_follows_the_execution_in_the_same_view(
    client: TriggerClient, tmp_path: Path
) -> None:
    """What a %%trigger_job cell shows (and a run displayed on its own, ``display.show_run``):
    the same view goes live again, then shows the new page with a new bridge, which alone
    answers the request box (the old one answering too would run "three" twice below)."""
    effect = Effects(tmp_path / "effects.log")
    job = steps(client, effect)
    live = LiveRunView(title="steps")
    run = job.trigger(listeners=[live.listener])
    live.finish(run)
    first = live.bar
    _ask(live, "rerun", "two")
    assert effect.all() == ["one", "two", "three", "two", "three"]
    assert live.bar is not None and live.bar is not first
    assert live.widget.children == (live.bar.reply, live.bar.request)
    assert live.bar.request is first.request  # no new widget per execution (the kernel keeps all)
    assert live._final is not None and "1 replayed" in live._final[1]
    assert "2 executions" in live._final[1]
    # and again, from the new page; a view made for a finished run (display(run)) does the same
    _ask(live, "rerun", "three")
    assert effect.all()[-1:] == ["three"] and len(effect.all()) == 6
    shown = LiveRunView(title="shown")
    shown.finish(run, run_data(run))
    _ask(shown, "rerun", "one")
    assert effect.all()[6:] == ["one", "two", "three"]
    assert shown._final is not None and "4 executions" in shown._final[1]


def test_rerun_where_the_job_is_not_defined_says_so_and_keeps_the_page(
    client: TriggerClient, tmp_path: Path
) -> None:
    effect = Effects(tmp_path / "effects.log")
    run = steps(client, effect).trigger()
    elsewhere = JobRun(client.store, run.record)  # as the explorer holds it: no client
    live = LiveRunView(title="elsewhere")
    live.finish(elsewhere)
    shown, page = live.widget.children, live._final
    reply = _ask(live, "rerun", "two")
    assert "tnb-err" in reply and "no client to execute it with" in reply
    assert live.widget.children == shown and live._final == page
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
