"""``RunView``: the interactive task tree of a finished (or waiting) run, with ipywidgets.

A few levels open at first, breadth-first, within ``AUTO_EXPAND_ROWS``, so a 10,000-task run
opens as fast as a 10-task one (the rows themselves are made lazily: ``row``). Outputs are
unpickled only when a "show output" button asks, then shown with the object's own rich display.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

from trigger_nb._client.run import JobRun, TaskView
from trigger_nb._client.task_view import captured_outputs
from trigger_nb._core.clock import SYSTEM_CLOCK, Clock
from trigger_nb._core.model import LogRecord, RunRecord, TaskRecord, TaskStatus
from trigger_nb._core.preview import redact_value, to_plain
from trigger_nb._render.captured import attach, captured_heading, notebook_outputs
from trigger_nb._render.css import CSS, WIDGET_CSS
from trigger_nb._render.data import RunData
from trigger_nb._render.html import header_html
from trigger_nb._render.keys import task_title
from trigger_nb._render.summary import summarize_run
from trigger_nb._render.task_html import details_html, logs_html, meta_html
from trigger_nb._render.tree import WAITING, TaskNode, build_tree, group_logs
from trigger_nb._widgets.finder import Finder
from trigger_nb._widgets.row import PAGE_SIZE, Actions, Page, Row, Shared
from trigger_nb.errors import TriggerNbError

AUTO_EXPAND_ROWS = 40
FOUND_ROWS = 200


def run_clock(run: JobRun) -> Clock:
    """The clock of the client that ran ``run`` (a ``FakeClock`` in tests), else the system's:
    what every view of a run counts as "now"."""
    client = run._client
    return client.clock if client is not None else SYSTEM_CLOCK


def run_data(run: JobRun) -> RunData:
    """What the static renderings of ``run`` read, read from it once, at its clock's now."""
    return run.run_data(run_clock(run).now())


class RunView:
    """The interactive tree of a stored run. ``.widget`` is what to display."""

    def __init__(
        self,
        run: JobRun,
        *,
        now: Callable[[], datetime] | None = None,
        seen: tuple[list[TaskRecord], list[LogRecord]] | None = None,
        record: RunRecord | None = None,
    ) -> None:
        """``seen``: every task record and log of the run, as a live view received them; saves
        reading them back from the store. ``record`` (with ``seen``): the run as a page beside
        this view showed it, so both show the same execution even if the run went on since."""
        import ipywidgets

        self.run = run
        self.now = now or run_clock(run).now
        self._now_fn = now
        # Runs "Re-run from here" for the view showing this tree, which then follows the
        # execution (``LiveRunView.rerun_from``); None: re-run here.
        self.rerunner: Callable[[str], None] | None = None
        if seen is None:
            records = [view.record for view in run.all_tasks]  # outputs stay pickled
            self.logs = group_logs(run.logs)
        else:
            records = seen[0]
            self.logs = group_logs(seen[1])
        self._records = {record.id: record for record in records}
        self.shared = Shared.get()
        self.record = record if record is not None and seen is not None else run.record
        captures = captured_outputs(run._store.load_captures(run.id))
        self.nodes = attach(build_tree(records, self.record.latest_execution), captures)
        self.rows: dict[str, Row] = {}
        self.header = ipywidgets.HTML(self._header_value())
        self.header.add_class("tnb-header")
        self.tree = ipywidgets.Box(_dom_classes=("tnb-tree", "tnb-rows"))
        items: list[Any] = [self.header]
        top_logs = self.logs.get(None, [])
        if top_logs:
            run_logs = ipywidgets.HTML(
                f'<details><summary class="tnb-muted">run logs ({len(top_logs)})</summary>'
                f"{logs_html(top_logs)}</details>"
            )
            run_logs.add_class("tnb-run-logs")
            items.append(run_logs)
        self.finder = Finder(self)
        items += [self.finder.widget, self.tree]
        self.widget = ipywidgets.VBox(items)
        self.widget.add_class("tnb")
        self.widget.add_class("tnb-run-view")
        self.show_tree(self.nodes)
        if any(row.node.status == WAITING for row in self.rows.values()):
            _TICKER.watch(self)

    def _header_value(self) -> str:
        now = self.now()
        summary = summarize_run(self.record, now=now, nodes=self.nodes)
        return f"<style>{CSS}{WIDGET_CSS}</style>{header_html(summary, now=now)}"

    def show_tree(self, nodes: list[TaskNode], *, expand_all: bool = False) -> None:
        """Show ``nodes`` (the run's tree, or the part of it a chip or a search keeps) in the
        tree's box, opened breadth-first within ``AUTO_EXPAND_ROWS`` (``FOUND_ROWS`` for what a
        chip or search found: its rows are the point)."""
        self.rows = {}
        self.top_page = Page(self, nodes, self.tree)
        budget = FOUND_ROWS if expand_all else AUTO_EXPAND_ROWS
        self._expand_breadth_first(self.top_page.rows, budget)

    def _expand_breadth_first(self, rows: list[Row], limit: int) -> None:
        budget = limit - len(rows)
        queue = list(rows)
        while queue:
            row = queue.pop(0)
            shown = min(len(row.node.children), PAGE_SIZE)
            if shown and shown <= budget:
                budget -= shown
                queue.extend(row.toggle_children())

    def make_details(self, node: TaskNode) -> Any:
        import ipywidgets

        record = node.record
        shared = self.shared
        body = ipywidgets.HTML(
            details_html(node, self.logs.get(record.id, []), captured=False),
            layout=shared.layout,
            style=shared.html_style,
        )
        body.add_class("tnb-details-html")
        items: list[Any] = [body]
        for number, events in reversed(node.captured):  # the front end renders them
            heading = ipywidgets.HTML(f"<b>{captured_heading(number, record)}</b>")
            printed = ipywidgets.Output()
            printed.add_class("tnb-captured-output")
            printed.outputs = notebook_outputs(events)
            items += [heading, printed]
        if record.status is TaskStatus.COMPLETED:
            button = ipywidgets.Button(
                description="show output",
                icon="eye",
                tooltip="load and display the full output",
                layout=shared.layout,
                style=shared.button_style,
            )
            button.add_class("tnb-show-output")
            output = ipywidgets.Output()
            output.add_class("tnb-output")
            button.on_click(lambda _button: self.show_output(record.id, output))
            items += [button, output]
        items.append(Actions(self, node).widget)
        box = ipywidgets.VBox(items, layout=shared.layout)
        box.add_class("tnb-details")
        return box

    # the task actions (``row.Actions``)
    def refresh_task(self, node: TaskNode) -> str:
        """Mark the task (its subtasks, the parents reaching them) to run again; the rows of
        the marked tasks show it."""
        self.run.refresh_task(node.record.id)
        marked = self.run._store.refresh_marks(self.run.id)
        now = self.now()
        for task_id, row in self.rows.items():
            if task_id in marked and not row.node.record.refresh_pending:
                row.node.record.refresh_pending = True
                row.meta.value = meta_html(row.node, now=now, fontawesome=True)
        also = [
            *(["its subtasks"] if node.children else []),
            *(["the parent tasks that reach it"] if node.record.parent_id else []),
        ]
        return (
            f"{task_title(node.record)} runs again on the run's next execution (re-run the "
            f"cell){', with ' + ' and '.join(also) if also else ''}; its earlier output stays "
            "in its history"
        )

    def rerun_from(self, node: TaskNode) -> str:
        """Execute the run again from the task. The view showing this tree follows the
        execution (``rerunner``: a live view's); without one, the finished tree replaces
        this one."""
        if self.rerunner is not None:
            self.rerunner(node.record.id)
            return ""
        self.run.rerun(from_task=node.record.id)
        fresh = RunView(self.run, now=self._now_fn)
        self.widget.children = fresh.widget.children
        return ""

    def show_output(self, task_id: str, output: Any) -> None:
        """Unpickle one task's output and render it with its own rich display."""
        view = TaskView(self.run, self._records[task_id])
        output.outputs = ()
        try:
            value = view.output
        except TriggerNbError as error:
            output.append_stderr(f"{error}\n")
            return
        if view.record.redact:
            value = redact_value(to_plain(value), view.record.redact)
        output.append_display_data(value)

    def tick(self) -> bool:
        """Redraw countdowns; False once no wait is still ahead."""
        now = self.now()
        self.header.value = self._header_value()
        ahead = False
        for row in self.rows.values():
            if row.node.status == WAITING:
                row.meta.value = meta_html(row.node, now=now, fontawesome=True)
                until = row.node.record.wait_until
                ahead = ahead or (until is not None and until > now)
        return ahead


class _Ticker:
    """One daemon thread redrawing every waiting countdown once a second."""

    def __init__(self) -> None:
        self._views: weakref.WeakSet[RunView] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, view: RunView) -> None:
        with self._lock:
            self._views.add(view)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="tnb-ticker", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(1.0)
            with self._lock:
                views = list(self._views)
                if not views:
                    self._thread = None
                    return
            for view in views:
                try:
                    keep = view.tick()
                except Exception:  # a closed or broken view stops ticking, nothing else
                    keep = False
                if not keep:
                    with self._lock:
                        self._views.discard(view)


_TICKER = _Ticker()
