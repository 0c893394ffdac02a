"""What a task printed and displayed, in its details: the Output section of every view.

The captured events of each attempt (``trigger_nb._engine.capture``) as HTML for the static
page, and as notebook outputs for the live tree (an ``ipywidgets.Output`` renders them with the
front end's own renderers: DataFrames, images, HTML). Bounded: a saved notebook keeps the static
HTML of every tree, so it carries at most ``STATIC_TEXT_CHARS`` of text and ``STATIC_RICH_BYTES``
of displays per task; the rest is a note saying where to find it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from trigger_nb._core.model import TaskRecord
from trigger_nb._engine.capture import Event
from trigger_nb._render.tree import TaskNode

STATIC_TEXT_CHARS = 20_000
STATIC_RICH_BYTES = 400_000
_IMAGES = ("image/png", "image/jpeg", "image/gif")

# "task id:attempt number" -> that attempt's events (``RunData.captures``)
Captures = Mapping[str, list[Event]]


def attempt_outputs(captures: Captures, record: TaskRecord) -> list[tuple[int, list[Event]]]:
    """``(attempt number, events)`` of the task's attempts that printed or displayed something."""
    found = []
    for attempt in record.attempts:
        if attempt.captured:
            events = captures.get(f"{record.id}:{attempt.number}")
            if events:
                found.append((attempt.number, events))
    return found


def attach(nodes: list[TaskNode], captures: Captures) -> list[TaskNode]:
    """Give every node of the tree what its attempts printed and displayed (from
    ``captures``); returns ``nodes``."""
    if captures:
        pending = list(nodes)
        while pending:
            node = pending.pop()
            node.captured = attempt_outputs(captures, node.record)
            pending.extend(node.children)
    return nodes


def captured_heading(number: int, record: TaskRecord) -> str:
    last = record.attempts[-1].number if record.attempts else number
    if number == last:
        return "Printed and displayed"
    return f"Printed and displayed by attempt #{number}"


def captured_html(outputs: Sequence[tuple[int, list[Event]]], record: TaskRecord) -> str:
    """The Output sections of a task's details, the last attempt's first."""
    sections = []
    for number, events in reversed(outputs):
        heading, body = captured_heading(number, record), _events_html(events)
        sections.append(
            f'<div class="tnb-captured" data-attempt="{number}"><b>{heading}</b>{body}</div>'
        )
    return "".join(sections)


def _events_html(events: list[Event]) -> str:
    parts: list[str] = []
    text_left, rich_left = STATIC_TEXT_CHARS, STATIC_RICH_BYTES
    left_out = 0
    for kind, payload in events:
        if kind in ("stdout", "stderr"):
            text = str(payload)
            if text_left <= 0:
                left_out += 1
                continue
            shown = text[:text_left]
            text_left -= len(shown)
            cut = " …" if len(shown) < len(text) else ""
            parts.append(f'<pre class="tnb-{kind}">{html.escape(shown)}{cut}</pre>')
            continue
        piece = display_html(payload.get("data", {}) if isinstance(payload, dict) else {})
        if len(piece) > rich_left:
            left_out += 1
            continue
        rich_left -= len(piece)
        parts.append(f'<div class="tnb-display">{piece}</div>')
    if left_out:
        parts.append(
            f'<div class="tnb-muted">{left_out} more part(s) not shown here: see '
            "<code>run.task(key).stdout</code>, <code>.displays</code> or "
            "<code>trigger-nb show RUN --task KEY --stdout</code></div>"
        )
    return "".join(parts)


def display_html(data: Mapping[str, Any]) -> str:
    """A mime bundle as HTML: an image inline, the display's own HTML (without scripts), else
    its text."""
    for mime in _IMAGES:
        if isinstance(data.get(mime), str):
            return f'<img src="data:{mime};base64,{html.escape(data[mime])}" alt="{mime}">'
    svg = data.get("image/svg+xml")
    if isinstance(svg, str):
        import base64

        encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        return f'<img src="data:image/svg+xml;base64,{encoded}" alt="svg">'
    rich = data.get("text/html")
    if isinstance(rich, list):
        rich = "".join(map(str, rich))
    if isinstance(rich, str) and "<script" not in rich.lower():
        return rich
    for mime in ("text/markdown", "text/plain", "application/json"):
        if mime in data:
            value = data[mime]
            text = value if isinstance(value, str) else json.dumps(value, indent=1)
            return f"<pre>{html.escape(text)}</pre>"
    return f'<span class="tnb-muted">a display of {html.escape(", ".join(data))}</span>'


def notebook_outputs(events: list[Event]) -> tuple[dict[str, Any], ...]:
    """The events as notebook outputs (nbformat), for an ``ipywidgets.Output``."""
    outputs: list[dict[str, Any]] = []
    for kind, payload in events:
        if kind in ("stdout", "stderr"):
            outputs.append({"output_type": "stream", "name": kind, "text": payload})
        elif isinstance(payload, dict):
            outputs.append(
                {
                    "output_type": "display_data",
                    "data": payload.get("data", {}),
                    "metadata": payload.get("metadata", {}),
                }
            )
    return tuple(outputs)
