"""``trigger-nb refresh RUN_ID TASK [--and-later]`` (SPEC 5): marks tasks of a stored run to
run again on its next execution. The command line runs no job code: the next execution, where
the job is defined, runs exactly the marked tasks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import DiskStore, TriggerClient
from trigger_nb._cli.main import main

SCRIPT = Path(sys.executable).with_name("trigger-nb")


class Stored:
    """A run of ``a``, ``p`` (subtasks ``c1``, ``c2``) and ``d`` in a DiskStore; side effects
    counted in a file."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = str(tmp_path / "store")
        self.effects = tmp_path / "effects.log"
        self.client = TriggerClient("cli", store=DiskStore(self.dir))
        job = self.client.define_job("nightly")
        effects = self.effects

        def effect(name: str) -> str:
            with effects.open("a") as file:
                file.write(name + "\n")
            return name

        @job.run
        def work(payload: Any, io: Any, ctx: Any) -> None:
            io.run_task("a", lambda: effect("a"))

            def parent() -> None:
                effect("p")
                io.run_task("c1", lambda: effect("c1"))
                io.run_task("c2", lambda: effect("c2"))

            io.run_task("p", parent)
            io.run_task(["d", 1], lambda: effect("d"))

        self.run = job.trigger()
        assert self.run.status == "SUCCESS"

    def counts(self) -> dict[str, int]:
        lines = self.effects.read_text().split()
        return {name: lines.count(name) for name in ("a", "p", "c1", "c2", "d")}

    def cli(self, *args: str) -> int:
        return main([*args, "--dir", self.dir])


@pytest.fixture
def stored(tmp_path: Path) -> Stored:
    return Stored(tmp_path)


def test_refresh_marks_a_task_and_the_next_execution_runs_exactly_it(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stored.cli("refresh", stored.run.id, "c1") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Marked 2 tasks of run {stored.run.id} to run again on its next ")
    assert "execution: p, c1." in out
    assert stored.counts() == dict.fromkeys(("a", "p", "c1", "c2", "d"), 1)  # nothing ran
    stored.run.resume()
    assert stored.counts() == {"a": 1, "p": 2, "c1": 2, "c2": 1, "d": 1}


def test_refresh_and_later_marks_every_later_task(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stored.cli("refresh", stored.run.id[:10], "c2", "--and-later") == 0
    assert "Marked 3 tasks" in capsys.readouterr().out
    stored.run.resume()
    assert stored.counts() == {"a": 1, "p": 2, "c1": 1, "c2": 2, "d": 2}


def test_show_says_which_tasks_are_pending_and_which_attempts_superseded(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    # keys as every view prints them: the list key [d, 1]
    assert stored.cli("refresh", stored.run.id, "[d, 1]") == 0
    capsys.readouterr()
    assert stored.cli("show", stored.run.id) == 0
    assert "COMPLETED (refresh pending)" in capsys.readouterr().out
    assert stored.cli("show", stored.run.id, "--task", '["d", 1]', "--json") == 0
    assert json.loads(capsys.readouterr().out)["refresh_pending"] is True
    stored.run.resume()
    assert stored.cli("show", stored.run.id, "--task", "[d, 1]") == 0
    out = capsys.readouterr().out
    assert "#1  execution 1" in out and "COMPLETED · superseded (was 'd')" in out
    assert "refresh pending" not in out


def test_refresh_errors_and_exit_codes(stored: Stored, capsys: pytest.CaptureFixture[str]) -> None:
    assert stored.cli("refresh", stored.run.id, "c3") == 1
    err = capsys.readouterr().err
    assert f"run {stored.run.id} has no task 'c3'; closest: 'c2', 'c1'" in err
    assert stored.cli("refresh", "run_missing", "a") == 1
    assert "no run matches 'run_missing'" in capsys.readouterr().err
    assert stored.cli("refresh", stored.run.id) == 2  # TASK missing: usage
    assert stored.cli("refresh", stored.run.id, "a", "--later") == 2
    assert DiskStore(stored.dir).refresh_marks(stored.run.id) == set()


def test_refresh_asks_nothing_without_a_terminal(stored: Stored) -> None:
    """Nothing is deleted, so no confirmation: it works from a script or a pipe."""
    done = subprocess.run(
        [str(SCRIPT), "--dir", stored.dir, "refresh", stored.run.id, "a"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Marked 1 task of run" in done.stdout
    assert DiskStore(stored.dir).refresh_marks(stored.run.id) == {stored.run.task("a").id}
