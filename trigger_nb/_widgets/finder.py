"""Finding a task in the interactive tree: status chips with counts, a search over keys and
names, and "jump to first failure" -- what the run page offers (``_render/tree_app.js``), for
the ipywidgets tree the runs explorer shows a picked run in (``run_view.RunView``).

A chip or a search shows the matching tasks with the path to them (the parents that do not
match are there for context, their other subtasks left out); clearing both shows the whole tree
again. "Jump to first failure" goes back to the whole tree, opens the path to the task the run
page's header links (``doc_data.first_failure``) whatever page of siblings it sits on, opens
its details and marks its row.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from trigger_nb._render.doc_data import first_failure
from trigger_nb._render.keys import shown_key, task_title
from trigger_nb._render.tree import STALE, TaskNode

if TYPE_CHECKING:
    from trigger_nb._widgets.row import Page
    from trigger_nb._widgets.run_view import RunView

# The run page's chips, in its order (``CHIPS`` in tree_app.js).
CHIPS = ("all", "failed", "running", "waiting", STALE, "replayed")
ALL = "all"
JUMPED = "tnb-jumped"


def in_chip(node: TaskNode, chip: str) -> bool:
    if chip == ALL:
        return True
    if chip == STALE:
        return bool(node.stale)
    return node.status == chip


def matches(node: TaskNode, chip: str, query: str) -> bool:
    """Whether the task passes the chip and the search (its title or key contains the query,
    ignoring case)."""
    if not in_chip(node, chip):
        return False
    if not query:
        return True
    key = shown_key(node.record) or ""
    return query in task_title(node.record).lower() or query in key.lower()


def filtered(nodes: list[TaskNode], chip: str, query: str) -> list[TaskNode]:
    """The trees of ``nodes`` cut down to the matching tasks and the paths to them (copies:
    the whole tree stays as it was)."""
    kept = []
    for node in nodes:
        children = filtered(node.children, chip, query)
        if children or matches(node, chip, query):
            kept.append(dataclasses.replace(node, children=children))
    return kept


def _count(nodes: list[TaskNode], chip: str) -> int:
    return sum(in_chip(node, chip) + _count(node.children, chip) for node in nodes)


class Finder:
    """The bar above a ``RunView``'s tree. ``.widget`` is what to display."""

    def __init__(self, view: RunView) -> None:
        import ipywidgets

        self.view = view
        shared = view.shared
        self.chips = ipywidgets.ToggleButtons(
            options=[(f"{chip} {_count(view.nodes, chip):,}", chip) for chip in CHIPS],
            value=ALL,
            style={"button_width": "auto"},
        )
        self.chips.add_class("tnb-chips")
        self.search = ipywidgets.Text(placeholder="search keys and names", layout=shared.layout)
        self.search.add_class("tnb-search")
        self.failure = first_failure(view.nodes, view.record)
        self.jump_button = ipywidgets.Button(
            description="jump to first failure",
            icon="crosshairs",
            disabled=self.failure is None,
            layout=ipywidgets.Layout(width="auto"),  # its whole label, always
            style=shared.button_style,
        )
        self.jump_button.add_class("tnb-jump")
        self.chips.observe(self._show, names="value")
        self.search.observe(self._show, names="value")
        self.jump_button.on_click(self.jump)
        self.widget = ipywidgets.HBox([self.chips, self.search, self.jump_button])
        self.widget.add_class("tnb-finder")

    def _show(self, _change: object = None) -> None:
        chip, query = self.chips.value, self.search.value.strip().lower()
        if chip == ALL and not query:
            self.view.show_tree(self.view.nodes)
        else:
            self.view.show_tree(filtered(self.view.nodes, chip, query), expand_all=True)

    def jump(self, _button: object = None) -> None:
        """Show the whole tree with the path to the first failure open and its details too."""
        if self.failure is None:
            return
        if self.chips.value != ALL or self.search.value:
            self.chips.value, self.search.value = ALL, ""  # each redraws the whole tree
        page: Page | None = self.view.top_page
        row = None
        for node in _path_to(self.view.nodes, self.failure):
            assert page is not None  # the path's parents have children: their page exists
            while not any(r.node is node for r in page.rows) and len(page.rows) < len(page.nodes):
                page.extend()  # whatever page of its siblings it sits on
            row = next(r for r in page.rows if r.node is node)
            if node is not self.failure:
                if not row.children_open:
                    row.toggle_children()
                page = row.child_page
        assert row is not None
        if not row.details_open:
            row.toggle_details()
        row.button.add_class(JUMPED)


def _path_to(nodes: list[TaskNode], target: TaskNode) -> list[TaskNode]:
    """The nodes from a top-level task down to ``target``."""
    for node in nodes:
        if node is target:
            return [node]
        below = _path_to(node.children, target)
        if below:
            return [node, *below]
    return []
