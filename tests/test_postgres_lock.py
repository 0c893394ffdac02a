"""A run's lock session ended alone on the PostgreSQL server (``pg_terminate_backend`` by an
administrator, a pooler or a watchdog) while the store's main connection lives: the execution
notices it at its next write, before any completion is recorded, and stops; another process
that took the run meanwhile executes each remaining task once (trigger_nb/_store/postgres.py,
the module docstring's "a held run is written through its lock's own session").
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_server import PostgresServer

from trigger_nb import MemoryStore, StoreError, TaskStatus, TriggerClient
from trigger_nb._store.postgres_schema import lock_key
from trigger_nb._store.store import PostgresStore


def end_lock_sessions(admin_url: str, store_url: str, run_id: str) -> list[int]:
    """``pg_terminate_backend`` of the sessions holding ``run_id``'s advisory lock (the
    server shows a bigint key as classid = high 32 bits, objid = low 32 bits); their pids."""
    key = lock_key(store_url.rsplit("schema=", 1)[1], run_id) & 0xFFFF_FFFF_FFFF_FFFF
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            (key >> 32, key & 0xFFFF_FFFF),
        ).fetchall()
        assert all(ended for _, ended in rows)
        for _ in range(500):  # the lock goes when the backend process has exited
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                ([pid for pid, _ in rows],),
            ).fetchone()
            if left == (0,):
                break
            time.sleep(0.01)
    return [pid for pid, _ in rows]


def test_a_lock_session_ended_mid_task_fails_that_task_and_records_nothing_more(
    pg_url: str, pg_server: PostgresServer
) -> None:
    calls: collections.Counter[str] = collections.Counter()
    store = PostgresStore(pg_url)
    main_pid = store.backend._connection().info.backend_pid  # type: ignore[attr-defined]
    client = TriggerClient("lock", store=store)
    job = client.define_job("lock")
    run_id = job.run_id_for(None)
    ended: list[int] = []

    def end_my_lock_once() -> str:
        if calls["fault"] == 1:
            ended.extend(end_lock_sessions(pg_server.url(), pg_url, run_id))
        return "fault"

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        io.run_task("before", lambda: calls.update(["before"]) or "before")
        io.run_task("fault", lambda: calls.update(["fault"]) or end_my_lock_once())
        return str(io.run_task("after", lambda: calls.update(["after"]) or "after"))

    try:
        error: BaseException | None = job.trigger().exception
    except StoreError as raised:
        error = raised

    assert len(ended) == 1 and main_pid not in ended, "only the lock's session was ended"
    assert isinstance(error, StoreError), repr(error)
    message = str(error)
    assert f"run {run_id} lost its lock on the PostgreSQL server at {pg_server.url()}" in message
    for words in (
        "pg_terminate_backend",
        "another kernel may execute the run now",
        "this execution records nothing more (the task in flight is not recorded as completed)",
        "check that the server is running and reachable, then execute again",
    ):
        assert words in message, message
    assert calls == {"before": 1, "fault": 1}, "nothing after the task in flight ran"
    tasks = {t.cache_key: t.status for t in store.load_snapshot(run_id).tasks()}
    assert tasks["before"] is TaskStatus.COMPLETED
    assert tasks.get("fault") is not TaskStatus.COMPLETED, "recorded completed without the lock"
    assert store.backend._connection().info.backend_pid == main_pid  # type: ignore[attr-defined]

    rerun = job.trigger()

    assert (rerun.status, rerun.output) == ("SUCCESS", "after"), rerun.error
    assert calls == {"before": 1, "fault": 2, "after": 1}, "only the task in flight ran again"
    store.close()


# Process A executes the run; its task "slow" waits (after saying so) until the test lets it
# finish. Process B executes the same run without waiting. Each side effect appends
# "PROCESS:TASK" to the effects file; the outcome is printed as one JSON line.
WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from trigger_nb import StoreError, TriggerClient

    url, name, effects, gate = sys.argv[1:5]
    job = TriggerClient("lock", store=url).define_job("lock")

    def effect(task):
        with open(effects, "a") as log:
            log.write(f"{name}:{task}\\n")
        if task == "slow" and name == "A":
            Path(gate, "slow-started").touch()
            deadline = time.monotonic() + 120
            while not Path(gate, "go").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return f"{task} by {name}"

    @job.run
    def run(payload, io, ctx):
        io.run_task("before", lambda: effect("before"))
        io.run_task("slow", lambda: effect("slow"))
        return [io.run_task(["after", i], lambda i=i: effect(f"after-{i}")) for i in range(5)]

    try:
        run = job.trigger({"n": 1})
        outcome = {"status": run.status.value, "error": str(run.exception or "")}
    except StoreError as error:
        outcome = {"status": "raised", "error": str(error)}
    print(json.dumps({"run_id": job.run_id_for({"n": 1}), **outcome}), flush=True)
    """
)


def start(url: str, name: str, effects: Path, gate: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, name, str(effects), str(gate)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def outcome_of(process: subprocess.Popen[str]) -> dict[str, str]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.slow
def test_a_second_process_never_double_executes_after_the_first_lost_its_lock(
    pg_url: str, pg_server: PostgresServer, tmp_path: Path
) -> None:
    """A's lock session is ended while A's task "slow" runs. B takes the run, replays
    "before" and executes the rest. Then A's "slow" returns: A's write is refused, so A
    neither records "slow" (B's result stays) nor executes any task after it."""
    effects, gate = tmp_path / "effects.txt", tmp_path / "gate"
    gate.mkdir()
    first = start(pg_url, "A", effects, gate)
    deadline = time.monotonic() + 120
    while not (gate / "slow-started").exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "A never reached its slow task"
        time.sleep(0.01)
    run_id = TriggerClient("lock", store=MemoryStore()).define_job("lock").run_id_for({"n": 1})
    assert len(end_lock_sessions(pg_server.url(), pg_url, run_id)) == 1

    second = outcome_of(start(pg_url, "B", effects, gate))  # does not wait for A
    (gate / "go").touch()
    first_outcome = outcome_of(first)

    assert second["status"] == "SUCCESS", second
    assert first_outcome["status"] == "raised", first_outcome
    assert f"run {run_id} lost its lock" in first_outcome["error"], first_outcome
    counts = collections.Counter(effects.read_text().split())
    assert counts == {
        "A:before": 1,
        "A:slow": 1,  # interrupted: its completion never recorded
        "B:slow": 1,  # at-least-once for the task in flight, as after a crash
        **{f"B:after-{i}": 1 for i in range(5)},
    }, "a task other than the one in flight executed twice"
    store = PostgresStore(pg_url)
    run = store.load_run(run_id)
    assert run is not None and run.status == "SUCCESS"
    (slow,) = [t for t in TriggerClient("lock", store=store).load_run(run_id).all_tasks
               if t.cache_key == "slow"]  # fmt: skip
    assert (slow.status, slow.output) == (TaskStatus.COMPLETED, "slow by B"), "A overwrote B"
    store.close()


def test_the_main_connection_ended_alone_costs_nothing(
    pg_url: str, pg_server: PostgresServer
) -> None:
    """The run's writes ride its lock session, and reads reopen the main connection: ending
    the main session mid-run neither fails nor repeats anything."""
    store = PostgresStore(pg_url)
    client = TriggerClient("main", store=store)
    job = client.define_job("main")
    calls: collections.Counter[str] = collections.Counter()

    def end_the_main_session() -> str:
        pid = store.backend._connection().info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(pg_server.url(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return "ended"

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        io.run_task("end", lambda: calls.update(["end"]) or end_the_main_session())
        return str(io.run_task("after", lambda: calls.update(["after"]) or "after"))

    first = job.trigger()
    assert (first.status, first.output) == ("SUCCESS", "after"), first.error
    assert job.trigger().output == "after" and calls == {"end": 1, "after": 1}
    store.close()


def test_a_failed_statement_under_the_lock_is_an_ordinary_store_error(
    pg_url: str, pg_server: PostgresServer
) -> None:
    """A statement the server refuses (here a constraint an administrator added) leaves the
    lock's session alive: a plain StoreError, the run is not lost, later writes go through."""
    store = PostgresStore(pg_url)
    schema = pg_url.rsplit("=", 1)[1]
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute(f"ALTER TABLE {schema}.entry ADD CONSTRAINT tiny CHECK (size IS NOT NULL "
                      "OR octet_length(data) < 100)")  # fmt: skip
        with store.lock_run("run_held"):
            with pytest.raises(StoreError) as caught:
                store.backend.write([("t:run_held:a", b"x" * 200)])
            message = str(caught.value)
            assert "violates check constraint" in message and "lost its lock" not in message
            assert "check the server's log and the database user's rights" in message
            admin.execute(f"ALTER TABLE {schema}.entry DROP CONSTRAINT tiny")
            store.backend.write([("t:run_held:a", b"x" * 200)])
    assert store.backend.get("t:run_held:a") == b"x" * 200
    store.close()
