"""How a ``JobRun`` displays in a notebook: its interactive task tree.

``register(ip)`` makes the shell's display formatter show a ``JobRun`` with ``run_mimebundle``:
a registered formatter wins over the run's own ``_repr_mimebundle_`` (the static HTML and text,
``_render.bundle``), which is what a run shows anywhere else. ``%load_ext trigger_nb`` registers
it, and so does ``import trigger_nb`` in a shell that has IPython loaded already.

This module is imported then, so it stays light: it names ``JobRun`` by its module and class
name (nothing is imported to register), and it loads the tree's code (ipywidgets, pydantic)
only when a run is first displayed.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trigger_nb._client.run import JobRun

RUN_MODULE, RUN_CLASS = "trigger_nb._client.run", "JobRun"


def register(ip: Any) -> None:
    """Show every ``JobRun`` displayed in shell ``ip`` as ``run_mimebundle`` does."""
    formatter = ip.display_formatter.mimebundle_formatter
    formatter.for_type_by_name(RUN_MODULE, RUN_CLASS, run_mimebundle)


def run_mimebundle(run: JobRun) -> dict[str, Any]:
    """How a ``JobRun`` displays: the widget in a live kernel, always static HTML and text
    (without ipywidgets installed, the static HTML and text only)."""
    from trigger_nb._render.bundle import static_mimebundle
    from trigger_nb._widgets.output import has_widget_kernel, mimebundle
    from trigger_nb._widgets.run_view import RunView, run_data

    if not has_widget_kernel() or importlib.util.find_spec("ipywidgets") is None:
        return static_mimebundle(run_data(run))
    from trigger_nb._widgets.live import follow_reruns

    view = RunView(run)
    follow_reruns(view)  # "Re-run from here" shows the execution in place of this tree
    return mimebundle(view.widget, *view.static())
