"""What starts a job: event triggers, and a payload's canonical JSON.

``event_trigger`` names the events (with an optional payload filter and schema) that run a job;
``plain_json`` and ``storable_json`` turn a payload into the JSON a run's id is derived from and
stored with.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable
from typing import Any

from trigger_nb.errors import InvalidOptionError, InvalidPayloadError


@dataclasses.dataclass(frozen=True)
class EventTrigger:
    """Runs a job when an event with one of ``names`` (and matching ``filter``) is sent."""

    names: tuple[str, ...]
    schema: Any = None
    filter: dict[str, Any] | None = None

    @functools.cached_property
    def adapter(self) -> Any:
        """The pydantic TypeAdapter of ``schema``, built once: every trigger validates with it."""
        return schema_adapter(self.schema)

    def matches(self, name: str, payload: Any) -> bool:
        return name in self.names and (self.filter is None or _matches(self.filter, payload))


def event_trigger(
    name: str | Iterable[str], schema: Any = None, filter: dict[str, Any] | None = None
) -> EventTrigger:
    """A trigger for events named ``name`` (or any of a list), validated by ``schema``."""
    names = (name,) if isinstance(name, str) else tuple(name)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidOptionError(
            f"event_trigger name={name!r} is invalid: give an event name such as 'new.user' "
            "or a list of them"
        )
    if filter is not None and not isinstance(filter, dict):
        raise InvalidOptionError(
            f"event_trigger filter={filter!r} is invalid: map payload fields to allowed values, "
            "e.g. {'plan': ['pro', 'team']}"
        )
    trigger = EventTrigger(names=names, schema=schema, filter=filter)
    if schema is not None:
        trigger.adapter  # noqa: B018 - build it now, so an unusable schema fails at definition
    return trigger


def _matches(filter: dict[str, Any], payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    for field, allowed in filter.items():
        value = payload.get(field)
        if isinstance(allowed, dict):
            if not _matches(allowed, value):
                return False
        elif value not in (allowed if isinstance(allowed, (list, tuple, set)) else [allowed]):
            return False
    return True


def schema_adapter(schema: Any) -> Any:
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(schema)
    except Exception as error:
        raise InvalidOptionError(
            f"schema {schema!r} cannot validate payloads ({error}): give a pydantic model or a "
            "type pydantic.TypeAdapter accepts"
        ) from error


def plain_json(payload: Any, job_id: str) -> Any:
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(Any).dump_python(payload, mode="json")
    except Exception as error:
        if "surrogates not allowed" in str(error):  # JSON-like, but text UTF-8 cannot hold
            storable_json(payload, job_id)
        raise InvalidPayloadError(
            f"payload for job {job_id!r} is a {type(payload).__name__} that cannot be turned "
            f"into JSON ({error}): pass JSON-like data, or give the job a schema",
            errors=[{"path": "(payload)", "message": str(error)}],
        ) from None


def storable_json(payload_json: Any, job_id: str) -> Any:
    """The payload's JSON form, once checked to be writable as UTF-8 JSON (it names the run and is
    stored with it): a lone surrogate or an int of more than 4,300 digits is an invalid payload
    here instead of an error from deep inside the store."""
    try:
        json.dumps(payload_json, ensure_ascii=False, sort_keys=True).encode("utf-8")
    except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
        message = f"{type(error).__name__}: {error}"
        raise InvalidPayloadError(
            f"payload for job {job_id!r} cannot be stored as JSON ({message}): pass valid "
            "Unicode text (a path from os.fsdecode may hold lone surrogates: decode its bytes "
            "with errors='replace') and ints of at most 4,300 digits",
            errors=[{"path": "(payload)", "message": message}],
        ) from None
    return payload_json
