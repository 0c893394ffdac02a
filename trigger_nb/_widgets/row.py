"""The rows of the interactive tree: a page of sibling tasks at a time, one row per task.

Rows are created lazily because each widget costs ~0.35 ms: a page of siblings at a time
(``PAGE_SIZE``, then a "show more" button), a row's children when it is expanded, its details
when its name is clicked. The view they belong to (``RunView``) is only known by what a row
asks of it (``TreeView``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from trigger_nb._render.keys import task_title
from trigger_nb._render.stale import stale_text
from trigger_nb._render.task_html import meta_html
from trigger_nb._render.tree import FA_ICONS, STALE, TaskNode
from trigger_nb.errors import TriggerNbError

PAGE_SIZE = 50


class TreeView(Protocol):
    """What a row needs from the view showing it."""

    shared: Shared
    rows: dict[str, Row]  # every row made so far, by task id

    def now(self) -> datetime: ...

    def make_details(self, node: TaskNode) -> Any:
        """The widget with a task's logs, params, attempts, traceback and output."""

    def refresh_task(self, node: TaskNode) -> str:
        """Mark the task to run again on the next execution; what to tell the user."""

    def rerun_from(self, node: TaskNode) -> str:
        """Execute the run again from the task, the tree following it; what to tell."""


class Shared:
    """One Layout and one style per kind for every row of every view: each widget would
    otherwise create two more widgets of its own (a third of the cost). Rows are styled by CSS
    classes instead. Made once per process, again if someone closed them (``close_all()``)."""

    _instance: Shared | None = None

    def __init__(self) -> None:
        import ipywidgets
        from ipywidgets.widgets.widget_string import HTMLStyle

        self.layout = ipywidgets.Layout()
        self.button_style = ipywidgets.ButtonStyle()
        self.html_style = HTMLStyle()

    @classmethod
    def get(cls) -> Shared:
        shared = cls._instance
        parts = () if shared is None else (shared.layout, shared.button_style, shared.html_style)
        if shared is None or any(part.comm is None for part in parts):
            shared = cls._instance = cls()
        return shared


class Page:
    """Rows for a list of sibling tasks, ``PAGE_SIZE`` at a time, and a "show more" button.

    The rows' widgets are the children of one grid (``box``): [chevron] name meta per line, a
    row's details and subtasks on full-width lines under it. No container per row: that was a
    quarter of the widgets of a page of parents and a third of one of leaves.
    """

    def __init__(self, view: TreeView, nodes: list[TaskNode], box: Any) -> None:
        self.view, self.nodes, self.box = view, nodes, box
        self.rows: list[Row] = []
        self.more: Any = None
        self.extend()

    def extend(self, _button: object = None) -> list[Row]:
        import ipywidgets

        start = len(self.rows)
        new = [Row(self.view, node, self) for node in self.nodes[start : start + PAGE_SIZE]]
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


class Row:
    """One task: [chevron] [status icon + name] [key, duration, attempts, properties], then its
    details and its subtasks when open."""

    def __init__(self, view: TreeView, node: TaskNode, page: Page) -> None:
        import ipywidgets

        record = node.record
        self.view, self.node, self.page = view, node, page
        view.rows[record.id] = self
        shared = view.shared
        marks: tuple[str, ...] = () if node.children else ("tnb-leaf",)
        status = node.status
        if node.stale:
            marks += (f"tnb-{STALE}",)
            status += f" ({stale_text(node.stale)})"
        self.button = ipywidgets.Button(
            description=task_title(record),
            icon=FA_ICONS[node.status],
            tooltip=f"{status}: click for logs, params, attempts and output",
            layout=shared.layout,
            style=shared.button_style,
            # one message, not one per class
            _dom_classes=("tnb-name-btn", f"tnb-st-{node.status}", *marks),
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
        self.child_page: Page | None = None  # the subtasks' rows, made when first shown
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

    def toggle_children(self, _button: object = None) -> list[Row]:
        """Show or hide the subtasks; returns the rows created now."""
        import ipywidgets

        created: list[Row] = []
        if self.children_box is None:
            self.children_box = ipywidgets.Box(
                layout=self.view.shared.layout, _dom_classes=("tnb-children", "tnb-rows")
            )
            self.child_page = Page(self.view, self.node.children, self.children_box)
            created = self.child_page.rows
        self.children_open = not self.children_open
        self.chevron.icon = "caret-down" if self.children_open else "caret-right"
        self.page.layout()
        return created


class Actions:
    """A task's "Refresh" and "Re-run from here" buttons (in its details), and a line saying
    what they did or why they could not (SPEC 3.7).

    "Refresh" marks the task (with its subtasks) to run again on the run's next execution;
    "Re-run from here" executes the run again now, in the kernel, that task and every later one
    running instead of replaying, and the tree showing it follows the execution.
    """

    def __init__(self, view: TreeView, node: TaskNode) -> None:
        import ipywidgets

        shared = view.shared
        # Their own layout: the shared one would leave them at ipywidgets' fixed 148 px, which
        # cuts "Re-run from here" once the note beside them takes the line's room.
        fitted = ipywidgets.Layout(width="auto", flex="0 0 auto")
        self.refresh = ipywidgets.Button(
            description="Refresh",
            icon="refresh",
            tooltip="run this task and its subtasks again on the run's next execution "
            "(its output stays in its history)",
            layout=fitted,
            style=shared.button_style,
            _dom_classes=("tnb-refresh-btn",),
        )
        self.rerun = ipywidgets.Button(
            description="Re-run from here",
            icon="play",
            tooltip="execute the run again now: this task and every later one run again, "
            "earlier ones are replayed",
            layout=fitted,
            style=shared.button_style,
            _dom_classes=("tnb-rerun-btn",),
        )
        self.note = ipywidgets.HTML(
            "", layout=shared.layout, style=shared.html_style, _dom_classes=("tnb-action-note",)
        )
        self.refresh.on_click(lambda _button: self._act(view.refresh_task, node))
        self.rerun.on_click(lambda _button: self._act(view.rerun_from, node))
        self.widget = ipywidgets.HBox(
            [self.refresh, self.rerun, self.note],
            layout=shared.layout,
            _dom_classes=("tnb-actions",),
        )

    def _act(self, action: Callable[[TaskNode], str], node: TaskNode) -> None:
        """Run a button's action; its outcome, or its error, goes on the note line (a click
        has no cell to raise into)."""
        import html

        self.note.value = ""
        try:
            said = action(node)
        except TriggerNbError as error:
            self.note.value = f'<span class="tnb-err">{html.escape(str(error))}</span>'
        else:
            self.note.value = f'<span class="tnb-muted">{html.escape(said)}</span>'
