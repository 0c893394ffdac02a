"""Records built by the engine without validation are the records validation would give."""

from __future__ import annotations

from datetime import datetime, timezone

from trigger_nb._core.builder import build
from trigger_nb._core.model import AttemptRecord, TaskRecord, TaskStatus

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
VALUES = {
    "id": "a" * 24,
    "run_id": "run_1",
    "parent_id": "p" * 24,
    "key": 'l["s", "send"]',
    "cache_key": ["send", 3],
    "idempotency_key": "f" * 64,
    "name": "Send",
    "seq": 7,
    "created_at": NOW,
    "redact": ["token"],
}


def test_build_equals_the_validated_record_and_stores_the_same_json() -> None:
    built, validated = build(TaskRecord, VALUES), TaskRecord(**VALUES)
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set == set(VALUES)
    assert list(built.__dict__) == list(TaskRecord.model_fields)  # field order: same JSON
    serialize = TaskRecord.__pydantic_serializer__.to_json
    assert serialize(built, exclude_defaults=True) == serialize(validated, exclude_defaults=True)
    assert TaskRecord.model_validate_json(serialize(built)) == validated


def test_build_gives_every_record_lists_of_its_own() -> None:
    first, second = build(TaskRecord, VALUES), build(TaskRecord, VALUES)
    first.attempts.append(build(AttemptRecord, {"number": 1, "execution": 1, "started_at": NOW}))
    first.output_properties.append({"label": "rows", "text": "3"})
    assert second.attempts == [] and second.output_properties == []
    assert first.attempts[0].status is TaskStatus.RUNNING  # defaults filled in
