"""What fingerprinting a big value costs: a 1 GB numpy array read by the tasks of an execution.

Run: ``.venv/bin/python bench/bench_fingerprint.py`` (``scripts/bench`` runs every benchmark).

A run of 100 tasks, each closing over the same 1 GB array, replayed: with ``on_code_change``
"warn" (every task's fingerprint compared: the array is hashed once per execution, in place, on
every core) against "ignore" (no fingerprints). The difference is what the array adds to an
execution; target <= 200 ms however many tasks read it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import REPEATS, human, median, table, timed, verdict

from trigger_nb import DiskStore, Job, TriggerClient

GIB = int(os.environ.get("TRIGGER_NB_BENCH_ARRAY_BYTES", str(1 << 30)))
TASKS = 100


def make_job(directory: Path, array: object, policy: str) -> Job:
    client = TriggerClient("bench", store=DiskStore(directory), on_code_change=policy)
    job = client.define_job("big-input")

    @job.run
    def run(payload: object, io: object, ctx: object) -> None:
        for i in range(TASKS):
            io.run_task(["part", i], lambda i=i: int(array[i]))  # type: ignore[attr-defined,index]

    return job


def main() -> None:
    import numpy

    array = numpy.ones(GIB // 8)
    with tempfile.TemporaryDirectory(prefix="trigger-nb-bench-") as tmp:
        root = Path(tmp)
        checked = make_job(root / "store", array, "warn")
        blind = make_job(root / "store", array, "ignore")
        assert checked.trigger().status == "SUCCESS"
        withs, withouts = [], []
        for _ in range(REPEATS):
            withouts.append(timed(blind.trigger))
            withs.append(timed(checked.trigger))
    added = median(withs) - median(withouts)
    rows = [
        [f"replay of {TASKS} tasks reading a {GIB / (1 << 30):g} GiB array", human(median(withs)),
         human(median(withouts)), human(added), f"<= 200 ms: {verdict(added, 0.2)}"],
    ]  # fmt: skip
    print(f"### Fingerprints of a big value (median of {REPEATS} repeats)\n")
    print(table(["measure", "fingerprints checked", "on_code_change='ignore'", "added",
                 "target"], rows))  # fmt: skip
    print()


if __name__ == "__main__":
    main()
