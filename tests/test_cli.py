"""The ``trigger-nb`` command line, on a store written by real runs.

Every command is driven through ``main([...])`` (what it prints, what it returns) and the exit codes
are checked again in real subprocesses (``python -m trigger_nb`` and the ``trigger-nb`` script).
"""

from __future__ import annotations

import json
import os
import pty
import re
import runpy
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import DiskStore, FakeClock, RetryOptions, TriggerClient
from trigger_nb._cli.main import main

SCRIPT = Path(sys.executable).with_name("trigger-nb")
DAY = 86400.0


@dataclass
class Stamp:
    at: datetime
    where: Path


@dataclass
class Runs:
    """A store with two jobs: a resumed success, a failure, a waiting run, and a report."""

    dir: str
    clock: FakeClock
    ok: str
    failed: str
    waiting: str
    report: str
    effects: Counter[str]


def _populate(directory: Path, clock: FakeClock) -> Runs:
    store = DiskStore(directory)
    client = TriggerClient("cli-tests", store=store, clock=clock)
    effects: Counter[str] = Counter()
    etl = client.define_job("etl", name="Nightly ETL", version="1.0.0")

    @etl.run
    def etl_run(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        io.logger.info("starting", day=payload["day"])

        def extract(task: Any) -> dict[str, Any]:
            effects["extract"] += 1
            io.logger.debug("extracting")
            io.run_task("download", lambda: effects.update(["download"]) or [1, 2, 3])
            io.run_task(["page", 2], lambda: "page two")
            return {"rows": 3, "token": "s3cret"}

        data = io.run_task("extract", extract, redact=["token"])
        io.parallel("fan-out", [10, 20], lambda x: x + 1)
        if payload.get("fail"):

            def load() -> None:
                effects["load"] += 1
                io.logger.error("database refused")
                raise ConnectionError("database refused the connection")

            io.run_task("load", load, retry=RetryOptions(limit=3, randomize=False))
        if payload.get("wait"):
            io.wait("cool-down", 30 * DAY)
        io.logger.warn("finished", rows=data["rows"])
        return {"rows": data["rows"], "day": payload["day"]}

    report = client.define_job("report", version="2.0.0")

    @report.run
    def report_run(payload: Any, io: Any, ctx: Any) -> Any:
        io.run_task("stamp", lambda: Stamp(datetime(2026, 1, 2, tzinfo=timezone.utc), Path("a")))
        return io.run_task(
            "render",
            lambda: {1, 2},  # a set: not JSON, printed as repr
            description="Render the weekly report",
            params={"format": "pdf"},
            properties=[{"label": "pages", "text": "2", "url": "https://example.com/r"}],
        )

    ok = etl.trigger({"day": 1})
    clock.advance(60)
    etl.trigger({"day": 1})  # a second execution: replays every task
    clock.advance(DAY)
    failed = etl.trigger({"day": 2, "fail": True})
    clock.advance(DAY)
    waiting = etl.trigger({"day": 3, "wait": True})
    clock.advance(DAY)
    rep = report.trigger()
    store.close()
    return Runs(str(directory), clock, ok.id, failed.id, waiting.id, rep.id, effects)


@pytest.fixture
def runs(tmp_path: Path) -> Runs:
    return _populate(tmp_path / "store", FakeClock())


def cli(capsys: pytest.CaptureFixture[str], *argv: str, **kw: Any) -> tuple[int, str, str]:
    code = main(list(argv), **kw)
    out, err = capsys.readouterr()
    return code, out, err


def run_cli(*argv: str, module: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "trigger_nb"] if module else [str(SCRIPT)]
    env = {**os.environ, "TZ": "UTC"}
    return subprocess.run(
        [*command, *argv], capture_output=True, text=True, env=env, timeout=60, **kw
    )


def table(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


# --- runs ---------------------------------------------------------------------------------------


def test_runs_lists_every_run_newest_first_in_aligned_columns(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "runs", "--dir", runs.dir)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert table(lines[0])[0] == [
        "JOB", "RUN", "STATUS", "STARTED", "DURATION", "EXECS", "TASKS", "REPLAYED"
    ]  # fmt: skip
    rows = table("\n".join(lines[1:]))
    assert [(r[0], r[2]) for r in rows] == [
        ("report", "SUCCESS"),
        ("etl", "WAITING"),
        ("etl", "FAILURE"),
        ("etl", "SUCCESS"),
    ]
    # short ids that are prefixes of the real ones; columns start at the same place on every line
    assert [r[1] for r in rows] == [
        i[:12] for i in (runs.report, runs.waiting, runs.failed, runs.ok)
    ]
    status_column = lines[0].index("STATUS")
    assert all(
        line[status_column:].split()[0] in ("SUCCESS", "WAITING", "FAILURE") for line in lines[1:]
    )
    ok_row = rows[-1]
    # duration: the active time; the minute between the two executions was not work
    assert ok_row[4] == "0 ms"
    # two executions, six tasks; the second replayed all six: the two top-level tasks and the
    # four inside them (as the header and rows of `show` say)
    assert ok_row[5:] == ["2", "6", "6"]
    assert runs.effects == Counter(extract=3, download=3, load=3)  # the replay repeated nothing
    assert rows[1][4] == "-"  # a waiting run has no duration yet


def test_runs_filters_by_job_status_and_limit(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = cli(capsys, "runs", "--dir", runs.dir, "--job", "etl")
    assert [r[0] for r in table(out)[1:]] == ["etl", "etl", "etl"]
    _, out, _ = cli(capsys, "runs", "--dir", runs.dir, "--status", "failure")  # any case
    assert [r[1] for r in table(out)[1:]] == [runs.failed[:12]]
    _, out, _ = cli(capsys, "runs", "--dir", runs.dir, "--job", "etl", "--limit", "1")
    assert [r[2] for r in table(out)[1:]] == ["WAITING"]
    code, out, _ = cli(capsys, "runs", "--dir", runs.dir, "--job", "nope")
    assert code == 0
    assert out.startswith("No runs with job='nope' in ")


def test_runs_json_parses_with_full_ids(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "runs", "--json", "--dir", runs.dir, "--job", "etl")
    assert code == 0
    data = json.loads(out)
    assert [d["id"] for d in data] == [runs.waiting, runs.failed, runs.ok]
    ok = data[-1]
    assert ok["status"] == "SUCCESS"
    assert (ok["executions"], ok["tasks"], ok["replayed"]) == (2, 6, 6)
    assert (ok["duration_seconds"], ok["active_seconds"], ok["wall_seconds"]) == (0.0, 0.0, 60.0)
    assert data[1]["error"].startswith("TaskError: task 'load' failed after 3 attempts")
    assert data[0]["wait_until"] is not None


def test_store_is_chosen_by_dir_before_or_after_the_command_or_by_env(
    runs: Runs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, after, _ = cli(capsys, "runs", "--dir", runs.dir)
    _, before, _ = cli(capsys, "--dir", runs.dir, "runs")
    monkeypatch.setenv("TRIGGER_NB_DIR", runs.dir)
    _, from_env, _ = cli(capsys, "runs")
    assert after == before == from_env
    assert runs.ok[:12] in from_env


def test_short_ids_grow_until_unique(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client = TriggerClient("t", store=DiskStore(tmp_path / "s"), clock=FakeClock())
    job = client.define_job("j", run=lambda payload, io, ctx: payload)
    for run_id in ("run_0123456789ab1xyz", "run_0123456789ab2xyz", "run_ffff", "named-run"):
        job.trigger(1, run_id=run_id)
    client.store.close()
    _, out, _ = cli(capsys, "runs", "--dir", str(tmp_path / "s"))
    shown = sorted(r[1] for r in table(out)[1:])
    assert shown == ["named-run", "run_0123456789ab1", "run_0123456789ab2", "run_ffff"]
    for short in shown:  # every id the table shows is accepted by `show`
        assert cli(capsys, "show", short, "--dir", str(tmp_path / "s"))[0] == 0


# --- show ---------------------------------------------------------------------------------------


def test_show_prints_the_tree_as_an_indented_outline(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "show", runs.failed, "--dir", runs.dir)
    assert code == 0
    assert out.startswith(f"Run {runs.failed}\n")
    assert "  job         etl (Nightly ETL v1.0.0)" in out
    assert "  error       in task load\n" in out  # its row below holds the error, once
    assert out.count("database refused the connection") == 1
    tree = out[out.index("TASK") :].splitlines()
    status_column = tree[0].index("STATUS")
    assert [line[:status_column].rstrip() for line in tree[1:]] == [
        "extract", "  download", "  [page, 2]", "parallel [fan-out]", "  item 0", "  item 1",
        "load",
    ]  # fmt: skip
    rows = {r[0]: r[1:] for r in table("\n".join(tree[1:]))}
    assert rows["load"][0:3] == ["FAILED", "-", "3"]  # status, duration, attempts
    assert rows["load"][3] == "ConnectionError: database refused the connection"
    assert rows["extract"][0] == "COMPLETED"
    assert rows["extract"][3] == "= {'rows': 3, 'token': '[REDACTED]'}"  # redacted in views


def test_show_waiting_run_says_until_when(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock(runs.clock.now())
    _, out, _ = cli(capsys, "show", runs.waiting, "--dir", runs.dir, clock=clock)
    assert re.search(r"status +WAITING until \S+ \S+ \(in 2\dd \d\dh\)", out)
    assert re.search(r"wait 30 d \[cool-down\] +WAITING +- +1 +until ", out)


def test_run_ids_may_be_abbreviated(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    full = cli(capsys, "show", runs.ok, "--dir", runs.dir)[1]
    assert cli(capsys, "show", runs.ok[:10], "--dir", runs.dir)[1] == full
    assert cli(capsys, "show", runs.ok[4:12], "--dir", runs.dir)[1] == full  # without "run_"


def test_a_job_id_stands_for_its_newest_run(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "show", "etl", "--dir", runs.dir)[1].startswith(f"Run {runs.waiting}\n")
    assert cli(capsys, "logs", "report", "--dir", runs.dir)[0] == 0
    assert json.loads(cli(capsys, "export", "etl", "--dir", runs.dir)[1])["id"] == runs.waiting


def test_ambiguous_prefix_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = TriggerClient("t", store=DiskStore(tmp_path / "s"), clock=FakeClock())
    job = client.define_job("j", run=lambda payload, io, ctx: payload)
    job.trigger(1, run_id="run_aa1")
    job.trigger(2, run_id="run_aa2")
    client.store.close()
    for prefix in ("aa", "run_aa", "run_a"):
        code, out, err = cli(capsys, "show", prefix, "--dir", str(tmp_path / "s"))
        assert (code, out) == (1, "")
        assert err.count("\n") == 1
        assert "ambiguous" in err and "run_aa1" in err and "run_aa2" in err
    assert cli(capsys, "show", "aa2", "--dir", str(tmp_path / "s"))[1].startswith("Run run_aa2")


def test_unknown_run_is_not_found(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["show", "zzz"], ["logs", "zzz"], ["export", "zzz"], ["clear", "--run", "zzz"]):
        code, out, err = cli(capsys, *command, "--dir", runs.dir)
        assert (code, out) == (1, "")
        assert err == f"trigger-nb: error: no run matches 'zzz' in {Path(runs.dir).resolve()}\n"


def test_show_task_prints_details_attempts_logs_and_traceback(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "show", runs.failed, "--task", "load", "--dir", runs.dir)
    assert code == 0
    assert out.startswith(f"Task load [FAILED] in run {runs.failed}\n")
    assert re.search(r"^  idempotency +[0-9a-f]{64}$", out, re.M)
    assert "  error        ConnectionError: database refused the connection" in out
    attempts = re.findall(r"^  #(\d)  execution 1  .*  FAILED  ConnectionError", out, re.M)
    assert attempts == ["1", "2", "3"]
    assert "Logs (3)" in out and out.count("ERROR  load  database refused") == 3
    assert "Traceback of the last error" in out
    assert 'raise ConnectionError("database refused the connection")' in out


def test_show_task_finds_list_keys_ids_and_children(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    _, by_json_key, _ = cli(capsys, "show", runs.ok, "--task", '["page", 2]', "--dir", runs.dir)
    _, by_name, _ = cli(capsys, "show", runs.ok, "--task", "['page', 2]", "--dir", runs.dir)
    assert by_json_key == by_name
    task_id = re.search(r"^  id +(\w+)$", by_name, re.M)
    assert task_id is not None
    assert "  parent       extract" in by_name
    _, by_id, _ = cli(capsys, "show", runs.ok, "--task", task_id[1][:8], "--dir", runs.dir)
    assert by_id == by_name
    _, parent, _ = cli(capsys, "show", runs.ok, "--task", "extract", "--dir", runs.dir)
    assert "  children     download, [page, 2]" in parent
    assert "Logs (1)" in parent and "DEBUG  extract  extracting" in parent


def test_show_task_prints_description_params_properties_and_waits(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = cli(capsys, "show", runs.report, "--task", "render", "--dir", runs.dir)
    assert "  description  Render the weekly report\n" in out
    assert '  params       {"format": "pdf"}\n' in out
    assert "  pages        2 https://example.com/r\n" in out
    assert "  output       set, " in out and " bytes: {1, 2}\n" in out
    _, out, _ = cli(capsys, "show", runs.waiting, "--task", "cool-down", "--dir", runs.dir)
    assert out.startswith(f"Task wait 30 d [WAITING] in run {runs.waiting}")
    assert re.search(r"^  resumes +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", out, re.M)


def test_durations_are_human(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    client = TriggerClient("t", store=DiskStore(tmp_path / "s"), clock=clock)
    job = client.define_job("j", run=lambda seconds, io, ctx: clock.advance(seconds))
    for seconds in (0.25, 4.2, 185, 7500, 3 * DAY + 3600):
        job.trigger(seconds)
    client.store.close()
    _, out, _ = cli(capsys, "runs", "--dir", str(tmp_path / "s"))
    assert [row[4] for row in table(out)[1:]] == ["3d 01h", "2h 05m", "3m 05s", "4.20 s", "250 ms"]


def test_show_unknown_or_ambiguous_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def body(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("a", lambda: io.run_task("step", lambda: 1))
        io.run_task("b", lambda: io.run_task("step", lambda: 2))

    client = TriggerClient("t", store=DiskStore(tmp_path / "s"), clock=FakeClock())
    run = client.define_job("j", run=body).trigger()
    client.store.close()
    code, _, err = cli(capsys, "show", run.id, "--task", "step", "--dir", str(tmp_path / "s"))
    assert code == 1
    assert "task 'step' is ambiguous" in err and err.count("step (id ") == 2
    code, _, err = cli(capsys, "show", run.id, "--task", "nope", "--dir", str(tmp_path / "s"))
    assert code == 1
    assert f"run {run.id} has no task 'nope'" in err


def test_show_output_prints_json_or_repr(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "show", runs.ok, "--output", "--dir", runs.dir)
    assert (code, json.loads(out)) == (0, {"rows": 3, "day": 1})
    _, out, _ = cli(capsys, "show", runs.ok, "--task", "download", "--output", "--dir", runs.dir)
    assert json.loads(out) == [1, 2, 3]
    _, out, _ = cli(capsys, "show", runs.ok, "--task", "extract", "--output", "--dir", runs.dir)
    assert json.loads(out) == {"rows": 3, "token": "[REDACTED]"}
    _, out, _ = cli(capsys, "show", runs.report, "--task", "render", "--output", "--dir", runs.dir)
    assert out == "{1, 2}\n"  # not JSON-able: its repr
    _, out, _ = cli(capsys, "show", runs.report, "--task", "stamp", "--output", "--dir", runs.dir)
    assert json.loads(out) == {"at": "2026-01-02T00:00:00+00:00", "where": "a"}  # a dataclass
    _, out, _ = cli(capsys, "show", runs.report, "--output", "--json", "--dir", runs.dir)
    assert json.loads(out) == "{1, 2}"  # --json keeps the output parseable


def test_show_output_of_something_without_output_is_an_error(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "show", runs.failed, "--output", "--dir", runs.dir)
    assert (code, out) == (1, "")
    assert err == f"trigger-nb: error: run {runs.failed} has no output: it is FAILURE\n"
    code, _, err = cli(capsys, "show", runs.failed, "--task", "load", "--output", "--dir", runs.dir)
    assert (code, err) == (1, "trigger-nb: error: task 'load' has no output: it is FAILED\n")


def test_show_json_is_the_whole_tree(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "show", runs.failed, "--json", "--dir", runs.dir)
    data = json.loads(out)
    assert data["id"] == runs.failed and data["status"] == "FAILURE"
    assert [t["name"] for t in data["tasks"]] == ["extract", "parallel", "load"]
    assert [c["cache_key"] for c in data["tasks"][0]["children"]] == ["download", ["page", 2]]
    assert len(data["tasks"][2]["attempts"]) == 3
    assert [log["level"] for log in data["logs"]][:2] == ["info", "debug"]
    _, out, _ = cli(capsys, "show", runs.failed, "--task", "load", "--json", "--dir", runs.dir)
    task = json.loads(out)
    assert (task["status"], len(task["logs"]), task["children"]) == ("FAILED", 3, [])


# --- logs ---------------------------------------------------------------------------------------


def test_logs_prints_every_log_with_its_task(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "logs", runs.failed, "--dir", runs.dir)
    assert code == 0
    rows = [[*r[1:4], "  ".join(r[4:])] for r in table(out)]  # without the time
    assert rows == [
        ["#1", "INFO", "(run)", "starting  day=2"],
        ["#1", "DEBUG", "extract", "extracting"],
        ["#1", "ERROR", "load", "database refused"],
        ["#1", "ERROR", "load", "database refused"],
        ["#1", "ERROR", "load", "database refused"],
    ]


def test_logs_level_keeps_that_level_and_above(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    def levels(*flags: str) -> list[str]:
        return [r[2] for r in table(cli(capsys, "logs", runs.ok, "--dir", runs.dir, *flags)[1])]

    assert levels() == ["INFO", "DEBUG", "WARN"]
    assert levels("--level", "info") == ["INFO", "WARN"]
    assert levels("--level", "WARNING") == levels("--level", "warn") == ["WARN"]
    _, out, _ = cli(capsys, "logs", runs.ok, "--dir", runs.dir, "--level", "error")
    assert out == f"No logs at level error or above in run {runs.ok}.\n"
    _, out, _ = cli(capsys, "logs", runs.ok, "--dir", runs.dir, "--level", "warn", "--json")
    assert [(log["message"], log["data"]) for log in json.loads(out)] == [("finished", {"rows": 3})]


# --- clear --------------------------------------------------------------------------------------


def stored_ids(directory: str) -> set[str]:
    store = DiskStore(directory)
    try:
        return {r.id for r in store.list_runs()}
    finally:
        store.close()


def remaining(runs: Runs) -> set[str]:
    return stored_ids(runs.dir)


def test_clear_one_run_leaves_the_others(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "clear", "--run", runs.failed[:10], "--yes", "--dir", runs.dir)
    assert (code, out) == (0, f"Deleted run {runs.failed} (job 'etl').\n")
    assert remaining(runs) == {runs.ok, runs.waiting, runs.report}
    assert cli(capsys, "show", runs.failed, "--dir", runs.dir)[0] == 1
    assert cli(capsys, "show", runs.ok, "--task", "extract", "--output", "--dir", runs.dir)[0] == 0


def test_clear_job_clears_only_its_runs(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "clear", "etl", "--yes", "--dir", runs.dir)
    assert (code, out) == (0, "Deleted 3 runs of job 'etl'.\n")
    assert remaining(runs) == {runs.report}
    code, _, err = cli(capsys, "clear", "etl", "--dir", runs.dir)
    assert code == 1 and "no runs of job 'etl'" in err


def test_clear_everything(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "clear", "-y", "--dir", runs.dir)[1] == "Deleted 4 runs.\n"
    assert remaining(runs) == set()
    code, out, _ = cli(capsys, "clear", "--dir", runs.dir)
    assert (code, out) == (0, f"No runs in {Path(runs.dir).resolve()}: nothing to clear.\n")


def test_clear_run_of_another_job_is_refused(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "clear", "report", "--run", runs.ok, "--dir", runs.dir)
    assert (code, err) == (
        1, f"trigger-nb: error: run {runs.ok} is a run of job 'etl', not 'report'\n"
    )  # fmt: skip
    assert len(remaining(runs)) == 4


def test_clear_waits_for_a_run_that_is_executing(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another process executing the run holds its lock: clear deletes it only once released."""
    executing = DiskStore(runs.dir)  # a store of its own: its lock is a separate file lock
    codes: list[int] = []
    clearing = threading.Thread(
        target=lambda: codes.append(main(["clear", "--run", runs.failed, "-y", "--dir", runs.dir]))
    )
    try:
        with executing.lock_run(runs.failed):
            clearing.start()
            deadline = time.monotonic() + 30
            waited = ""
            while f"{runs.failed} is executing in process" not in waited:
                assert time.monotonic() < deadline, "clear never waited for the run's lock"
                time.sleep(0.01)
                waited += capsys.readouterr().err  # said once clear finds the lock taken
            assert clearing.is_alive() and codes == []
            assert runs.failed in remaining(runs)  # nothing deleted while the run executes
        clearing.join(timeout=30)
    finally:
        executing.close()
    assert codes == [0]
    assert capsys.readouterr().out == f"Deleted run {runs.failed} (job 'etl').\n"
    assert remaining(runs) == {runs.ok, runs.waiting, runs.report}


def _clear_on_a_terminal(runs: Runs, answer: str) -> tuple[int, str]:
    """`trigger-nb clear etl` with stdin on a real pseudo-terminal, answering ``answer``."""
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode() + b"\n")
        done = run_cli("clear", "etl", "--dir", runs.dir, stdin=follower)
    finally:
        os.close(follower)
        os.close(leader)
    return done.returncode, done.stderr + done.stdout


@pytest.mark.slow
def test_clear_asks_on_a_terminal(runs: Runs) -> None:
    code, text = _clear_on_a_terminal(runs, "n")
    assert code == 1
    assert "Delete 3 runs of job 'etl' from " in text and "? [y/N] Nothing deleted." in text
    assert len(remaining(runs)) == 4
    code, text = _clear_on_a_terminal(runs, "y")
    assert code == 0 and "Deleted 3 runs of job 'etl'." in text
    assert remaining(runs) == {runs.report}


@pytest.mark.slow
def test_clearing_without_a_terminal_needs_yes(runs: Runs) -> None:
    """No terminal to ask on (a script, cron, a pipe): `clear` deletes nothing and says to add
    --yes; even a "y" piped in is not consent."""
    for stdin in ({"stdin": subprocess.DEVNULL}, {"input": "y\n"}):
        for argv in (["clear"], ["clear", "etl"], ["clear", "--run", runs.ok]):
            done = run_cli(*argv, "--dir", runs.dir, **stdin)
            assert (done.returncode, done.stdout) == (2, ""), (argv, stdin)
            assert done.stderr.count("\n") == 1 and "add --yes" in done.stderr, done.stderr
            assert "not a terminal" in done.stderr
    assert len(remaining(runs)) == 4
    done = run_cli("clear", "etl", "--yes", "--dir", runs.dir, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == (0, "Deleted 3 runs of job 'etl'.\n")
    assert remaining(runs) == {runs.report}


def test_pruning_without_a_terminal_needs_yes(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    later = FakeClock(runs.clock.now())
    later.advance(100 * DAY)  # every run is old by now
    code, out, err = cli(capsys, "prune", "--older-than", "1", "--dir", runs.dir, clock=later)
    assert (code, out) == (2, "")  # pytest's stdin is not a terminal
    assert err == (
        "trigger-nb: error: trigger-nb prune deletes runs and standard input is not a terminal "
        "to confirm on: add --yes to delete without asking\n"
    )
    assert len(remaining(runs)) == 4
    code, out, _ = cli(capsys, "prune", "--older-than", "1", "-y", "--dir", runs.dir, clock=later)
    assert code == 0 and out.startswith("Deleted 4 runs ") and remaining(runs) == set()


def test_an_empty_dir_is_a_usage_error_not_the_default_store(
    runs: Runs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIGGER_NB_DIR", runs.dir)  # the default store exists and has runs
    for argv in (["runs", "--dir", ""], ["--dir", " ", "clear", "-y"], ["show", "etl", "--dir="]):
        code, out, err = cli(capsys, *argv)
        assert (code, out) == (2, ""), argv
        assert err.count("\n") == 1 and "argument --dir: is empty" in err, err
    assert len(remaining(runs)) == 4


# --- export -------------------------------------------------------------------------------------


def test_export_json(runs: Runs, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "export", runs.ok, "--dir", runs.dir)
    data = json.loads(out)
    assert (code, data["id"], data["executions"]) == (0, runs.ok, 2)
    assert [t["cache_key"] for t in data["tasks"]] == ["extract", "fan-out"]
    target = tmp_path / "run.json"
    code, out, err = cli(
        capsys, "export", runs.ok, "--format", "json", "-o", str(target), "--dir", runs.dir
    )
    assert (code, out) == (0, "")
    assert err == f"Wrote run {runs.ok} as json to {target}.\n"
    assert json.loads(target.read_text()) == data


def test_export_html_is_a_standalone_page(
    runs: Runs, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "run.html"
    code, _, _ = cli(
        capsys, "export", runs.failed, "--format", "html", "-o", str(target), "--dir", runs.dir
    )
    page = target.read_text()
    assert code == 0
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    # standalone: the page's own script (tree, filters, timeline) and data, nothing fetched
    assert page.count("<script>") == 1 and "src=" not in page and "<link" not in page
    assert 'data-tab="timeline"' in page  # the timeline tab, drawn by the script
    for name in ("extract", "download", "load", runs.failed):
        assert name in page
    _, out, _ = cli(capsys, "export", runs.failed, "--format", "html", "--dir", runs.dir)
    assert out == page


def test_export_to_an_unwritable_place_is_one_line(
    runs: Runs, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "missing-dir" / "run.json"
    code, out, err = cli(capsys, "export", runs.ok, "-o", str(target), "--dir", runs.dir)
    assert (code, out) == (1, "")
    assert err == f"trigger-nb: error: cannot write {target}: No such file or directory\n"


# --- prune --------------------------------------------------------------------------------------


def test_prune_deletes_runs_by_age(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    client = TriggerClient("t", store=DiskStore(tmp_path / "s"), clock=clock)
    job = client.define_job("j", run=lambda payload, io, ctx: payload)
    waits = client.define_job("w", run=lambda payload, io, ctx: io.wait("later", 60 * DAY))
    old = job.trigger("old")
    long_wait = waits.trigger()  # started long ago, but due only in 60 days
    clock.advance(10 * DAY)
    recent = job.trigger("recent")
    client.store.close()
    clock.advance(2 * DAY)  # now: old is 12 days old, recent 2 days
    d = str(tmp_path / "s")

    code, out, _ = cli(capsys, "prune", "--older-than", "5", "--dry-run", "--dir", d, clock=clock)
    assert code == 0
    assert re.fullmatch(
        r"Would delete 1 run not active for 5 days \(since [-\d]+ [:\d]+\):", out.splitlines()[0]
    )
    assert out.splitlines()[1:] == [f"  {old.id}"]
    code, out, _ = cli(capsys, "prune", "--older-than", "5", "--yes", "--dir", d, clock=clock)
    assert out.startswith("Deleted 1 run not active for 5 days (since ") and out.endswith(
        f"):\n  {old.id}\n"
    )
    assert stored_ids(d) == {recent.id, long_wait.id}
    _, out, _ = cli(capsys, "prune", "--older-than", "5", "--dir", d, clock=clock)
    assert out.startswith("Deleted 0 runs ") and out.endswith(".\n")
    _, out, _ = cli(capsys, "prune", "--older-than", "1e12", "--dir", d, clock=clock)
    assert out == "Deleted 0 runs not active for 1e+12 days.\n"  # older than time itself
    clock.advance(60 * DAY)
    cli(capsys, "prune", "--older-than", "0.5", "-y", "--dir", d, clock=clock)
    assert stored_ids(d) == set()


# --- errors and exit codes ----------------------------------------------------------------------


def test_missing_store_is_a_clear_message_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    for command in (
        ["runs"],
        ["show", "x"],
        ["logs", "x"],
        ["clear", "-y"],
        ["prune", "--older-than", "1"],
    ):
        code, out, err = cli(capsys, *command, "--dir", str(missing))
        assert (code, out) == (1, "")
        assert err == (
            f"trigger-nb: error: no trigger_nb store at {missing}: the directory does not exist; "
            "check --dir\n"
        )
    assert not missing.exists()
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, "runs", "--dir", str(tmp_path / "empty"))
    assert code == 1 and "is not a trigger_nb store (no cache.db)" in err
    assert list((tmp_path / "empty").iterdir()) == []


def test_missing_store_hint_names_where_the_directory_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIGGER_NB_DIR", str(tmp_path / "from-env"))
    code, _, err = cli(capsys, "runs")
    assert code == 1 and err.endswith("does not exist; check $TRIGGER_NB_DIR\n")
    monkeypatch.delenv("TRIGGER_NB_DIR")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "runs")
    assert code == 1
    assert err == (
        f"trigger-nb: error: no trigger_nb store at {tmp_path.resolve() / '.trigger_nb'}: the "
        "directory does not exist; run from your notebook's directory, or pass --dir DIR or set "
        "$TRIGGER_NB_DIR\n"
    )
    assert not (tmp_path / ".trigger_nb").exists()


def test_usage_errors_exit_2_with_one_line(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        [],
        ["bogus"],
        ["runs", "--limit", "x"],
        ["runs", "--limit", "0"],
        ["runs", "--status", "done"],
        ["show"],
        ["logs", runs.ok, "--level", "loud"],
        ["export", runs.ok, "--format", "xml"],
        ["prune"],
        ["prune", "--older-than", "-1"],
        ["prune", "--older-than", "soon"],
        ["prune", "--older-than", "nan"],
        ["runs", "--limit", "-3"],
    ):
        code, out, err = cli(capsys, *argv, "--dir", runs.dir)
        assert (code, out) == (2, ""), argv
        assert err.count("\n") == 1 and "error:" in err, (argv, err)
    assert len(remaining(runs)) == 4


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for command in ("runs", "show", "logs", "clear", "export", "prune", "--dir"):
        assert command in out
    code, out, _ = cli(capsys, "prune", "--help")
    assert code == 0 and "--older-than DAYS" in out


def test_a_store_of_an_unknown_format_is_one_line(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    store = DiskStore(runs.dir)
    store.backend.write([("__format__", "99")])
    store.close()
    code, _, err = cli(capsys, "runs", "--dir", runs.dir)
    assert code == 1 and err.count("\n") == 1 and "format version '99'" in err


@pytest.mark.slow
def test_exit_codes_in_subprocesses(runs: Runs) -> None:
    ok = run_cli("show", runs.ok[:10], "--dir", runs.dir)
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.startswith(f"Run {runs.ok}")
    script = run_cli("--dir", runs.dir, "runs", module=False)
    assert script.returncode == 0 and runs.waiting[:12] in script.stdout
    missing = run_cli("show", "zzz", "--dir", runs.dir, module=False)
    assert missing.returncode == 1 and missing.stderr.startswith("trigger-nb: error: no run")
    no_store = run_cli("runs", "--dir", str(Path(runs.dir) / "nope"))
    assert no_store.returncode == 1 and no_store.stderr.count("\n") == 1
    usage = run_cli("runs", "--limit", "many", module=False)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    for done in (missing, no_store, usage):
        assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.slow
def test_a_closed_pipe_is_not_an_error(runs: Runs) -> None:
    """`trigger-nb logs RUN | head -1`: the reader goes away, the command ends quietly."""
    command = [sys.executable, "-m", "trigger_nb", "runs", "--dir", runs.dir]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the child writes a byte
    stderr = child.stderr.read().decode()
    child.stderr.close()
    assert (child.wait(timeout=60), stderr) == (0, "")


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [["--help"], ["runs"], ["show", "RUN"], ["logs", "RUN"], ["export", "RUN", "--format", "html"]],
)
def test_cli_never_imports_ipython_or_ipywidgets(runs: Runs, argv: list[str]) -> None:
    argv = [runs.ok if a == "RUN" else a for a in argv]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trigger_nb", *argv, "--dir", runs.dir],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    assert "trigger_nb" in imported
    assert not imported & {"IPython", "ipywidgets", "ipykernel", "traitlets"}


def test_times_are_shown_in_local_time(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    store = DiskStore(runs.dir)
    record, logs = store.find_run(runs.ok), store.load_snapshot(runs.ok).logs
    store.close()
    _, out, _ = cli(capsys, "runs", "--dir", runs.dir, "--job", "etl")
    assert record.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") in out
    _, out, _ = cli(capsys, "logs", runs.ok, "--dir", runs.dir)
    assert out.startswith(logs[0].time.astimezone().strftime("%Y-%m-%d %H:%M:%S  #1  INFO"))


def test_python_dash_m_runs_the_cli(
    runs: Runs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["trigger_nb", "runs", "--dir", runs.dir, "--job", "report"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("trigger_nb", run_name="__main__")
    assert stop.value.code == 0
    assert runs.report[:12] in capsys.readouterr().out


def test_cancel_stops_a_waiting_run_and_leaves_finished_ones(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "cancel", runs.waiting[:12], "--dir", runs.dir)
    assert code == 0
    assert out == f"Canceled run {runs.waiting} (it was WAITING): it will not resume by itself.\n"
    listed = json.loads(cli(capsys, "runs", "--json", "--dir", runs.dir)[1])
    assert {r["id"]: r["status"] for r in listed}[runs.waiting] == "CANCELED"
    code, out, _ = cli(capsys, "cancel", runs.ok, "--dir", runs.dir)
    assert (code, out) == (0, f"Run {runs.ok} is SUCCESS: nothing to cancel.\n")
    assert cli(capsys, "cancel", "run_nope", "--dir", runs.dir)[0] == 1
