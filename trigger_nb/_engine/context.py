"""``ctx``, the run function's third argument: the job, the run, the event and the client.

SPEC 2: ``ctx.job`` (id, name, version), ``ctx.run`` (id, execution number, started_at),
``ctx.event`` (name, id, timestamp, raw payload) and ``ctx.client``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from trigger_nb._engine.host import RunHost


@dataclasses.dataclass(frozen=True)
class JobContext:
    id: str
    name: str
    version: str


@dataclasses.dataclass(frozen=True)
class RunContext:
    id: str
    execution: int  # 1 on the first execution, 2 on the first re-execution, ...
    started_at: datetime

    @property
    def execution_number(self) -> int:
        return self.execution

    @property
    def is_replay(self) -> bool:
        """True from the second execution on: completed tasks are being replayed."""
        return self.execution > 1


@dataclasses.dataclass(frozen=True)
class EventContext:
    name: str | None
    id: str
    timestamp: datetime
    payload: Any  # the raw (JSON) payload, as sent; the run function gets the validated one

    @property
    def raw_payload(self) -> Any:
        return self.payload


@dataclasses.dataclass(frozen=True)
class Context:
    """``ctx``, the run function's third argument."""

    job: JobContext
    run: RunContext
    event: EventContext
    # The TriggerClient executing the run, typed as the engine sees it (it never names the
    # client's class): its id, store, clock and send_event.
    client: RunHost
