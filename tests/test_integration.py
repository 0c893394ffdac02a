"""Integrations: client methods become tasks on io (trigger_nb/integration.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from trigger_nb import FakeClock, Integration, RetryOptions, RunStatus, TriggerClient, retry


class Mailer(Integration):
    icon = "envelope"
    retry = RetryOptions(limit=2, randomize=False)

    def __init__(self) -> None:
        self.outbox: list[tuple[str, str]] = []
        self.failures = 0

    def send_email(self, to: str, subject: str) -> dict[str, str]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("smtp down")
        self.outbox.append((to, subject))
        return {"id": f"msg-{len(self.outbox)}"}

    def send_with_task(self, to: str, *, task: Any) -> str:
        return task.idempotency_key


class PlainSdk:
    """A third-party client that knows nothing about trigger_nb."""

    def __init__(self) -> None:
        self.calls = 0
        self.customers = self

    def create(self, name: str) -> str:
        self.calls += 1
        return f"cus_{name}"

    async def fetch(self, name: str) -> str:
        await asyncio.sleep(0)
        return name[::-1]


def test_integration_methods_are_cached_named_and_retried(
    client: TriggerClient, clock: FakeClock
) -> None:
    mail = Mailer()
    mail.failures = 1
    job = client.define_job(id="mail", integrations={"mail": mail})

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> Any:
        return io.mail.send_email("welcome", to="ada@example.com", subject="Welcome!")

    assert job.trigger().output == {"id": "msg-1"}
    assert job.trigger().output == {"id": "msg-1"}
    assert mail.outbox == [("ada@example.com", "Welcome!")]
    task = job.trigger().task("welcome")
    assert task.name == "send_email" and task.icon == "envelope"
    assert task.params == {"to": "ada@example.com", "subject": "Welcome!"}
    assert len(task.attempts) == 2 and clock.sleeps == [1.0]


def test_integration_method_can_receive_the_task(client: TriggerClient) -> None:
    job = client.define_job(id="mail-task", integrations={"mail": Mailer()})
    job.run(lambda payload, io, ctx: io.mail.send_with_task("k", "ada"))
    key = job.trigger().output
    assert isinstance(key, str) and len(key) == 64


def test_a_plain_client_object_is_wrapped_with_standard_backoff(client: TriggerClient) -> None:
    sdk = PlainSdk()
    job = client.define_job(id="sdk", integrations={"stripe": sdk})

    @job.run
    async def run(payload: Any, io: Any, ctx: Any) -> list[str]:
        created = io.stripe.customers.create("c1", "ada")
        fetched = await io.stripe.fetch("f1", "ada")
        return [created, fetched]

    assert job.trigger().output == ["cus_ada", "ada"]
    assert job.trigger().output == ["cus_ada", "ada"]
    assert sdk.calls == 1
    task = job.trigger().task("c1")
    assert task.name == "customers.create" and task.icon == "stripe"
    assert task.params == {"args": ["ada"]}


def test_task_options_override_the_integration_defaults(
    client: TriggerClient, clock: FakeClock
) -> None:
    mail = Mailer()
    mail.failures = 5
    job = client.define_job(id="override", integrations={"mail": mail})

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.mail.send_email("w", to="a", subject="s", task_options={"retry": retry.standard_backoff})

    # Mailer's own retry (2 attempts) would fail; the preset's 8 attempts outlast 5 failures.
    assert job.trigger().status is RunStatus.SUCCESS
    assert len(clock.sleeps) == 5 and mail.outbox == [("a", "s")]


def test_unknown_integration_and_method_errors_name_them(client: TriggerClient) -> None:
    job = client.define_job(id="typo", integrations={"mail": Mailer()})
    errors: list[str] = []

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        for action in (lambda: io.slack, lambda: io.mail.send_fax):
            try:
                action()
            except AttributeError as error:
                errors.append(str(error))

    job.trigger()
    assert "integrations of this job: mail" in errors[0]
    assert "integration 'mail' has no method 'send_fax'" in errors[1]
