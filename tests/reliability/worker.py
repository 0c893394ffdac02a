"""A process that executes one run whose tasks have side effects; the reliability tests kill it.

Usage: ``python worker.py STORE_DIR EFFECTS_FILE TASKS [DELAY_SECONDS]``

Task ``i`` appends the line ``i`` to EFFECTS_FILE (flushed, so a SIGKILL loses nothing already
written) and returns ``{"i": i, "blob": ...}``; every 25th task returns a 40 KB blob, which
diskcache stores as a separate file, so kills also land in file writes. The process prints
``ready`` before the run starts and one JSON line with the outcome after it.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from trigger_nb import TriggerClient

BIG_EVERY = 25
BIG_BYTES = 40_000


def expected_output(i: int) -> dict[str, Any]:
    blob = bytes([i % 251]) * (BIG_BYTES if i % BIG_EVERY == 0 else 10)
    return {"i": i, "blob": blob}


def main() -> None:
    store, effects, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    client = TriggerClient("reliability", store=store)
    job = client.define_job("side-effects")

    @job.run
    def run(payload: dict[str, int], io: Any, ctx: Any) -> int:
        with open(effects, "a") as log:

            def effect(i: int) -> dict[str, Any]:
                log.write(f"{i}\n")
                log.flush()
                if delay:
                    time.sleep(delay)
                return expected_output(i)

            for i in range(payload["tasks"]):
                assert io.run_task(f"effect-{i}", lambda i=i: effect(i)) == expected_output(i)
        return payload["tasks"]

    print("ready", flush=True)
    result = job.trigger({"tasks": tasks})
    history = result.execution_history[-1]
    outcome = {
        "run_id": result.id,
        "status": result.status.value,
        "error": result.error.summary() if result.error else None,
        "executed": history.executed,
        "replayed": history.replayed,
    }
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
