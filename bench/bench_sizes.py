"""Output size scaling: tasks returning 1 KB, 100 KB and 10 MB of bytes, first run and replay.

Baselines, in the same process: ``diskcache.Cache.set`` / ``Cache.get`` of the same value (values
of 32 KB and more go to files in both). Per task, median of the repeats.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import diskcache

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import REPEATS, human, median, table, timed

from trigger_nb import DiskStore, Job, TriggerClient

# (label, bytes per output, tasks per run): fewer tasks for bigger outputs keeps each run short.
SIZES = [("1 KB", 1_000, 200), ("100 KB", 100_000, 50), ("10 MB", 10_000_000, 3)]
SCALE = float(os.environ.get("TRIGGER_NB_BENCH_SIZE_SCALE", "1"))


def make_job(directory: Path, size: int, tasks: int) -> Job:
    client = TriggerClient("bench", store=DiskStore(directory))
    job = client.define_job("bench-sizes")

    @job.run
    def run(payload: object, io: object, ctx: object) -> int:
        for i in range(tasks):
            io.run_task(f"blob-{i}", lambda: os.urandom(size))  # type: ignore[attr-defined]
        return tasks

    return job


def bench_size(root: Path, size: int, tasks: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"first": [], "set": [], "replay": [], "get": []}
    for rep in range(REPEATS):
        cache = diskcache.Cache(str(root / f"raw-{size}-{rep}"), eviction_policy="none")

        def set_loop(cache: diskcache.Cache = cache) -> None:
            for i in range(tasks):  # os.urandom here too: the task pays for it as well
                cache.set(f"blob-{i}", os.urandom(size))

        def get_loop(cache: diskcache.Cache = cache) -> None:
            for i in range(tasks):
                cache.get(f"blob-{i}")

        found["set"].append(timed(set_loop))
        job = make_job(root / f"store-{size}-{rep}", size, tasks)
        found["first"].append(timed(job.trigger))
        found["get"].append(timed(get_loop))
        found["replay"].append(timed(job.trigger))
        assert job.client.store.load_run(job.run_id_for(None)) is not None
        cache.close()
        job.client.store.close()
    return {k: [v / tasks for v in vs] for k, vs in found.items()}


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="trigger-nb-bench-") as tmp:
        for label, size, tasks in SIZES:
            size = max(1, int(size * SCALE))
            got = bench_size(Path(tmp), size, tasks)
            first, raw_set = median(got["first"]), median(got["set"])
            replay, raw_get = median(got["replay"]), median(got["get"])
            rows.append([label, tasks, human(first), human(raw_set), f"{first / raw_set:.2f}x",
                         human(replay), human(raw_get), f"{replay / raw_get:.2f}x"])  # fmt: skip
    print(f"### Output size scaling (per task, median of {REPEATS} repeats)\n")
    headers = ["output", "tasks", "first run", "`Cache.set`", "ratio", "replay", "`Cache.get`",
               "ratio"]  # fmt: skip
    print(table(headers, rows))
    print(
        "\nA replay checks the output's CRC-32 before unpickling it (damage is a CacheReadError,"
        " never a wrong value; ~2.5 GB/s here) and reads outputs over 8 KiB with a get of their"
        " own (the bulk read of a run's entries leaves them out); a raw `get` checks nothing."
        " Runs of few tasks also carry the fixed cost of an execution (run lock, run record,"
        " bulk read).\n"
    )


if __name__ == "__main__":
    main()
