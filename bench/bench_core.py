"""Replay (cache hit) and first-run cost per task, against raw diskcache and joblib.Memory.

Run: ``.venv/bin/python bench/bench_core.py`` (``scripts/bench`` runs every benchmark). The task
count defaults to 10,000 (``TRIGGER_NB_BENCH_TASKS`` overrides it), repeats to 7.

- replay: a run of N completed tasks executed again (lock, bulk read, N replays, run record),
  divided by N; vs a loop of ``diskcache.Cache.get`` over N string keys, and vs N
  ``joblib.Memory`` cache hits.
- first run: a fresh run of N tasks (each runs, then writes its entry -- record and output --
  in one statement), divided by N; vs a loop of ``diskcache.Cache.set``. The "design floor" row
  performs the store's write of a real task entry per task and nothing else, so the ratio shows
  how much of the cost is the write itself and how much is the task logic around it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import diskcache
import joblib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import human, median, table, timed, verdict

from trigger_nb import DiskStore, Job, TriggerClient

TASKS = int(os.environ.get("TRIGGER_NB_BENCH_TASKS", "10000"))
# More repeats than the other benchmarks: these ratios sit near their targets, and on a shared
# 2-core machine a single stalled fsync moves one repeat by 20%.
REPEATS = int(os.environ.get("TRIGGER_NB_BENCH_REPEATS", "7"))
JOBLIB_MISSES = min(TASKS, 1000)


NOTES = """
Where the time goes (profiled with cProfile and py-spy; see the closing note of issue 6):
- Replay reads the run's task entries in one range SELECT, row by row, keeping of each completed
  one what its replay needs: its output (CRC-32 checked there, once), duration and fingerprint
  key (issue 16: a run's entries are not held whole); then per task: typed key encoding, a
  sha256 idempotency key, a tuple read and an unpickle. A raw `get` is one SQLite round trip
  per key.
- Fingerprints (issue 13): every replayed task's function is fingerprinted again (its code's
  hash is cached per code object; closure values and defaults that are short scalars are their
  own text) and the key compared with the one at the end of the stored record, unparsed.
- A first run writes one entry per task (record + small output, one INSERT into the store's
  entry table, its own transaction) when the attempt ends. A task still running after 0.1 s
  also gets a RUNNING entry, from a watchdog thread, so a crash leaves slow attempts visible;
  the millisecond tasks measured here never do. The entry is ~470 bytes (what follows from the
  rest -- ids, times, the duration -- is left out and restored when read) against the
  baseline's small int. Its table changes two B-trees per commit (the rows and the key
  index), where a row of diskcache's Cache table changes three (rows, (key, raw), expire_time)
  and the Settings row its triggers keep counts in: the design floor row shows what that write
  alone costs.
"""


def make_job(directory: Path, tasks: int, on_code_change: str = "warn") -> Job:
    client = TriggerClient("bench", store=DiskStore(directory), on_code_change=on_code_change)
    job = client.define_job("bench-core")

    @job.run
    def run(payload: object, io: object, ctx: object) -> int:
        for i in range(tasks):
            io.run_task(f"task-{i}", lambda i=i: i)  # type: ignore[attr-defined]
        return tasks

    return job


def raw_cache(directory: Path) -> diskcache.Cache:
    return diskcache.Cache(str(directory), eviction_policy="none")


def ident(i: int) -> int:
    return i


def bench_replay(root: Path) -> tuple[list[float], list[float], list[float], list[float]]:
    job = make_job(root / "replay-store", TASKS)
    first = job.trigger()
    assert first.status == "SUCCESS", first.error
    # The same run replayed without comparing fingerprints (on_code_change="ignore").
    blind = make_job(root / "replay-store", TASKS, on_code_change="ignore")
    cache = raw_cache(root / "replay-raw")
    for i in range(TASKS):
        cache.set(f"task-{i}", i)
    memory = joblib.Memory(str(root / "joblib-hits"), verbose=0)
    cached_ident = memory.cache(ident)
    for i in range(TASKS):
        cached_ident(i)

    def get_loop() -> None:
        for i in range(TASKS):
            cache.get(f"task-{i}")

    def joblib_loop() -> None:
        for i in range(TASKS):
            cached_ident(i)

    def replay(job: Job = job) -> None:
        run = job.trigger()
        history = run.execution_history[-1]
        assert history.replayed == TASKS and history.executed == 0, history
        assert not history.stale, "nothing changed: no task may be stale"

    ours, gets, hits, blinds = [], [], [], []
    for _ in range(REPEATS):
        gets.append(timed(get_loop) / TASKS)
        ours.append(timed(replay) / TASKS)
        blinds.append(timed(lambda: replay(blind)) / TASKS)
        hits.append(timed(joblib_loop) / TASKS)
    cache.close()
    return ours, gets, hits, blinds


def bench_first_run(root: Path) -> tuple[list[float], list[float], list[float], list[float]]:
    ours, sets, floors, misses = [], [], [], []
    probe = make_job(root / "probe", 1)
    run = probe.trigger()
    entry = probe.client.store.backend.get(f"t:{run.id}:{run.all_tasks[0].id}")
    for rep in range(REPEATS):
        cache = raw_cache(root / f"set-{rep}")

        def set_loop(cache: diskcache.Cache = cache) -> None:
            for i in range(TASKS):
                cache.set(f"task-{i}", i)

        sets.append(timed(set_loop) / TASKS)
        cache.close()

        job = make_job(root / f"first-{rep}", TASKS)
        ours.append(timed(job.trigger) / TASKS)
        job.client.store.close()

        floor = DiskStore(root / f"floor-{rep}")

        # Keys shaped like the store's: a run id and a hashed task id (random B-tree positions).
        ids = [hashlib.sha256(f"{rep}:{i}".encode()).hexdigest()[:24] for i in range(TASKS)]

        def design_floor(floor: DiskStore = floor, ids: list[str] = ids) -> None:
            for task_id in ids:  # one write per task, as the store does it: its real entry
                floor.backend.write([(f"t:{run.id}:{task_id}", entry)])

        floors.append(timed(design_floor) / TASKS)
        floor.close()

        memory = joblib.Memory(str(root / f"joblib-miss-{rep}"), verbose=0)
        cached_ident = memory.cache(ident)

        def miss_loop(cached_ident: object = cached_ident) -> None:
            for i in range(JOBLIB_MISSES):
                cached_ident(i)  # type: ignore[operator]

        misses.append(timed(miss_loop) / JOBLIB_MISSES)
    return ours, sets, floors, misses


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="trigger-nb-bench-") as tmp:
        root = Path(tmp)
        replay, gets, hits, blind = bench_replay(root)
        first, sets, floors, misses = bench_first_run(root)
    r_get, r_hit = median(replay) / median(gets), median(replay) / median(hits)
    b_get = median(blind) / median(gets)
    f_set, f_floor = median(first) / median(sets), median(floors) / median(sets)
    rows = [
        ["replay, per task, fingerprints checked", human(median(replay)), "`Cache.get` loop",
         human(median(gets)), f"{r_get:.2f}x", f"<= 1.3x: {verdict(r_get, 1.3)}"],
        ["replay, per task, on_code_change='ignore'", human(median(blind)), "`Cache.get` loop",
         human(median(gets)), f"{b_get:.2f}x", f"<= 1.0x: {verdict(b_get, 1.0)}"],
        ["replay, per task", human(median(replay)), "joblib.Memory hit", human(median(hits)),
         f"{r_hit:.2f}x", ""],
        ["first run, per task", human(median(first)), "`Cache.set` loop", human(median(sets)),
         f"{f_set:.2f}x", f"<= 2.0x: {verdict(f_set, 2.0)}"],
        ["design floor (the store's writes only)", human(median(floors)), "`Cache.set` loop",
         human(median(sets)), f"{f_floor:.2f}x", "one ~470-byte entry per task"],
        ["first run, per task", human(median(first)), "design floor", human(median(floors)),
         f"{median(first) / median(floors):.2f}x", "our overhead over the floor"],
        ["first run, per task", human(median(first)), "joblib.Memory miss",
         human(median(misses)), f"{median(first) / median(misses):.2f}x",
         f"{JOBLIB_MISSES} misses per repeat"],
    ]  # fmt: skip
    print(f"### Core: replay and first run ({TASKS:,} tasks, median of {REPEATS} repeats)\n")
    print(table(["measure", "trigger_nb", "baseline", "baseline time", "ratio", "target"], rows))
    print(NOTES)


if __name__ == "__main__":
    main()
