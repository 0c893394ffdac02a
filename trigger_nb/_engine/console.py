"""Where a task's output goes: to the screen as usual, and into its attempt's ``Capture``.

``sys.stdout`` and ``sys.stderr`` are wrapped, while any execution runs, in a ``_Tee`` that
writes through to the stream it wraps and adds the text to the capture of the task running in
the *calling context* (the task frame is a contextvar): the children of ``io.parallel`` in their
threads and ``arun_task`` coroutines under ``asyncio.gather`` each capture their own lines.
Swapping ``sys.stdout`` per task instead would mix the output of tasks running at once.

Rich displays and matplotlib figures exist only in IPython: the Jupyter layer installs a
``Console`` (``set_console``) that feeds displays to ``capture_display``, shows the figures a
task leaves open, and re-publishes displays on replay. Plain Python has none: stdout and
stderr are still captured and written again on replay.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Protocol, TextIO

from trigger_nb._engine.capture import Capture, Event, Owner
from trigger_nb._engine.execution import Frame, current_frame

_frame = current_frame.get


class Console(Protocol):
    """What a front end with rich output (an IPython kernel) adds to capture and replay."""

    def open_figures(self) -> object:
        """A token naming the figures open now (None: no figures to look after)."""

    def show_new_figures(self, before: object) -> None:
        """Display (into the running task's capture) and close the figures opened since
        ``before``: left open, inline matplotlib would show them only after the cell ends."""

    def replay_display(self, bundle: dict[str, Any]) -> None:
        """Publish a captured display again."""

    def replay_caption(self, label: str) -> None:
        """Mark the output that follows as replayed from the task ``label``."""


_console: Console | None = None


def set_console(console: Console | None) -> None:
    global _console
    _console = console


def console() -> Console | None:
    return _console


def capture_of(frame: Frame) -> Capture | None:
    """The capture of the attempt running in ``frame``, made now if it has none yet (placed in
    its parent's, made too if need be); None if that task keeps nothing."""
    call = frame.call
    if call is None or not call.capture_output:
        return None
    capture = call.capture
    if capture is not None:
        return capture
    parent = capture_of(frame.parent) if frame.parent is not None else None
    with _create_lock:  # two children of io.parallel may print first at the same moment
        capture = call.capture
        if capture is None:
            order = call.cache_key if parent is not None and parent.ordered_children else None
            capture = Capture(parent, order=order, ordered_children=call.ordered_children)
            call.capture = capture
    return capture


_create_lock = threading.Lock()


def capture_display(data: dict[str, Any], metadata: dict[str, Any] | None) -> None:
    """A display being published: kept by the running task's capture, if any."""
    frame = _frame()
    if frame is None:
        return
    with contextlib.suppress(Exception):  # capture never fails a task; it is still shown
        capture = capture_of(frame)
        if capture is not None:
            capture.display(data, metadata)


class _Tee:
    """A text stream that also feeds the calling task's capture.

    Its ``write`` is on the path of every print (a print of three values is six writes), so
    the common cases take no detour: no task running here, or one whose capture exists and has
    room."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self._name = name
        self._write = stream.write

    def write(self, text: str) -> int:
        frame = _frame()
        if frame is not None:
            call = frame.call
            if call is not None and type(text) is str:
                capture = call.capture or capture_of(frame)
                if capture is not None:
                    left = capture.text_left - len(text)
                    if left >= 0 and capture.stream == self._name:
                        capture.text_left = left
                        capture.pieces.append(text)
                    else:
                        capture.write(self._name, text)
        return self._write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_installed = 0
_install_lock = threading.Lock()


def install_streams() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` for an execution (counted: executions nest)."""
    global _installed
    with _install_lock:
        _installed += 1
        if not isinstance(sys.stdout, _Tee):
            sys.stdout = _Tee(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _Tee):
            sys.stderr = _Tee(sys.stderr, "stderr")


def uninstall_streams() -> None:
    """After the last execution, the streams as they were (unless someone replaced ours)."""
    global _installed
    with _install_lock:
        _installed = max(0, _installed - 1)
        if _installed:
            return
        if isinstance(sys.stdout, _Tee):
            sys.stdout = sys.stdout._stream
        if isinstance(sys.stderr, _Tee):
            sys.stderr = sys.stderr._stream


def write_again(events: list[Event], label: str) -> None:
    """A replayed task's output, shown again where its call is: text to the streams (a
    capturing parent keeps it), displays through the console, after a replayed caption."""
    shown = _console
    if shown is not None:
        with contextlib.suppress(Exception):  # a caption is decoration
            shown.replay_caption(label)
    for kind, payload in events:
        if kind == "stdout":
            sys.stdout.write(payload)
        elif kind == "stderr":
            sys.stderr.write(payload)
        elif shown is not None:
            shown.replay_display(payload)
    for stream in (sys.stdout, sys.stderr):
        flush = getattr(stream, "flush", None)
        if flush is not None:
            flush()


def start_figures(call: Owner) -> object:
    """The figures open before an attempt (None when there is nothing to look after)."""
    shown = _console
    if shown is None or not call.capture_output or threading.current_thread() is not _MAIN:
        return None  # pyplot's figures are global: only the main thread's tasks own theirs
    try:
        return shown.open_figures()
    except Exception:
        return None


def finish_figures(before: object) -> None:
    shown = _console
    if before is None or shown is None:
        return
    with contextlib.suppress(Exception):  # a figure not shown is no task failure
        shown.show_new_figures(before)


_MAIN = threading.main_thread()
