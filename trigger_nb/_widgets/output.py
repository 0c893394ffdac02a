"""How trigger_nb's views become notebook outputs: the widget where a widget manager runs, its
static HTML and text everywhere else (a saved notebook, nbconvert, GitHub, a terminal).

``display`` and ``update_display`` are IPython's, typed: every view and magic shows its outputs
through them.
"""

from __future__ import annotations

import sys
from typing import Any

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def has_widget_kernel() -> bool:
    """True inside a Jupyter kernel (a frontend can show widgets); never imports IPython."""
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def mimebundle(widget: Any, html: str, text: str) -> dict[str, Any]:
    """The output showing ``widget``, with ``html`` and ``text`` for viewers without one."""
    view = {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
    return {WIDGET_VIEW_MIME: view, "text/html": html, "text/plain": text}


def display(obj: Any, **options: Any) -> Any:
    """``IPython.display.display``: shows ``obj``; with ``display_id=True``, returns its handle."""
    from IPython.display import display as show

    return show(obj, **options)  # type: ignore[no-untyped-call]


def update_display(obj: Any, *, display_id: str, **options: Any) -> None:
    """``IPython.display.update_display``: replaces the output shown under ``display_id``."""
    from IPython.display import update_display as update

    update(obj, display_id=display_id, **options)  # type: ignore[no-untyped-call]
