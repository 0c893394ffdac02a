"""What the engine needs of whoever executes a run, as protocols: the engine never names the
client's classes (``trigger_nb._client.job``'s ``Job`` and ``TriggerClient`` satisfy these by
their shape).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from trigger_nb._core.clock import Clock
from trigger_nb._engine.execution import Identified
from trigger_nb._store.store import Store


class JobSpec(Protocol):
    """A job, as an execution reads it."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def integrations(self) -> dict[str, Any]: ...

    @property
    def run_fn(self) -> Callable[..., Any] | None: ...


class RunHost(Protocol):
    """The client executing a run: where it is stored, its clock, and its jobs' events. It is
    also ``ctx.client``."""

    @property
    def id(self) -> str: ...

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    def send_event(
        self, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> Sequence[Identified]:
        """Run every job listening for ``name`` (``io.send_event``); the runs it executed."""
        ...


class TaskRunner(Protocol):
    """What runs tasks on behalf of a helper (``io.parallel``'s fan-out, an integration's
    methods): ``io`` itself. Named here so those helpers need not import ``io``, which imports
    them."""

    def run_task(self, cache_key: object, fn: Callable[..., Any], **options: Any) -> Any: ...

    async def arun_task(self, cache_key: object, fn: Callable[..., Any], **options: Any) -> Any: ...
