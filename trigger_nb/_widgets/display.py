"""How a ``JobRun`` displays in a notebook: its interactive task tree.

``register(ip)`` makes the shell show a ``JobRun`` with ``show_run``: two outputs, the run's
page (``_render.document``, readable without a kernel) and beside it the hidden widget through
which the page's "show output", "Refresh" and "Re-run from here" reach this kernel
(``bridge``), as under a ``%%trigger_job`` cell.
A registered display function wins over the run's own ``_repr_mimebundle_`` (the page and text,
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
    """Show every ``JobRun`` displayed in shell ``ip`` as ``show_run`` does."""
    formatter = ip.display_formatter.ipython_display_formatter
    formatter.for_type_by_name(RUN_MODULE, RUN_CLASS, show_run)


def show_run(run: JobRun) -> bool:
    """Display ``run`` in a live kernel as a finished ``%%trigger_job`` cell shows it: the
    run's page with its link to the kernel (a finished ``LiveRunView``: "Re-run from here"
    shows the execution live, then the new page). Without ipywidgets or outside a kernel, the
    page only. Returns True: IPython shows nothing else for it."""
    from trigger_nb._render.bundle import static_mimebundle
    from trigger_nb._widgets.output import display, has_widget_kernel
    from trigger_nb._widgets.run_view import run_clock, run_data

    data = run_data(run)
    if has_widget_kernel() and importlib.util.find_spec("ipywidgets") is not None:
        from trigger_nb._widgets.live import LiveRunView

        view = LiveRunView(title=f"{run.record.job_name} · {run.id}", clock=run_clock(run))
        view.finish(run, data)
        display(view)
    else:
        display(static_mimebundle(data), raw=True)
    return True
