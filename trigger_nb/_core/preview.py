"""How an output is shown without its full value: its type name, a short one-line preview, and
redaction of the paths a task marks as secret (``redact=["user.token"]``) in every view.
"""

from __future__ import annotations

import reprlib
from typing import Any

from pydantic import BaseModel

PREVIEW_CHARS = 200
REDACTED = "[REDACTED]"


def type_name(value: object) -> str:
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


class _PreviewRepr(reprlib.Repr):
    def repr_bytes(self, value: bytes, level: int) -> str:
        """reprlib's text for bytes, built from both ends only.

        reprlib would ``repr()`` the whole value before cutting it: 80 ms for a 10 MB output.
        Each byte takes at least one character, so escaping as many bytes at each end yields the
        same head and tail (the only parts shown); the quote is the one ``repr`` picks for the
        whole value.
        """
        if len(value) <= self.maxother:
            return self.repr_instance(value, level)
        head = max(0, (self.maxother - 3) // 2)
        tail = max(0, self.maxother - 3 - head)
        quote = '"' if b"'" in value and b'"' not in value else "'"

        def body(chunk: bytes) -> str:
            text = repr(chunk)[2:-1]
            return text.replace("'", "\\'") if quote == "'" and repr(chunk)[1] == '"' else text

        start = ("b" + quote + body(value[:head]))[:head]
        end = (body(value[len(value) - tail :]) + quote)[-tail:] if tail else ""
        return start + "..." + end  # reprlib's fill value


_preview_repr = _PreviewRepr()
_preview_repr.maxstring = PREVIEW_CHARS
_preview_repr.maxother = PREVIEW_CHARS
_preview_repr.maxlist = _preview_repr.maxtuple = _preview_repr.maxset = 10
_preview_repr.maxdict = 10


_SCALARS = (int, float, bool, type(None))


def preview(value: object, redact: list[str] | None = None) -> str:
    """A short, safe one-line text of a value, with redacted paths masked."""
    if type(value) in _SCALARS:  # most outputs: their repr is already one short line
        text = repr(value)
        return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
    if redact:
        value = redact_value(to_plain(value), redact)
    try:
        text = _preview_repr.repr(value)
    except Exception as error:  # a broken __repr__ must not fail the task
        text = f"<{type_name(value)}: repr failed: {error}>"
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def to_plain(value: object) -> Any:
    """Pydantic models and dataclasses as dicts, recursively; other values unchanged."""
    import dataclasses

    if isinstance(value, BaseModel):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def redact_value(value: Any, paths: list[str]) -> Any:
    """Mask each dotted path (``"user.password"``, ``"items.*.token"``) of a plain value."""
    for path in paths:
        value = _mask(value, path.split("."))
    return value


def _mask(value: Any, parts: list[str]) -> Any:
    if not parts:
        return REDACTED
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        return {k: (_mask(v, rest) if head in ("*", str(k)) else v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, rest) if head == "*" or head == str(i) else v for i, v in enumerate(value)]
    return value
