"""The PostgreSQL store (trigger_nb/_store/postgres.py) on a real server the tests start: what it
adds to the store contract (which test_store.py runs against it too): URLs and schemas, its
version check, chunked big values, a server restart mid-run, the missing-driver error, the
command line against a URL and copying runs between stores; and the network-filesystem warning
of the diskcache store.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_server import PostgresServer

from trigger_nb import DiskStore, StoreError, StoreVersionError, TaskStatus, TriggerClient
from trigger_nb._cli.main import main as cli_main
from trigger_nb._store.network_fs import network_filesystem, network_warning
from trigger_nb._store.postgres import CHUNK_BYTES, split_url
from trigger_nb._store.store import PostgresStore, describe_store, open_store

MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/vda1 / ext4 rw,relatime 0 0
filer:/export/home /home nfs4 rw,relatime,vers=4.2 0 0
/dev/vdb1 /home/alice/local\\040disk ext4 rw 0 0
//nas/share /mnt/smb cifs rw 0 0
bob@host:/data /mnt/ssh fuse.sshfs rw 0 0
"""


def test_a_url_opens_the_postgres_store_in_its_own_schema(pg_url: str) -> None:
    client = TriggerClient("pg", store=pg_url)
    assert isinstance(client.store, PostgresStore)
    assert describe_store(client.store) == f"PostgreSQL store {pg_url}"
    job = client.define_job("hello")
    calls: list[int] = []
    job.run(lambda payload, io, ctx: io.run_task("t", lambda: calls.append(1) or "out"))
    assert job.trigger().output == "out" and job.trigger().output == "out"
    assert calls == [1], "the second execution replays from PostgreSQL"
    other = PostgresStore(pg_url.replace("?schema=", "?schema=other_"))
    assert other.list_runs() == [], "another schema in the same database is another store"
    other.close()
    client.store.close()


def test_the_url_keeps_its_own_parameters_and_hides_the_password() -> None:
    conninfo, schema, shown = split_url("postgresql://ann:secret@db:5433/runs?sslmode=require")
    assert (schema, conninfo) == (
        "trigger_nb",
        "postgresql://ann:secret@db:5433/runs?sslmode=require",
    )
    assert shown == "postgresql://ann@db:5433/runs?schema=trigger_nb" and "secret" not in shown
    conninfo, schema, _ = split_url("postgres://db/runs?schema=team_a&connect_timeout=3")
    assert (schema, conninfo) == ("team_a", "postgres://db/runs?connect_timeout=3")
    with pytest.raises(StoreError, match="schema 'Team-A' is not a plain lower-case SQL name"):
        split_url("postgresql://db/runs?schema=Team-A")


def test_the_environment_picks_the_default_store(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRIGGER_NB_STORE", pg_url)
    store = open_store(None)
    assert isinstance(store, PostgresStore) and store.location == pg_url
    store.close()
    monkeypatch.setenv("TRIGGER_NB_STORE", str(tmp_path / "from-store-var"))
    for store in (open_store(None), DiskStore()):
        assert isinstance(store, DiskStore) and store.location.endswith("from-store-var")
        store.close()


def test_an_unknown_schema_version_is_refused(pg_url: str, pg_server: PostgresServer) -> None:
    PostgresStore(pg_url).close()
    schema = pg_url.rsplit("=", 1)[1]
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"UPDATE {schema}.meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(StoreVersionError, match=r"schema version '99'.*upgrade trigger_nb"):
        PostgresStore(pg_url)


def test_a_user_without_rights_gets_a_store_error_saying_so(pg_server: PostgresServer) -> None:
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS visitor")
        conn.execute("CREATE ROLE visitor LOGIN")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = pg_server.url("visitors").replace("postgres@", "visitor@")
    with pytest.raises(StoreError) as caught:
        PostgresStore(url)
    message = str(caught.value)
    assert f"cannot open the trigger_nb store on PostgreSQL at {url}: permission denied" in message
    assert "the database user's rights on this schema" in message


def test_big_values_are_chunk_rows_read_lazily(pg_url: str, pg_server: PostgresServer) -> None:
    store = PostgresStore(pg_url)
    big = os.urandom(CHUNK_BYTES * 2 + 123)
    store.backend.write([("o:run_a:t", big), ("o:run_a:u", b"small")])
    schema = pg_url.rsplit("=", 1)[1]
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        rows = conn.execute(f"SELECT key, count(*) FROM {schema}.chunk GROUP BY key").fetchall()
    assert rows == [("o:run_a:t", 3)]
    scanned = store.backend.scan("o:run_a:")
    loader = scanned["t"]
    assert scanned["u"] == b"small" and callable(loader) and loader() == big
    assert store.backend.get("o:run_a:t") == big
    store.backend.write([("o:run_a:t", b"small now")])  # replacing it drops its chunks
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        assert conn.execute(f"SELECT count(*) FROM {schema}.chunk").fetchone() == (0,)
    assert store.backend.get("o:run_a:t") == b"small now"
    store.close()


def test_a_big_output_never_needs_twice_its_size_in_memory(pg_url: str) -> None:
    """Written from slices, read back through a temporary file: the backend's peak memory stays
    near one copy of the value (the process's peak RSS, measured in a fresh process)."""
    size = 160 * 1024 * 1024
    script = textwrap.dedent(
        f"""
        import resource, sys
        from trigger_nb._store.store import PostgresStore
        store = PostgresStore({pg_url!r})
        def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        base = peak()
        value = bytes({size})
        store.backend.write([("o:big", value)])
        after_write = peak() - base
        del value
        got = store.backend.get("o:big")
        assert len(got) == {size}
        print(after_write, peak() - base)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after_write, after_read = map(int, done.stdout.split())
    assert after_write < size * 1.25, f"writing took {after_write / size:.2f}x the value"
    assert after_read < size * 1.25, f"writing and reading took {after_read / size:.2f}x"


def test_without_psycopg_a_url_names_the_install_command(pg_url: str) -> None:
    script = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from trigger_nb import TriggerClient\n"
        f"TriggerClient(store={pg_url!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 1
    assert "ImportError: a postgresql:// store needs psycopg 3" in done.stderr
    assert "pip install 'trigger_nb[postgres]'" in done.stderr


def test_a_server_restart_mid_task_is_a_store_error_and_the_next_execution_continues(
    pg_url: str, pg_server: PostgresServer
) -> None:
    calls: collections.Counter[str] = collections.Counter()
    client = TriggerClient("restart", store=pg_url)
    job = client.define_job("restart")

    def restart_the_server_once() -> str:
        if calls["fault"] == 1:
            pg_server.restart()  # every connection is cut while the task runs
        return "fault"

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        io.run_task("before", lambda: calls.update(["before"]) or "before")
        io.run_task("fault", lambda: calls.update(["fault"]) or restart_the_server_once())
        return str(io.run_task("after", lambda: calls.update(["after"]) or "after"))

    try:
        error: BaseException | None = job.trigger().exception
    except StoreError as raised:
        error = raised
    assert isinstance(error, StoreError), repr(error)
    message = str(error)
    assert f"PostgreSQL server at {pg_server.url()}" in message, message
    assert "check that the server is running and reachable, then execute again" in message
    snapshot = client.store.load_snapshot(job.run_id_for(None))
    assert [t.status for t in snapshot.tasks() if t.cache_key == "fault"] != [
        TaskStatus.COMPLETED
    ], "a result whose write failed is never recorded as completed"

    rerun = job.trigger()

    assert rerun.status == "SUCCESS", rerun.error
    assert calls == {"before": 1, "fault": 2, "after": 1}, "only the task in flight ran again"
    client.store.close()


def test_a_server_restart_between_executions_goes_unnoticed(
    pg_url: str, pg_server: PostgresServer
) -> None:
    """Every connection the kernel kept (the store's, an idle lock session) died with the
    server: the next execution opens new ones and replays, without an error."""
    client = TriggerClient("idle", store=pg_url)
    job = client.define_job("idle")
    calls: list[int] = []
    job.run(lambda payload, io, ctx: io.run_task("t", lambda: calls.append(1) or len(calls)))
    assert job.trigger().output == 1
    pg_server.restart()

    run = job.trigger()

    assert (run.status, run.output, calls) == ("SUCCESS", 1, [1])
    client.store.close()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def make_runs(store: str, outputs: int = 3) -> TriggerClient:
    client = TriggerClient("copy", store=store)
    job = client.define_job("copied")
    job.run(
        lambda payload, io, ctx: [
            io.run_task(["t", i], lambda i=i: {"i": i, "blob": b"x" * (i * 30_000)})
            for i in range(outputs)
        ]
    )
    job.trigger({"n": 1})
    job.trigger({"n": 2})
    return client


def test_the_command_line_works_against_a_url(
    pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_runs(pg_url)
    run_ids = [r.id for r in client.list_runs()]
    client.store.close()
    code, out, _ = cli(capsys, "runs", "--store", pg_url, "--json")
    assert code == 0 and sorted(r["id"] for r in json.loads(out)) == sorted(run_ids)
    monkeypatch.setenv("TRIGGER_NB_STORE", pg_url)
    code, out, err = cli(capsys, "show", run_ids[0], "--output")
    assert code == 0 and "'i': 2" in out, err
    code, out, _ = cli(capsys, "clear", "--run", run_ids[0], "--yes")
    assert code == 0 and out.startswith(f"Deleted run {run_ids[0]}")
    code, out, _ = cli(capsys, "runs", "--json")
    assert [r["id"] for r in json.loads(out)] == run_ids[1:]
    missing = pg_url + "_nowhere"
    code, out, err = cli(capsys, "runs", "--store", missing)
    assert (code, out) == (1, "") and "schema 'test_" in err and "does not exist" in err
    code, _, err = cli(capsys, "runs", "--store", pg_url, "--dir", "x")
    assert code == 2 and "either --store or --dir" in err


def test_copy_moves_runs_from_disk_to_postgres_and_back(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_runs(str(tmp_path / "local"))
    expected = {
        run.id: [(t.cache_key, t.output) for t in run.all_tasks] for run in source.list_runs()
    }
    source.store.close()
    code, out, _ = cli(capsys, "copy", "--from", str(tmp_path / "local"), "--to", pg_url)
    assert code == 0 and out.startswith("Copied 2 runs from")
    code, out, _ = cli(capsys, "copy", "--from", str(tmp_path / "local"), "--to", pg_url)
    assert code == 0 and "Copied 0 runs" in out and "Skipped 2 runs already there" in out
    code, out, _ = cli(capsys, "copy", "--from", pg_url, "--to", str(tmp_path / "back"))
    assert code == 0 and out.startswith("Copied 2 runs")

    for where in (pg_url, str(tmp_path / "back")):
        client = TriggerClient("copy", store=where)
        copied = {
            run.id: [(t.cache_key, t.output) for t in run.all_tasks] for run in client.list_runs()
        }
        assert copied == expected, where
        client.store.close()
    # A copied run replays in its new store: nothing runs again.
    client = make_runs(pg_url)
    assert all(r.execution_history[-1].executed == 0 for r in client.list_runs())
    client.store.close()
    code, _, err = cli(capsys, "copy", "--from", str(tmp_path / "none"), "--to", pg_url)
    assert code == 1 and "no trigger_nb store at" in err and "check --from" in err
    code, _, err = cli(capsys, "copy", "--from", pg_url, "--to", pg_url)
    assert code == 2 and "are the same store" in err
    one = sorted(expected)[0]
    only = str(tmp_path / "only-one")
    code, out, _ = cli(capsys, "copy", "--from", pg_url, "--to", only, "--run", one[:12])
    assert code == 0 and out.startswith("Copied 1 run from")
    code, _, err = cli(capsys, "copy", "--from", pg_url, "--to", only, "--job", "nope")
    assert code == 1 and "no runs of job 'nope'" in err


def test_a_network_filesystem_is_recognised_from_the_mount_table() -> None:
    assert network_filesystem("/home/alice/nb/.trigger_nb", MOUNTS) == ("/home", "nfs4")
    assert network_filesystem("/home/alice/local disk/.trigger_nb", MOUNTS) is None
    assert network_filesystem("/mnt/smb/x", MOUNTS) == ("/mnt/smb", "cifs")
    assert network_filesystem("/mnt/ssh/x", MOUNTS) == ("/mnt/ssh", "fuse.sshfs")
    assert network_filesystem("/homework/x", MOUNTS) is None, "a mount point is a whole name"
    assert network_filesystem("/srv/x", MOUNTS) is None
    message = network_warning("/home/alice/.trigger_nb", MOUNTS)
    assert message is not None
    for words in ("network filesystem (nfs4 at /home)", "PostgreSQL", "trigger_nb[postgres]"):
        assert words in message


def test_the_network_filesystem_warning_is_printed_once_per_process(tmp_path: Path) -> None:
    mounts = f"{tmp_path} {tmp_path} nfs rw 0 0\n"
    script = textwrap.dedent(
        f"""
        from trigger_nb._store.network_fs import warn_if_network
        for name in ("a", "b", "c"):
            warn_if_network({str(tmp_path)!r} + "/" + name, {mounts!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("is on a network filesystem (nfs at") == 1, done.stderr
    local = subprocess.run(
        [sys.executable, "-c", f"from trigger_nb import DiskStore; DiskStore({str(tmp_path)!r})"],
        capture_output=True,
        text=True,
    )
    assert local.returncode == 0 and local.stderr == "", "no warning on a local disk"


def test_outputs_round_trip_through_pickle_on_every_store(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    client = TriggerClient("pickle", store=store)
    job = client.define_job("p")
    job.run(lambda payload, io, ctx: io.run_task("d", lambda: {"k": [1, 2.5, None]}))
    run = job.trigger()
    (task,) = run.all_tasks
    assert pickle.loads(store.read_output(run.id, task.record.id)) == {"k": [1, 2.5, None]}
    store.close()
