"""``RunView``: the interactive task tree of a finished (or waiting) run, with ipywidgets.

Rows are created lazily because each widget costs ~0.35 ms: a page of siblings at a time
(``PAGE_SIZE``, then a "show more" button), a row's children when it is expanded, its details
when its name is clicked. A few levels open at first, breadth-first, within ``AUTO_EXPAND_ROWS``,
so a 10,000-task run opens as fast as a 10-task one. Outputs are unpickled only when a "show
output" button asks, then shown with the object's own rich display.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from trigger_nb._core.model import LogRecord, TaskRecord, TaskStatus
from trigger_nb._core.preview import redact_value, to_plain
from trigger_nb._render.css import CSS, WIDGET_CSS
from trigger_nb._render.html import details_html, header_html, logs_html, meta_html
from trigger_nb._render.keys import task_title
from trigger_nb._render.tree import (
    FA_ICONS,
    WAITING,
    TaskNode,
    build_tree,
    group_logs,
    summarize_run,
)
from trigger_nb.errors import TriggerNbError

if TYPE_CHECKING:
    from trigger_nb._client.run import JobRun

PAGE_SIZE = 50
AUTO_EXPAND_ROWS = 40
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def has_widget_kernel() -> bool:
    """True inside a Jupyter kernel (a frontend can show widgets); never imports IPython."""
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def mimebundle(widget: Any, html: str, text: str) -> dict[str, Any]:
    """One output: the widget where a widget manager runs, the HTML and text everywhere else."""
    view = {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
    return {WIDGET_VIEW_MIME: view, "text/html": html, "text/plain": text}


class RunView:
    """The interactive tree of a stored run. ``.widget`` is what to display."""

    def __init__(
        self,
        run: JobRun,
        *,
        now: Callable[[], datetime] | None = None,
        seen: tuple[list[TaskRecord], list[LogRecord]] | None = None,
    ) -> None:
        """``seen``: every task record and log of the run, as a live view received them; saves
        reading them back from the store."""
        import ipywidgets

        self.run = run
        client = run._client
        self.now = now or (client.clock.now if client is not None else _utcnow)
        if seen is None:
            records = [view.record for view in run.all_tasks]  # outputs stay pickled
            self.logs = group_logs(run.logs)
        else:
            records = seen[0]
            self.logs = group_logs(seen[1])
        self._records = {record.id: record for record in records}
        self.shared = _Shared.get()
        self.nodes = build_tree(records, run.record.latest_execution)
        self.rows: dict[str, _Row] = {}
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
        items.append(self.tree)
        self.widget = ipywidgets.VBox(items)
        self.widget.add_class("tnb")
        self.widget.add_class("tnb-run-view")
        self._expand_breadth_first(_Page(self, self.nodes, self.tree).rows)
        if any(row.node.status == WAITING for row in self.rows.values()):
            _TICKER.watch(self)

    def _header_value(self) -> str:
        summary = summarize_run(self.run.record, now=self.now(), nodes=self.nodes)
        return f"<style>{CSS}{WIDGET_CSS}</style>{header_html(summary, now=self.now())}"

    def _expand_breadth_first(self, rows: list[_Row]) -> None:
        budget = AUTO_EXPAND_ROWS - len(rows)
        queue = list(rows)
        while queue:
            row = queue.pop(0)
            shown = min(len(row.node.children), PAGE_SIZE)
            if shown and shown <= budget:
                budget -= shown
                queue.extend(row.toggle_children())

    def make_row(self, node: TaskNode, page: _Page) -> _Row:
        row = _Row(self, node, page)
        self.rows[node.record.id] = row
        return row

    def make_details(self, node: TaskNode) -> Any:
        import ipywidgets

        record = node.record
        shared = self.shared
        body = ipywidgets.HTML(
            details_html(node, self.logs.get(record.id, [])),
            layout=shared.layout,
            style=shared.html_style,
        )
        body.add_class("tnb-details-html")
        items: list[Any] = [body]
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
        box = ipywidgets.VBox(items, layout=shared.layout)
        box.add_class("tnb-details")
        return box

    def show_output(self, task_id: str, output: Any) -> None:
        """Unpickle one task's output and render it with its own rich display."""
        from trigger_nb._client.run import TaskView

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


class _Shared:
    """One Layout and one style per kind for every row of every view: each widget would
    otherwise create two more widgets of its own (a third of the cost). Rows are styled by CSS
    classes instead. Made once per process, again if someone closed them (``close_all()``)."""

    _instance: _Shared | None = None

    def __init__(self) -> None:
        import ipywidgets
        from ipywidgets.widgets.widget_string import HTMLStyle

        self.layout = ipywidgets.Layout()
        self.button_style = ipywidgets.ButtonStyle()
        self.html_style = HTMLStyle()

    @classmethod
    def get(cls) -> _Shared:
        shared = cls._instance
        parts = () if shared is None else (shared.layout, shared.button_style, shared.html_style)
        if shared is None or any(part.comm is None for part in parts):
            shared = cls._instance = cls()
        return shared


class _Page:
    """Rows for a list of sibling tasks, ``PAGE_SIZE`` at a time, and a "show more" button.

    The rows' widgets are the children of one grid (``box``): [chevron] name meta per line, a
    row's details and subtasks on full-width lines under it. No container per row: that was a
    quarter of the widgets of a page of parents and a third of one of leaves.
    """

    def __init__(self, view: RunView, nodes: list[TaskNode], box: Any) -> None:
        self.view, self.nodes, self.box = view, nodes, box
        self.rows: list[_Row] = []
        self.more: Any = None
        self.extend()

    def extend(self, _button: object = None) -> list[_Row]:
        import ipywidgets

        start = len(self.rows)
        new = [self.view.make_row(node, self) for node in self.nodes[start : start + PAGE_SIZE]]
        self.rows += new
        left = len(self.nodes) - len(self.rows)
        if left > 0:
            if self.more is None:
                shared = self.view.shared
                self.more = ipywidgets.Button(layout=shared.layout, style=shared.button_style)
                self.more.add_class("tnb-more-btn")
                self.more.on_click(self.extend)
            self.more.description = f"show {min(PAGE_SIZE, left)} more ({left:,} not shown)"
        self.layout()
        return new

    def layout(self) -> None:
        items = [widget for row in self.rows for widget in row.items()]
        if len(self.rows) < len(self.nodes):
            items.append(self.more)
        self.box.children = tuple(items)


class _Row:
    """One task: [chevron] [status icon + name] [key, duration, attempts, properties], then its
    details and its subtasks when open."""

    def __init__(self, view: RunView, node: TaskNode, page: _Page) -> None:
        import ipywidgets

        record = node.record
        self.view, self.node, self.page = view, node, page
        shared = view.shared
        leaf = () if node.children else ("tnb-leaf",)
        self.button = ipywidgets.Button(
            description=task_title(record),
            icon=FA_ICONS[node.status],
            tooltip=f"{node.status}: click for logs, params, attempts and output",
            layout=shared.layout,
            style=shared.button_style,
            # one message, not one per class
            _dom_classes=("tnb-name-btn", f"tnb-st-{node.status}", *leaf),
        )
        self.button.on_click(self.toggle_details)
        self.meta = ipywidgets.HTML(
            meta_html(node, now=view.now(), fontawesome=True),
            layout=shared.layout,
            style=shared.html_style,
            _dom_classes=("tnb-meta-html", f"tnb-row-{node.status}"),
        )
        self.head: list[Any] = [self.button, self.meta]
        self.chevron: Any = None
        if node.children:
            self.chevron = ipywidgets.Button(
                icon="caret-right",
                tooltip="show or hide subtasks",
                layout=shared.layout,
                style=shared.button_style,
                _dom_classes=("tnb-chevron",),
            )
            self.chevron.on_click(self.toggle_children)
            self.head.insert(0, self.chevron)
        self.details: Any = None
        self.details_open = False
        self.children_box: Any = None
        self.children_open = False

    def items(self) -> list[Any]:
        """This row's widgets in its page's grid."""
        items = list(self.head)
        if self.details_open:
            items.append(self.details)
        if self.children_open:
            items.append(self.children_box)
        return items

    def toggle_details(self, _button: object = None) -> None:
        if self.details is None:
            self.details = self.view.make_details(self.node)
        self.details_open = not self.details_open
        self.page.layout()

    def toggle_children(self, _button: object = None) -> list[_Row]:
        """Show or hide the subtasks; returns the rows created now."""
        import ipywidgets

        created: list[_Row] = []
        if self.children_box is None:
            self.children_box = ipywidgets.Box(
                layout=self.view.shared.layout, _dom_classes=("tnb-children", "tnb-rows")
            )
            created = _Page(self.view, self.node.children, self.children_box).rows
        self.children_open = not self.children_open
        self.chevron.icon = "caret-down" if self.children_open else "caret-right"
        self.page.layout()
        return created


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
