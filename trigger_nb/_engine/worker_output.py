"""What a child prints on a Dask worker: kept per attempt, bounded, sent back (SPEC 3.6 + 3.8).

While a child of ours runs on a worker, ``sys.stdout`` and ``sys.stderr`` are wrapped in a
``_Tee`` that routes by contextvar, as the kernel's does (``console.py``): a write made in the
context of a running attempt goes into that attempt's ``WorkerOutput`` only, so several threads
of one worker running children at once each keep their own lines. Any other write (Dask's own,
a thread the child started without copying its context, another library's Dask task) goes to
the worker's stream as before.

An attempt's text is *not* written to the worker's stream as well: it travels back in the
attempt's ``Envelope`` and the kernel prints it once, in the cell, when the result arrives
(where it is captured, stored and replayed like any task's output). With a LocalCluster the
workers share the kernel's terminal: writing both would print everything twice there.

Bounded like an attempt's capture in the kernel: ``TEXT_LIMIT`` characters in all, the marker
included (so the kernel keeps what comes back whole). Past it, the text goes to the worker's
own stdout/stderr, where Dask keeps worker logs, and the marker says so. Capture never fails a
child.

Plain text only: a worker has no IPython display publisher (IPython's ``display(obj)`` prints
the object's text there, kept like a print) and its matplotlib figures are not shown.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from typing import Any, TextIO

from trigger_nb._engine.capture import TEXT_LIMIT

MARKER = (
    f"\n[trigger_nb: text output truncated here: an attempt keeps at most {TEXT_LIMIT:,} "
    "characters; the rest went to the Dask worker's own stdout/stderr]\n"
)
_KEPT = TEXT_LIMIT - len(MARKER)  # room left for the marker

# The events of an attempt as they travel: ("stdout" | "stderr", text), in the order written.
Printed = list[tuple[str, str]]

_output: contextvars.ContextVar[WorkerOutput | None] = contextvars.ContextVar(
    "trigger_nb_worker_output", default=None
)
_get_output = _output.get


class WorkerOutput:
    """One attempt's stdout and stderr text, in order: adjacent writes to one stream gather in
    one list of pieces (a print is two writes), joined once in ``printed``."""

    __slots__ = ("items", "left", "pieces", "stream")

    def __init__(self) -> None:
        self.items: list[tuple[str, list[str]]] = []
        self.left = _KEPT
        self.stream: str | None = None  # the stream of the last item
        self.pieces: list[str] = []

    def keep(self, stream: str, text: str) -> str:
        """Keep ``text`` written to ``stream``; return the part past the bound (not kept)."""
        left = self.left
        if len(text) <= left:
            self.left = left - len(text)
            self._add(stream, text)
            return ""
        if left >= 0:  # the first write past the bound: what fits, then the marker, once
            if left:
                self._add(stream, text[:left])
            self._add(stream, MARKER)
            self.left = -1
            return text[left:]
        return text

    def _add(self, stream: str, text: str) -> None:
        if self.stream == stream:
            self.pieces.append(text)
        else:
            self.pieces = [text]
            self.items.append((stream, self.pieces))
            self.stream = stream

    def printed(self) -> Printed:
        return [(stream, "".join(pieces)) for stream, pieces in self.items]


class _Tee:
    """The worker's stream, with the writes of a running attempt kept instead.

    Its ``write`` is on the path of every print (two writes each), so the common case (text
    to the stream of the last item, within the bound) appends in place without a call."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self._name = name

    def write(self, text: str) -> int:
        output = _get_output()
        if output is None or type(text) is not str:
            return self._stream.write(text)
        size = len(text)
        left = output.left - size
        if left >= 0 and output.stream == self._name:
            output.left = left
            output.pieces.append(text)
            return size
        try:
            rest = output.keep(self._name, text)
        except Exception:  # capture never fails a child: its text goes to the stream
            return self._stream.write(text)
        if rest:
            self._stream.write(rest)
        return size

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_running = 0  # attempts running in this worker process (threads of one worker)
_lock = threading.Lock()


def start_keeping(output: WorkerOutput) -> contextvars.Token[WorkerOutput | None]:
    """Keep what the attempt running in this context prints in ``output`` until
    ``stop_keeping``. The streams are wrapped while at least one attempt runs in the process,
    given back after the last. (Two functions, not a context manager: a generator-based one
    costs more than the rest of a silent child's capture.)"""
    global _running
    with _lock:
        _running += 1
        if type(sys.stdout) is not _Tee:
            sys.stdout = _Tee(sys.stdout, "stdout")
        if type(sys.stderr) is not _Tee:
            sys.stderr = _Tee(sys.stderr, "stderr")
    return _output.set(output)


def stop_keeping(token: contextvars.Token[WorkerOutput | None]) -> None:
    global _running
    _output.reset(token)
    with _lock:
        _running -= 1
        if not _running:  # given back unless someone wrapped ours meanwhile
            if type(sys.stdout) is _Tee:
                sys.stdout = sys.stdout._stream
            if type(sys.stderr) is _Tee:
                sys.stderr = sys.stderr._stream
