"""Rich output of tasks in IPython: displays captured as they are published, matplotlib figures
a task leaves open shown (and so captured) when it ends, captured displays published again on
replay under a small "replayed" caption.

``install(shell)`` wraps the shell's display publisher once: every display still goes out as
before; one published while a task runs is also kept by that task's capture
(``trigger_nb._engine.console``). It also flushes stdout and stderr before a display only when
they hold something (``_flush_pending_streams``). Nothing here imports IPython: the shell is
given.
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
        if callable(getattr(publisher, "_flush_streams", None)):
            publisher._flush_streams = _flush_pending_streams
    set_console(ShellConsole(shell))


def _flush_pending_streams() -> None:
    """ipykernel's display publisher flushes stdout and stderr before every display, so that
    what was printed shows first; a flush from the main thread waits for the kernel's I/O
    thread to answer even when nothing is waiting (~0.5-1.5 ms a stream, most of a display's
    cost: a run's view makes three). A kernel stream with nothing written since its last flush
    (``_flush_pending`` and ``_subprocess_flush_pending`` false: set by every write) is not
    flushed; what was printed still goes out first: a flush under way is on the I/O thread,
    which sends the display after it. Any other stream (a capture's, another kernel's) is."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "_flush_pending", True) or getattr(
            stream, "_subprocess_flush_pending", True
        ):
            stream.flush()


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
