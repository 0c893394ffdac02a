"""Records the engine builds itself, made and changed without pydantic's validation.

Executing a task builds an attempt and sets a dozen fields of its record; validating values the
engine made or checked itself cost microseconds of every task, for nothing.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel


def assign(model: BaseModel, **values: Any) -> None:
    """Set fields of a record the engine built itself, in one step.

    pydantic's ``__setattr__`` costs about 1 µs per field and executing a task sets a dozen; it
    validates nothing here (``validate_assignment`` is off), so writing ``__dict__`` and the
    fields-set bookkeeping directly is the same result, ten times faster.
    """
    model.__dict__.update(values)
    model.__pydantic_fields_set__.update(values)


M = TypeVar("M", bound=BaseModel)
_TEMPLATES: dict[type[BaseModel], tuple[dict[str, Any], tuple[str, ...]]] = {}


def build(cls: type[M], values: dict[str, Any], unmarked: tuple[str, ...] = ()) -> M:
    """A record the engine builds from values it made or checked itself, without validation.

    Validating them again cost ~2.5 µs of every executed task (``model_construct``, which does
    the same job generically, costs more than validating). The result equals the validated
    record: every field present in field order, fresh lists for list defaults, ``values`` marked
    as set, except those named in ``unmarked`` (fields a stored entry leaves out, see
    ``TaskRecord``). Only for plain defaults and list factories, which is what the records use.
    """
    template = _TEMPLATES.get(cls)
    if template is None:
        template = _TEMPLATES[cls] = _template(cls)
    defaults, lists = template
    fields = defaults.copy()
    for name in lists:
        fields[name] = []
    fields.update(values)
    record = cls.__new__(cls)
    object.__setattr__(record, "__dict__", fields)
    marked = set(values)
    if unmarked:
        marked.difference_update(unmarked)
    object.__setattr__(record, "__pydantic_fields_set__", marked)
    object.__setattr__(record, "__pydantic_extra__", None)
    object.__setattr__(record, "__pydantic_private__", None)
    return record


def _template(cls: type[BaseModel]) -> tuple[dict[str, Any], tuple[str, ...]]:
    if not cls.__pydantic_complete__:  # deferred (see _DEFERRED): serializing needs the schema
        cls.model_rebuild()
    defaults: dict[str, Any] = {}
    lists = []
    for name, info in cls.model_fields.items():
        if info.default_factory is list:
            lists.append(name)
        elif info.default_factory is not None:  # pragma: no cover - no record has one yet
            raise TypeError(f"build() cannot fill {cls.__name__}.{name}: give it a list default")
        defaults[name] = None if info.is_required() else info.default
    return defaults, tuple(lists)
