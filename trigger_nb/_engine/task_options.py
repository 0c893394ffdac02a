"""``run_task``'s keyword options, checked once, and the task record a call starts from."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from trigger_nb._core.builder import build
from trigger_nb._core.codec import to_jsonable
from trigger_nb._core.keys import display_key
from trigger_nb._core.model import TaskRecord
from trigger_nb._core.retry import RetryOptions
from trigger_nb._core.storable import storable_data, storable_text
from trigger_nb._engine.execution import Execution
from trigger_nb._engine.invocation import check_timeout
from trigger_nb.errors import InvalidOptionError


class TaskOptions:
    """The keyword options of ``run_task``, checked once with messages naming the option."""

    KNOWN = (
        "name", "icon", "description", "properties", "params", "retry", "timeout", "on_error",
        "redact", "refresh", "retry_on", "no_retry_on", "on_code_change", "capture_output",
        "mmap", "_kind", "_fingerprint",
    )  # fmt: skip

    def __init__(self) -> None:
        self.name: str | None = None
        self.icon: str | None = None
        self.description: str | None = None
        self.properties: list[dict[str, Any]] = []
        self.params: Any = None
        self.retry: RetryOptions | None = None
        self.timeout: float | None = None
        self.on_error: Callable[..., Any] | None = None
        self.redact: list[str] = []
        self.refresh = False
        self.kind = "task"
        self.on_code_change: str | None = None  # None: the job's (or client's) policy
        self.fingerprint: dict[str, str] | None = None  # given by an integration task
        self.capture_output = True  # keep what the function prints and displays
        self.mmap = False  # big buffers of the output come back memory-mapped, read-only

    @classmethod
    def parse(cls, cache_key: object, options: dict[str, Any]) -> TaskOptions:
        unknown = sorted(set(options) - set(cls.KNOWN))
        if unknown:
            raise InvalidOptionError(
                f"run_task({cache_key!r}) got unknown option(s) {', '.join(unknown)}; "
                f"known options: {', '.join(k for k in cls.KNOWN if not k.startswith('_'))}"
            )
        o = cls()
        for label in ("name", "icon", "description"):
            value = options.get(label)
            if value is not None and not isinstance(value, str):
                raise InvalidOptionError(f"run_task {label}={value!r} is invalid: use a string")
            setattr(o, label, _storable(label, value))
        o.properties = _storable("properties", _check_properties(options.get("properties")))
        o.params = _storable("params", to_jsonable(options.get("params")))
        o.retry = _check_retry(options)
        o.timeout = check_timeout(options.get("timeout"))
        on_error = options.get("on_error")
        if on_error is not None and not callable(on_error):
            raise InvalidOptionError(
                f"run_task on_error={on_error!r} is invalid: give a function (error, task)"
            )
        o.on_error = on_error
        redact = options.get("redact") or []
        if isinstance(redact, str):
            redact = [redact]
        if not isinstance(redact, (list, tuple)) or not all(
            isinstance(path, str) and path for path in _storable("redact", redact)
        ):
            raise InvalidOptionError(
                f"run_task redact={redact!r} is invalid: give dotted paths, e.g. ['user.token']"
            )
        o.redact = list(redact)
        o.refresh = bool(options.get("refresh", False))
        o.kind = options.get("_kind", "task")
        o.on_code_change = check_code_change_policy(options.get("on_code_change"), "run_task")
        o.fingerprint = options.get("_fingerprint")
        o.capture_output = _check_switch(
            options,
            "capture_output",
            True,
            "keep what the task prints and displays, and show it again on replay",
        )
        o.mmap = _check_switch(
            options, "mmap", False, "the output's numpy arrays come back memory-mapped, read-only"
        )
        return o


DEFAULT_OPTIONS = TaskOptions()


def _check_switch(options: dict[str, Any], label: str, default: bool, meaning: str) -> bool:
    """A True/False option; anything else is an error saying what True does."""
    value = options.get(label, default)
    if not isinstance(value, bool):
        raise InvalidOptionError(
            f"run_task {label}={value!r} is invalid: use True ({meaning}) or False"
        )
    return value


def _storable(label: str, value: Any) -> Any:
    """``value`` as it can be written into the task record (UTF-8 JSON): text with a lone
    surrogate (a path from ``os.fsdecode``) is kept as its escape rather than failing deep inside
    the store; an int too long to write as text is refused here, naming the option."""
    if not value or (isinstance(value, str) and value.isascii()):
        return value
    value = storable_data(value)
    try:
        json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise InvalidOptionError(
            f"run_task {label} cannot be stored ({type(error).__name__}: {error}): use "
            "JSON-able values (ints of at most 4,300 digits)"
        ) from None
    return value


CODE_CHANGE_POLICIES = ("warn", "rerun", "ignore", "error")


def check_code_change_policy(policy: object, where: str) -> str | None:
    """``on_code_change``: None (inherit) or one of the four policies."""
    if policy is None or policy in CODE_CHANGE_POLICIES:
        return policy
    raise InvalidOptionError(
        f"{where} on_code_change={policy!r} is invalid: use one of "
        + ", ".join(repr(p) for p in CODE_CHANGE_POLICIES)
        + " (what to do when a completed task's code or inputs changed)"
    )


def _check_retry(options: dict[str, Any]) -> RetryOptions | None:
    retry = options.get("retry")
    if retry is not None and not isinstance(retry, RetryOptions):
        raise InvalidOptionError(
            f"run_task retry={retry!r} is invalid: use RetryOptions(limit=..., ...) or a preset "
            "such as trigger_nb._core.retry.standard_backoff"
        )
    retry_on, no_retry_on = options.get("retry_on"), options.get("no_retry_on")
    if retry_on is None and no_retry_on is None:
        return retry
    import dataclasses

    base = retry or RetryOptions()
    changes = {"retry_on": retry_on, "no_retry_on": no_retry_on}
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})


def _check_properties(properties: object) -> list[dict[str, Any]]:
    if properties is None:
        return []
    ok = isinstance(properties, list) and all(
        isinstance(p, dict) and "label" in p and "text" in p for p in properties
    )
    if not ok:
        raise InvalidOptionError(
            f"run_task properties={properties!r} is invalid: give a list of "
            "{'label': ..., 'text': ..., 'url': optional} dicts"
        )
    checked: list[dict[str, Any]] = properties  # type: ignore[assignment]
    return [{k: to_jsonable(v) for k, v in p.items()} for p in checked]


def new_record(
    x: Execution,
    task_id: str,
    idem: str,
    parent: str | None,
    encoded: str,
    cache_key: object,
    opts: TaskOptions,
    previous: TaskRecord | None,
    fingerprint: tuple[str, str] | None = None,
) -> TaskRecord:
    """The record of a task about to execute (``fingerprint``: its part names and key)."""
    shown = display_key(cache_key)
    name = opts.name or (shown if isinstance(shown, str) else str(shown))
    # Only what differs from the record's defaults: those are the fields marked as set.
    fields: dict[str, Any] = {
        "id": task_id,
        "run_id": x.run_id,
        "key": storable_text(encoded),
        "cache_key": shown,
        "idempotency_key": idem,
        "name": name,
    }
    if parent is not None:
        fields["parent_id"] = parent
    if opts is not DEFAULT_OPTIONS:
        fields.update(
            kind=opts.kind,
            icon=opts.icon,
            description=opts.description,
            properties=opts.properties,
            params=opts.params,
            redact=opts.redact,
        )
    if previous is None:
        fields.update(seq=x.next_seq(), created_at=x.clock.now(), first_execution=x.number)
    else:
        fields.update(
            seq=previous.seq,
            created_at=previous.created_at,
            first_execution=previous.first_execution,
            attempts=list(previous.attempts),
            wait_until=previous.wait_until,
        )
    if fingerprint is not None:
        fields["fingerprint_names"], fields["fingerprint"] = fingerprint
    # Left out of the stored entry, which restores them (``model.restore_derived``): the ids
    # always, the idempotency key when the stored key gives it back exactly, the name when it
    # is the key.
    if name == shown:
        return build(TaskRecord, fields, _DERIVED_NAMED if encoded.isascii() else _IDS_NAMED)
    return build(TaskRecord, fields, _DERIVED if encoded.isascii() else _IDS)


_IDS = ("id", "run_id")
_DERIVED = ("id", "run_id", "idempotency_key")
_IDS_NAMED = ("id", "run_id", "name")
_DERIVED_NAMED = ("id", "run_id", "idempotency_key", "name")
