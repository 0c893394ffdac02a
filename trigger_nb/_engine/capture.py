"""What one attempt of a task printed and displayed, kept in order, bounded, and stored with it.

A ``Capture`` collects the attempt's stdout and stderr text and its rich displays (mime bundles)
as they happen. A subtask's attempt gets its own capture, placed in its parent's where it
started: the parent's stored output is then everything the user saw while it ran, so replaying
a completed parent (whose subtasks are not called again) shows its subtasks' output too. The
children of ``io.parallel`` run at once and print interleaved; in their parent's output they
come in item order, as their replay does.

Capture never makes a task fail: past ``TEXT_LIMIT`` characters of text or ``RICH_LIMIT`` bytes
of displays an attempt keeps a truncation marker instead (what was shown live stays shown).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Protocol

from trigger_nb._store.sealed import seal, unreadable, unseal

# Kept per attempt (the parent's combined output is bounded the same way): enough for any report,
# small enough that a task printing a log of millions of lines does not fill the store.
TEXT_LIMIT = 1_000_000  # characters of stdout and stderr
RICH_LIMIT = 20_000_000  # bytes of display data, as stored (images base64)
STREAMS = ("stdout", "stderr")
# A display that only means something to a live kernel (a widget's model is gone on replay).
_LIVE_ONLY_MIME = "application/vnd.jupyter.widget-view+json"

# An event as stored and replayed: ("stdout" | "stderr", text) or ("display", bundle), where a
# bundle is {"data": {mime: data}, "metadata": {...}}.
Event = tuple[str, Any]


class Owner(Protocol):
    """The task call whose attempt a capture belongs to (``handle.TaskCall``): its capture is
    made when the attempt first prints or displays, so the many tasks that print nothing pay
    for no capture at all."""

    capture_output: bool  # False: ``capture_output=False``, nothing kept
    capture: Capture | None  # this attempt's, once made
    cache_key: object

    @property
    def ordered_children(self) -> bool:
        """Its subtasks' output goes in their key order (io.parallel)."""


class Capture:
    """One attempt's output. ``items`` holds, in the order they happened, text as
    ``(stream, pieces)`` (adjacent writes to one stream gather in one list of pieces, joined
    once when stored), displays as ``("display", bundle)``, truncation markers, and the
    captures of subtask attempts (each where it first printed)."""

    __slots__ = (
        "dropped", "items", "order", "ordered_children", "pieces", "rich_left", "stream",
        "text_left",
    )  # fmt: skip

    def __init__(
        self, parent: Capture | None = None, *, order: object = None, ordered_children: bool = False
    ) -> None:
        self.items: list[Any] = []
        self.order = order  # the place among its siblings when the parent orders them (an index)
        self.ordered_children = ordered_children  # io.parallel: children in item order
        self.text_left = TEXT_LIMIT
        self.rich_left = RICH_LIMIT
        self.dropped = 0  # characters or bytes not kept
        # The stream of the last item when it is text (None otherwise), and its pieces: the
        # tee appends a write to the same stream there directly (``console._Tee.write``).
        self.stream: str | None = None
        self.pieces: list[str] = []
        if parent is not None:
            parent.items.append(self)
            parent.stream = None

    def write(self, stream: str, text: str) -> None:
        """Keep ``text`` written to ``stream`` ("stdout" or "stderr")."""
        size = len(text)
        if size > self.text_left:
            text = text[: max(self.text_left, 0)]
            self.dropped += size - len(text)
        if text:
            self.text_left -= len(text)
            if self.stream == stream:
                self.pieces.append(text)
            else:
                self.pieces = [text]
                self.items.append((stream, self.pieces))
                self.stream = stream
        if size > len(text) and self.text_left >= 0:  # the marker once
            self.items.append(_Marker((stream, _marker("text", TEXT_LIMIT, "characters"))))
            self.text_left, self.stream = -1, None

    def display(self, data: dict[str, Any], metadata: dict[str, Any] | None) -> None:
        """Keep a rich display (a mime bundle as IPython publishes it)."""
        if _LIVE_ONLY_MIME in data:
            return
        bundle = {"data": _jsonable_bundle(data), "metadata": _plain(metadata or {})}
        size = len(json.dumps(bundle))
        self.stream = None
        if size <= self.rich_left:
            self.rich_left -= size
            self.items.append(("display", bundle))
            return
        self.dropped += size
        if self.rich_left >= 0:
            self.items.append(_Marker(("stderr", _marker("display", RICH_LIMIT, "bytes"))))
        self.rich_left = -1

    def has_output(self) -> bool:
        return any(not isinstance(i, Capture) or i.has_output() for i in self.items)

    def events(self) -> list[Event]:
        """The output in order, subtasks' included, adjacent text of one stream joined, bounded
        as one attempt's is."""
        flat = _Flat()
        self._into(flat)
        return flat.events

    def _into(self, flat: _Flat) -> None:
        items = self.items
        if self.ordered_children:
            items = _children_in_order(items)
        for item in items:
            if isinstance(item, Capture):
                item._into(flat)
            elif isinstance(item, _Marker) or item[0] not in STREAMS:
                flat.add(item)
            else:
                flat.add((item[0], "".join(item[1])))


class _Marker(tuple):  # type: ignore[type-arg]
    """A truncation marker: text that is not counted against the limits it reports."""


class _Flat:
    """Events flattened from nested captures, bounded like one capture (one marker for
    everything cut, from whichever capture cut it). Adjacent text of one stream is gathered
    as pieces and joined once: a task printing 10,000 lines makes 60,000 writes."""

    def __init__(self) -> None:
        self._events: list[tuple[str, Any]] = []  # text events hold a list of pieces
        self.text_left, self.rich_left = TEXT_LIMIT, RICH_LIMIT
        self.marked = False

    @property
    def events(self) -> list[Event]:
        return [
            (kind, "".join(payload) if kind in STREAMS else payload)
            for kind, payload in self._events
        ]

    def add(self, event: Event) -> None:
        kind, payload = event
        if isinstance(event, _Marker):
            self._mark(kind, payload)
        elif kind in STREAMS:
            kept = payload if len(payload) <= self.text_left else payload[: max(self.text_left, 0)]
            self.text_left -= len(payload)
            if kept:
                self._text(kind, kept)
            if len(kept) < len(payload):
                self._mark(kind, _marker("text", TEXT_LIMIT, "characters"))
        else:
            size = len(json.dumps(payload))
            if size > self.rich_left:
                self._mark("stderr", _marker("display", RICH_LIMIT, "bytes"))
                return
            self.rich_left -= size
            self._events.append((kind, payload))

    def _text(self, stream: str, text: str) -> None:
        events = self._events
        if events and events[-1][0] == stream:
            events[-1][1].append(text)
        else:
            events.append((stream, [text]))

    def _mark(self, stream: str, text: str) -> None:
        if not self.marked:
            self.marked = True
            self._text(stream, text)


def _children_in_order(items: list[Event | Capture]) -> list[Event | Capture]:
    """``items`` with every run of adjacent subtask captures sorted by their ``order``: the
    children of io.parallel start in whatever order the threads take them."""
    ordered: list[Event | Capture] = []
    run: list[Capture] = []
    for item in [*items, None]:
        if isinstance(item, Capture):
            run.append(item)
            continue
        if run:
            ordered.extend(sorted(run, key=_order_of))
            run = []
        if item is not None:
            ordered.append(item)
    return ordered


def _order_of(capture: Event | Capture) -> tuple[int, Any]:
    order = capture.order if isinstance(capture, Capture) else None
    return (0, order) if isinstance(order, int) else (1, 0)


def _marker(what: str, limit: int, unit: str) -> str:
    return (
        f"\n[trigger_nb: {what} output truncated here: an attempt keeps at most {limit:,} "
        f"{unit}; the rest was shown live but not stored]\n"
    )


def _jsonable_bundle(data: dict[str, Any]) -> dict[str, Any]:
    """A mime bundle as JSON, as notebooks store it: binary data (an image) base64-encoded."""
    out: dict[str, Any] = {}
    for mime, value in data.items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = base64.b64encode(bytes(value)).decode("ascii")
        out[str(mime)] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """``value`` if it is JSON as is, else its JSON-able shadow (never an error: capture must
    not fail a task over an odd display)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=repr))


def pack(events: list[Event]) -> bytes:
    """The stored form of an attempt's output: JSON, sealed with a checksum."""
    # ASCII JSON: a lone surrogate printed by the task survives as its escape.
    text = json.dumps({"events": events}, default=repr)
    return seal(text.encode("ascii"), 0.0)


def unpack(blob: object, what: str) -> list[Event]:
    """The events of a stored capture; CacheReadError naming ``what`` if it is damaged."""
    data, _ = unseal(blob, what)
    try:
        decoded = json.loads(bytes(data).decode("ascii"))
    except ValueError as error:  # intact bytes that are no capture: written by something else
        raise unreadable(what, f"its stored output capture is unreadable ({error})") from None
    return [(str(kind), payload) for kind, payload in decoded["events"]]


def stream_text(events: list[Event], stream: str) -> str:
    return "".join(payload for kind, payload in events if kind == stream)


def displays(events: list[Event]) -> list[dict[str, Any]]:
    """The mime bundles (``{mime: data}``) of the displays, in order."""
    return [payload["data"] for kind, payload in events if kind == "display"]
