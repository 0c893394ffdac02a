"""``TreeBar``: the one widget beside a finished run's page, making the interactive parts on
demand while a kernel lives.

A finished run shows as a page of HTML (``_render.document``: tree, filters, timeline; it needs
no kernel, so a reopened notebook still shows it). What needs the kernel (a task's full output
in its own rich display, actions on tasks) lives in the interactive tree (``RunView``), made
only when "interactive tree" is clicked: a run's view costs one button until then. While it is
open the page hides itself (``app_css.REOPEN_CSS``); closing it shows the page again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trigger_nb._render.data import RunData
from trigger_nb._widgets.row import Shared
from trigger_nb._widgets.run_view import RunView

if TYPE_CHECKING:
    from trigger_nb._client.run import JobRun

OPEN_TEXT = "interactive tree"
CLOSE_TEXT = "back to the run page"


class TreeBar:
    """``.widget`` to display; ``.open()`` makes (once) and shows the ``RunView``.

    ``data``: the run as the page beside it showed it: the tree opened later shows the same
    execution, even when the run went on since (the handle ``run`` follows it)."""

    def __init__(
        self,
        run: JobRun,
        data: RunData,
        *,
        box: Any = None,
        rerunner: Callable[[str], None] | None = None,
    ) -> None:
        """``box``: a container widget to show the button in (the live view's, so finishing
        makes one widget, not two); else a new one. ``rerunner``: what the tree's "Re-run
        from here" does with a task id (the live view that follows the execution)."""
        self.rerunner = rerunner
        import ipywidgets

        shared = Shared.get()
        self.run, self._data = run, data
        self.run_view: RunView | None = None
        self.button = ipywidgets.Button(
            description=OPEN_TEXT,
            icon="sitemap",
            tooltip="rows with each task's full output and actions (needs this kernel)",
            layout=shared.layout,
            style=shared.button_style,
            _dom_classes=("tnb-open-tree",),
        )
        self.button.on_click(self.toggle)
        if box is None:
            box = ipywidgets.VBox(layout=shared.layout, _dom_classes=("tnb", "tnb-tree-bar"))
        box.children = (self.button,)
        self.widget = box

    def open(self) -> RunView:
        if self.run_view is None:
            data = self._data
            seen = (list(data.tasks), list(data.logs))
            self.run_view = RunView(self.run, seen=seen, record=data.record)
            self.run_view.rerunner = self.rerunner
        self.widget.children = (self.button, self.run_view.widget)
        self.button.description, self.button.icon = CLOSE_TEXT, "times"
        return self.run_view

    def close(self) -> None:
        self.widget.children = (self.button,)
        self.button.description, self.button.icon = OPEN_TEXT, "sitemap"

    def toggle(self, _button: Any = None) -> None:
        if len(self.widget.children) > 1:
            self.close()
        else:
            self.open()
