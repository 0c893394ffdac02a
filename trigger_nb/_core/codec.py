"""Turning task outputs into bytes and back (pickle), with errors that say what to do."""

from __future__ import annotations

import json
import pickle
from typing import Any

from trigger_nb._core.preview import type_name
from trigger_nb.errors import CacheReadError, TaskOutputError


def serialize(value: object, cache_key: object) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        kind = type_name(value)
        raise TaskOutputError(
            f"task {cache_key!r} returned a {kind} that cannot be stored ({error}): return "
            "picklable data instead (a dict, a dataclass or pydantic model defined in a module "
            "or the notebook, a DataFrame, bytes)",
            cache_key=cache_key,
            output_type=kind,
        ) from error


def deserialize(data: bytes | memoryview, what: str, refresh_hint: str) -> Any:
    try:
        return pickle.loads(data)
    except Exception as error:
        raise CacheReadError(
            f"{what}: the stored output cannot be loaded ({type(error).__name__}: {error}). "
            f"If its class moved or was renamed, restore it; otherwise {refresh_hint}"
        ) from error


def to_jsonable(value: object) -> Any:
    """A JSON-able rendering of ``value`` for params and JSON exports (repr as the fallback)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        pass
    try:
        from pydantic import TypeAdapter

        return TypeAdapter(Any).dump_python(value, mode="json")
    except Exception:
        pass
    try:
        return repr(value)
    except Exception:  # a broken __repr__ too: the type is all that can be said
        return f"<unrepresentable {type(value).__name__}>"
