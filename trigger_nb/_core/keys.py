"""Cache keys: validation, typed encoding, and the ids derived from them.

Keys are encoded *with their types* so ``["a", "b"]``, ``"a:b"``, ``1`` and ``"1"`` are four
different keys (Trigger.dev v2 joined key parts with ``:`` and collided these). The encoding is a
compact JSON text so it stays readable in the store and stable across Python versions.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from trigger_nb._core.storable import storable_text
from trigger_nb.errors import InvalidCacheKeyError

TASK_ID_CHARS = 24
_INT_TEXT_LIMIT = 10**1000  # far below Python's 4,300-digit int-to-text limit
_json_string = json.encoder.encode_basestring_ascii  # what json.dumps uses for a str
_PART_TYPES = (str, int, float, bool, type(None))


def encode_key(cache_key: object) -> str:
    """The canonical text of a cache key; raises InvalidCacheKeyError for anything unsupported."""
    if isinstance(cache_key, str):
        if not cache_key:
            raise InvalidCacheKeyError(
                "cache key is an empty string: give each task a non-empty key, e.g. 'send-email'"
            )
        return "s" + cache_key
    if isinstance(cache_key, (list, tuple)):
        if not cache_key:
            raise InvalidCacheKeyError(
                "cache key is an empty list: give at least one part, e.g. ['send-email', user_id]"
            )
        fast = _fast_list_text(cache_key)
        if fast is not None:
            return "l" + fast
        return "l" + json.dumps([_encode_part(part, i) for i, part in enumerate(cache_key)])
    if isinstance(cache_key, _PART_TYPES) and cache_key is not None:
        return "v" + json.dumps(_encode_part(cache_key, None))
    raise InvalidCacheKeyError(
        f"cache key of type {type(cache_key).__name__} is not supported: use a non-empty string, "
        "or a list of strings, ints, floats, bools or None"
    )


def _fast_list_text(parts: list[Any] | tuple[Any, ...]) -> str | None:
    """``json.dumps`` of the encoded parts, byte for byte, for the common part types.

    Replay encodes every key it meets, and json.dumps of nested lists was most of that cost. Exact
    types only (a str or int subclass takes the general path); None means "use the general path".
    The stored encoding must never change: tests compare this to the general path.
    """
    texts = []
    for part in parts:
        kind = type(part)
        if kind is str:
            texts.append('["s", ' + _json_string(part) + "]")
        elif kind is int and -_INT_TEXT_LIMIT < part < _INT_TEXT_LIMIT:
            texts.append('["i", "' + str(part) + '"]')
        elif kind is bool:
            texts.append('["b", true]' if part else '["b", false]')
        elif part is None:
            texts.append('["n"]')
        else:
            return None
    return "[" + ", ".join(texts) + "]"


def _encode_part(part: object, index: int | None) -> list[Any]:
    where = "cache key" if index is None else f"cache key part {index}"
    # bool before int: True is an int in Python but must not equal the key 1.
    if isinstance(part, bool):
        return ["b", part]
    if isinstance(part, int):
        try:
            return ["i", str(part)]
        except ValueError:  # Python refuses to turn ints of more than 4,300 digits into text
            raise InvalidCacheKeyError(
                f"{where} is an int with too many digits to store as text: use a shorter key "
                "part, e.g. a hash of the number"
            ) from None
    if isinstance(part, float):
        return ["f", repr(part) if not math.isnan(part) else "nan"]
    if isinstance(part, str):
        return ["s", part]
    if part is None:
        return ["n"]
    raise InvalidCacheKeyError(
        f"{where} of type {type(part).__name__} is not supported: key parts must be strings, "
        "ints, floats, bools or None (convert it, e.g. str(value))"
    )


def display_key(cache_key: object) -> Any:
    """A JSON-able form of the key for records and views."""
    if isinstance(cache_key, (list, tuple)):
        return [_display_part(p) for p in cache_key]
    return _display_part(cache_key)


def _display_part(part: object) -> Any:
    if isinstance(part, float) and not math.isfinite(part):
        return repr(part)
    if isinstance(part, str):
        return storable_text(part)
    return part


def idempotency_key(run_id: str, parent_id: str | None, encoded_key: str) -> str:
    """sha256 hex of run id, parent scope and key: stable across executions and processes."""
    material = f"{run_id}\x1f{parent_id or ''}\x1f{encoded_key}"
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


def task_id_for(idempotency: str) -> str:
    return idempotency[:TASK_ID_CHARS]
