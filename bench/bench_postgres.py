"""The PostgreSQL store: first run and replay of N small tasks, against raw psycopg on the same
server, and against the diskcache store.

Run: ``.venv/bin/python bench/bench_postgres.py`` (starts a throwaway server with
``tests/pg_server.py``; or set ``TRIGGER_NB_BENCH_PG_URL`` to use yours). N defaults to 10,000
(``TRIGGER_NB_BENCH_TASKS``), repeats to 5.

- first run: a fresh run of N tasks (each runs, then writes its entry -- record and output -- in
  one upsert statement), divided by N; vs a raw psycopg loop doing one single-statement
  autocommit INSERT of a pickled value per task.
- replay: the same run executed again (advisory lock on its own connection, one range SELECT
  of the run's entries, N replays, run record), divided by N; vs a raw psycopg loop of one
  SELECT per key.
- design floor: the store's write of a real task entry per task and nothing else, so the
  ratios show how much of a first run is the write and how much the engine's work around it
  (the same on every store).
- the lock check: the same writes while the run is held, so they go through the lock's own
  session (what a first run does: a lock session ended alone is then noticed by the next
  write itself), against the floor's writes through the main connection.
- the same job on the diskcache store, for comparison.

On a busy machine (2 cores shared with other work) wall times swing by 2x from one repeat to
the next, so the script also reads the CPU time of the first run and of the raw INSERT loop:
the client process's own (``time.process_time``) plus the server backends' serving it (from
``/proc/PID/schedstat``, so only with the server this script starts on this machine). Waiting
for the other core costs no CPU time, so that ratio holds still when the machine is loaded.

The server runs with ``synchronous_commit=off`` (commits reach the WAL, the flush is batched):
with a flush per commit both sides wait on the disk and the ratio says nothing about our code.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # pg_server
from _bench import human, median, table, timed, verdict
from pg_server import PostgresServer

from trigger_nb import DiskStore, Job, Store, TriggerClient
from trigger_nb._store.store import PostgresStore

TASKS = int(os.environ.get("TRIGGER_NB_BENCH_TASKS", "10000"))
REPEATS = int(os.environ.get("TRIGGER_NB_BENCH_REPEATS", "5"))
SERVER_OPTIONS = "-c synchronous_commit=off"


def make_job(store: Store, name: str) -> Job:
    client = TriggerClient("bench", store=store, on_code_change="ignore")
    job = client.define_job(name)

    @job.run
    def run(payload: object, io: object, ctx: object) -> int:
        for i in range(TASKS):
            io.run_task(f"task-{i}", lambda i=i: i)  # type: ignore[attr-defined]
        return TASKS

    return job


class CpuMeter:
    """CPU seconds of this process plus those of the server backends with a given
    ``application_name`` (trigger_nb's connections, or the raw loop's), over one call."""

    def __init__(self, url: str | None) -> None:
        self._admin = None if url is None else psycopg.connect(url, autocommit=True)

    def _backends(self, application: str) -> dict[int, int]:
        assert self._admin is not None
        found = {}
        for (pid,) in self._admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).fetchall():
            with contextlib.suppress(OSError):  # ended meanwhile
                found[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        return found

    def cpu(self, fn: Callable[[], object], application: str) -> float:
        """CPU seconds ``fn`` cost, client and server (NaN without a local server)."""
        if self._admin is None:
            fn()
            return math.nan
        server, client = self._backends(application), time.process_time()
        fn()
        client = time.process_time() - client
        after = self._backends(application)
        return client + sum(ns - server.get(pid, 0) for pid, ns in after.items()) / 1e9


def first_and_replay(job: Job, rep: int, meter: CpuMeter) -> tuple[float, float, float]:
    """Seconds per task of a first run and of its replay, and the first run's CPU per task."""
    payload = {"rep": rep}  # a fresh run per repeat

    def first() -> None:
        run = job.trigger(payload)
        assert run.status == "SUCCESS" and run.execution_history[-1].executed == TASKS

    def replay() -> None:
        run = job.trigger(payload)
        history = run.execution_history[-1]
        assert history.replayed == TASKS and history.executed == 0, history

    wall: list[float] = []
    cpu = meter.cpu(lambda: wall.append(timed(first)), "trigger_nb") / TASKS
    return wall[0] / TASKS, timed(replay) / TASKS, cpu


def design_floor(store: Store, entry: bytes, rep: int) -> tuple[float, float]:
    """The store's own write of a real task entry per task, and nothing else: ``(through the
    main connection, through the held run's lock session)``."""
    free = [f"t:run_floor{rep}:{i:024x}" for i in range(TASKS)]
    held = [f"t:run_held{rep}:{i:024x}" for i in range(TASKS)]

    def write_loop(keys: list[str]) -> None:
        for key in keys:
            store.backend.write([(key, entry)])

    def through_lock() -> float:
        with store.backend.lock(f"run_held{rep}"):
            return timed(lambda: write_loop(held)) / TASKS

    if rep % 2:  # alternate which goes first
        return timed(lambda: write_loop(free)) / TASKS, through_lock()
    held_time = through_lock()
    return timed(lambda: write_loop(free)) / TASKS, held_time


def raw_loops(url: str, rep: int, meter: CpuMeter) -> tuple[float, float, float]:
    """Seconds per task of the raw INSERT and SELECT loops, and the INSERT loop's CPU."""
    with psycopg.connect(url, autocommit=True, application_name="bench_raw") as conn:
        conn.execute(f"CREATE TABLE raw_{rep} (key text PRIMARY KEY, value bytea)")
        keys = [f"task-{i}" for i in range(TASKS)]
        insert = f"INSERT INTO raw_{rep} (key, value) VALUES (%s, %s)"
        select = f"SELECT value FROM raw_{rep} WHERE key = %s"

        def insert_loop() -> None:
            for i, key in enumerate(keys):
                conn.execute(insert, (key, pickle.dumps(i)))

        def select_loop() -> None:
            for key in keys:
                conn.execute(select, (key,), binary=True).fetchone()

        wall: list[float] = []
        cpu = meter.cpu(lambda: wall.append(timed(insert_loop)), "bench_raw") / TASKS
        return wall[0] / TASKS, timed(select_loop) / TASKS, cpu


def main() -> None:
    given = os.environ.get("TRIGGER_NB_BENCH_PG_URL")
    server = None if given else PostgresServer(options=SERVER_OPTIONS)
    url = given or server.url()  # type: ignore[union-attr]
    try:
        with tempfile.TemporaryDirectory(prefix="trigger-nb-bench-") as tmp:
            pg_store = PostgresStore(f"{url}?schema=bench_postgres")
            disk_store = DiskStore(Path(tmp) / "store")
            pg_job, disk_job = make_job(pg_store, "pg"), make_job(disk_store, "disk")
            probe = pg_job.trigger({"probe": True})
            entry = pg_store.backend.get(f"t:{probe.id}:{probe.all_tasks[0].id}")
            assert isinstance(entry, bytes)
            meter = CpuMeter(None if given else url)
            names = ("pf", "pr", "rf", "rr", "df", "dr", "floor", "held", "pcpu", "rcpu")
            results: dict[str, list[float]] = {k: [] for k in names}
            for rep in range(REPEATS):  # interleaved, so machine noise hits every side alike
                raw_first, raw_replay, raw_cpu = raw_loops(url, rep, meter)
                pg_first, pg_replay, pg_cpu = first_and_replay(pg_job, rep, meter)
                disk_first, disk_replay, _ = first_and_replay(disk_job, rep, CpuMeter(None))
                floor, held = design_floor(pg_store, entry, rep)
                measured = (pg_first, pg_replay, raw_first, raw_replay, disk_first, disk_replay)
                extra = (floor, held, pg_cpu, raw_cpu)
                for key, value in zip(results, (*measured, *extra), strict=True):
                    results[key].append(value)
            pg_store.close()
            disk_store.close()
    finally:
        if server is not None:
            server.close()
    m = {key: median(values) for key, values in results.items()}
    first_ratio, replay_ratio = m["pf"] / m["rf"], m["pr"] / m["rr"]
    rows = [
        ["first run, per task", human(m["pf"]), "raw psycopg INSERT per task", human(m["rf"]),
         f"{first_ratio:.2f}x", f"<= 1.5x: {verdict(first_ratio, 1.5)}"],
        ["first run, CPU per task (client + server)", human(m["pcpu"]),
         "raw psycopg INSERT, CPU per task", human(m["rcpu"]),
         f"{m['pcpu'] / m['rcpu']:.2f}x", "steady on a loaded machine"],
        ["replay, per task", human(m["pr"]), "raw psycopg SELECT per key", human(m["rr"]),
         f"{replay_ratio:.2f}x", f"<= 1.0x: {verdict(replay_ratio, 1.0)}"],
        ["design floor (the store's write only)", human(m["floor"]),
         "raw psycopg INSERT per task", human(m["rf"]), f"{m['floor'] / m['rf']:.2f}x",
         f"one {len(entry)}-byte entry per task"],
        ["the store's write, run held", human(m["held"]), "design floor", human(m["floor"]),
         f"{m['held'] / m['floor']:.2f}x", "the lock check: writes through the lock's session"],
        ["first run, per task", human(m["pf"]), "design floor", human(m["floor"]),
         f"{m['pf'] / m['floor']:.2f}x", "the engine's work per task, as on every store"],
        ["first run, per task", human(m["pf"]), "the diskcache store", human(m["df"]),
         f"{m['pf'] / m['df']:.2f}x", ""],
        ["replay, per task", human(m["pr"]), "the diskcache store", human(m["dr"]),
         f"{m['pr'] / m['dr']:.2f}x", ""],
    ]  # fmt: skip
    print(
        f"### PostgreSQL store ({TASKS:,} tasks, median of {REPEATS} repeats, PostgreSQL on "
        f"loopback, {SERVER_OPTIONS})\n"
    )
    print(table(["measure", "trigger_nb", "baseline", "baseline time", "ratio", "target"], rows))


if __name__ == "__main__":
    main()
