"""Turning task outputs into bytes and back (pickle), with errors that say what to do."""

from __future__ import annotations

import json
import pickle
from typing import Any, NamedTuple

from trigger_nb._core.preview import type_name
from trigger_nb.errors import CacheReadError, TaskOutputError


def serialize(value: object, cache_key: object) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise unstorable(value, cache_key, error) from error


def unstorable(value: object, cache_key: object, error: Exception) -> TaskOutputError:
    """The error for an output that cannot be pickled."""
    kind = type_name(value)
    return TaskOutputError(
        f"task {cache_key!r} returned a {kind} that cannot be stored ({error}): return "
        "picklable data instead (a dict, a dataclass or pydantic model defined in a module "
        "or the notebook, a DataFrame, bytes)",
        cache_key=cache_key,
        output_type=kind,
    )


class Unpickled(NamedTuple):
    """A stored output read with its big buffers apart (``trigger_nb._store.framed``): the
    pickle stream and the buffers it refers to."""

    stream: bytes
    buffers: list[Any]  # bytearrays, or read-only memoryviews of a mapped file


Stored = bytes | memoryview | Unpickled


def loads(data: Stored) -> Any:
    """The value of a stored output."""
    if isinstance(data, Unpickled):
        return pickle.loads(data.stream, buffers=data.buffers)
    return pickle.loads(data)


def deserialize(data: Stored, what: str, refresh_hint: str) -> Any:
    try:
        return loads(data)
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
