"""Rich output of tasks in IPython: displays captured as they are published, matplotlib figures
a task leaves open shown (and so captured) when it ends, captured displays published again on
replay under a small "replayed" caption.

``install(shell)`` wraps the shell's display publisher once: every display still goes out as
before; one published while a task runs is also kept by that task's capture
(``trigger_nb._engine.console``). Nothing here imports IPython: the shell is given.
"""

from __future__ import annotations

import html
import sys
from typing import Any

from trigger_nb._engine.console import capture_display, set_console

_WRAPPED = "_trigger_nb_captures"
REPLAYED_CLASS = "trigger-nb-replayed"
_CAPTION_STYLE = (
    "border-left: 3px solid #c8c8c8; padding: 0 0 0 6px; margin: 2px 0; color: #888;"
    " font-size: 11px; font-family: var(--jp-ui-font-family, sans-serif)"
)


def install(shell: Any) -> None:
    """Capture the displays of tasks run in ``shell``, and replay them there."""
    publisher = getattr(shell, "display_pub", None)
    if publisher is None:
        return
    publish = publisher.publish
    if not getattr(publish, _WRAPPED, False):

        def capturing_publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
            if isinstance(data, dict) and not kwargs.get("update") and not _is_caption(metadata):
                capture_display(data, metadata if isinstance(metadata, dict) else None)
            return publish(data, metadata, *args, **kwargs)

        setattr(capturing_publish, _WRAPPED, True)
        publisher.publish = capturing_publish
    set_console(ShellConsole(shell))


class ShellConsole:
    """The ``Console`` of an IPython shell (see ``trigger_nb._engine.console``)."""

    def __init__(self, shell: Any) -> None:
        self._shell = shell

    def open_figures(self) -> object:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None or "inline" not in str(pyplot.get_backend()):
            return None  # another backend draws its own windows: nothing waits for the cell
        return set(pyplot.get_fignums())

    def show_new_figures(self, before: object) -> None:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None or not isinstance(before, set):
            return
        for number in pyplot.get_fignums():
            if number in before:
                continue
            figure = pyplot.figure(number)
            data, metadata = self._shell.display_formatter.format(figure)
            self._shell.display_pub.publish(data, metadata)
            pyplot.close(figure)  # shown now, as the inline backend would after the cell

    def replay_display(self, bundle: dict[str, Any]) -> None:
        metadata = dict(bundle.get("metadata") or {})
        metadata["trigger_nb"] = {"replayed": True}
        self._shell.display_pub.publish(bundle["data"], metadata)

    def replay_caption(self, label: str) -> None:
        text = f"↻ replayed output of task {label}"
        shown = html.escape(text, quote=False)
        caption = f'<div class="{REPLAYED_CLASS}" style="{_CAPTION_STYLE}">{shown}</div>'
        sys.stdout.flush()  # the caption after what was printed before it
        self._shell.display_pub.publish({"text/html": caption}, {"trigger_nb": {"caption": True}})


def _is_caption(metadata: Any) -> bool:
    own = metadata.get("trigger_nb") if isinstance(metadata, dict) else None
    return isinstance(own, dict) and bool(own.get("caption"))
