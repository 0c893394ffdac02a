"""Jobs, triggers, events, payload validation and run ids (trigger_nb/job.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from trigger_nb import (
    DiskStore,
    InvalidOptionError,
    InvalidPayloadError,
    JobDefinitionError,
    NotFoundError,
    TriggerClient,
    event_trigger,
)


class NewUser(BaseModel):
    user_id: str
    age: int
    plan: str = "free"


def test_invalid_payload_lists_every_field_and_writes_nothing(
    client: TriggerClient, tmp_path: Path
) -> None:
    job = client.define_job(id="signup", trigger=event_trigger("new.user", schema=NewUser))
    job.run(lambda payload, io, ctx: io.run_task("x", lambda: 1))
    with pytest.raises(InvalidPayloadError) as caught:
        job.trigger({"age": "old"})
    error = caught.value
    assert [e["path"] for e in error.errors] == ["user_id", "age"]
    assert "user_id: Field required" in str(
        error
    ) and "age: Input should be a valid integer" in str(error)
    assert "'signup'" in str(error)
    with pytest.raises(InvalidPayloadError):
        client.send_event("new.user", {"user_id": 5})
    assert client.store.list_runs() == []


def test_the_job_receives_the_validated_payload_and_context(client: TriggerClient) -> None:
    seen: dict[str, Any] = {}
    job = client.define_job(
        id="signup", name="On signup", version="2.1.0", trigger=event_trigger("new.user", NewUser)
    )

    @job.run
    def run(payload: NewUser, io: Any, ctx: Any) -> str:
        seen.update(payload=payload, ctx=ctx)
        return payload.user_id

    (run_,) = client.send_event("new.user", {"user_id": "u1", "age": "42"}, event_id="evt-1")
    assert run_.output == "u1"
    assert seen["payload"] == NewUser(user_id="u1", age=42)
    ctx = seen["ctx"]
    assert (ctx.job.id, ctx.job.name, ctx.job.version) == ("signup", "On signup", "2.1.0")
    assert ctx.run.id == run_.id and ctx.run.execution == ctx.run.execution_number == 1
    assert not ctx.run.is_replay and ctx.event.raw_payload == ctx.event.payload
    assert ctx.event.name == "new.user" and ctx.event.id == "evt-1"
    # ctx.event.payload is the payload as sent (SPEC 2); the job receives the validated value.
    assert ctx.event.payload == {"user_id": "u1", "age": "42"}
    assert ctx.client is client
    run_.resume()
    assert seen["ctx"].run.execution == 2 and seen["payload"] == NewUser(user_id="u1", age=42)
    assert seen["ctx"].event.payload == {"user_id": "u1", "age": "42"}, "as sent, after resume too"
    assert client.load_run(run_.id).payload == {"user_id": "u1", "age": 42, "plan": "free"}


def test_run_ids_are_deterministic_per_job_version_and_payload(client: TriggerClient) -> None:
    job = client.define_job(id="det", version="1")
    job.run(lambda payload, io, ctx: None)
    a = job.trigger({"x": 1, "y": [1, 2]}).id
    assert job.trigger({"y": [1, 2], "x": 1}).id == a  # key order does not matter
    assert job.trigger({"x": 2, "y": [1, 2]}).id != a
    assert job.trigger({"x": 1, "y": [1, 2]}, run_id="my-run").id == "my-run"
    bumped = client.define_job(id="det", version="2")
    bumped.run(lambda payload, io, ctx: None)
    assert bumped.trigger({"x": 1, "y": [1, 2]}).id != a
    other_store = TriggerClient("tests", store=client.store)
    same = other_store.define_job(id="det", version="1")
    assert same.run_id_for({"x": 1, "y": [1, 2]}) == a


def test_send_event_runs_every_matching_job_and_honours_filters(client: TriggerClient) -> None:
    ran: list[str] = []
    for job_id, spec in [
        ("any-plan", event_trigger("new.user")),
        ("pro-only", event_trigger(["new.user", "upgrade"], filter={"plan": ["pro", "team"]})),
        ("other-event", event_trigger("deleted.user")),
    ]:
        job = client.define_job(id=job_id, trigger=spec)
        job.run(lambda payload, io, ctx, job_id=job_id: ran.append(job_id))
    client.send_event("new.user", {"plan": "free"})
    assert ran == ["any-plan"]
    client.send_event("new.user", {"plan": "pro"})
    assert ran == ["any-plan", "any-plan", "pro-only"]
    client.send_event("upgrade", {"plan": "team"})
    assert ran[-1] == "pro-only" and len(ran) == 4
    assert client.send_event("nobody.listens", {}) == []


def test_nested_filters_match_nested_fields(client: TriggerClient) -> None:
    ran: list[int] = []
    job = client.define_job(
        id="nested", trigger=event_trigger("order", filter={"customer": {"country": ["FR"]}})
    )
    job.run(lambda payload, io, ctx: ran.append(1))
    client.send_event("order", {"customer": {"country": "DE"}})
    client.send_event("order", {"customer": {"country": "FR"}})
    assert ran == [1]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda c: c.define_job(id=""), "job id=''"),
        (lambda c: c.define_job(id="a b"), "job id='a b'"),
        (lambda c: c.define_job(id="ok", version=""), "version=''"),
        (lambda c: c.define_job(id="ok", trigger="new.user"), "event_trigger"),
        (lambda c: c.define_job(id="ok", integrations={"run_task": object()}), "io member"),
        (lambda c: event_trigger(""), "event name"),
        (lambda c: event_trigger("x", schema=object()), "schema"),
        (lambda c: event_trigger("x", filter=["plan"]), "filter"),
        (
            lambda c: c.define_job(id="ok", run=lambda p, io, ctx: None).trigger(run_id="bad id!"),
            "run_id='bad id!'",
        ),
    ],
)
def test_bad_definitions_are_clear_errors(client: TriggerClient, call: Any, fragment: str) -> None:
    with pytest.raises((InvalidOptionError, JobDefinitionError)) as caught:
        call(client)
    assert fragment in str(caught.value)


def test_a_job_without_run_function_says_how_to_add_one(client: TriggerClient) -> None:
    with pytest.raises(JobDefinitionError, match=r"@job\.run"):
        client.define_job(id="empty").trigger()


def test_payload_that_is_not_json_needs_a_schema(client: TriggerClient) -> None:
    job = client.define_job(id="blob")
    job.run(lambda payload, io, ctx: None)
    with pytest.raises(InvalidPayloadError, match="give the job a schema"):
        job.trigger(object())


def test_runs_are_listed_loaded_by_prefix_and_resumable_from_a_new_client(
    tmp_path: Path,
) -> None:
    store = DiskStore(tmp_path / "shared")
    first = TriggerClient("c", store=store)
    job = first.define_job(id="listed")
    job.run(lambda payload, io, ctx: io.run_task("t", lambda: payload))
    run = job.trigger(7)
    assert [r.id for r in first.list_runs(job="listed")] == [run.id]
    assert first.list_runs(status="FAILURE") == []
    second = TriggerClient("c", store=DiskStore(tmp_path / "shared"))
    loaded = second.load_run(run.id[4:12])
    assert loaded.id == run.id and loaded.output == 7
    with pytest.raises(JobDefinitionError, match="not defined in this process"):
        loaded.resume()
    with pytest.raises(NotFoundError, match="no run matches"):
        second.load_run("zzzz")


def test_a_run_that_triggers_itself_fails_clearly_instead_of_hanging(
    client: TriggerClient,
) -> None:
    job = client.define_job(id="recursive")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("again", lambda: job.trigger(payload))

    result = job.trigger(1)
    assert "already executing in this thread" in str(result.exception)
    assert "new_run=True" in str(result.exception)
