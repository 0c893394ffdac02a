"""``%%trigger_job JOB --refresh-task TASK`` (repeatable) and ``--rerun-from TASK`` in a real,
in-process IPython shell after ``%load_ext trigger_nb``, on a DiskStore in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import trigger_nb
import trigger_nb._client.client
from trigger_nb._jupyter.args import MagicArgumentError, parse_job_line


@pytest.fixture
def ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The shell after ``%load_ext trigger_nb``, with a fresh namespace and default client."""
    monkeypatch.setenv("TRIGGER_NB_DIR", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(trigger_nb._client.client, "_default", None)
    shell = InteractiveShell.instance()
    shell.colors = "nocolor"
    shell.reset(new_session=False)
    assert shell.run_cell("%load_ext trigger_nb").error_in_exec is None
    shell.user_ns["calls"] = []
    yield shell
    shell.reset(new_session=False)


def ok(ip: Any, code: str) -> Any:
    result = ip.run_cell(code, store_history=True)
    assert result.error_in_exec is None, result.error_in_exec
    assert result.error_before_exec is None, result.error_before_exec
    return result.result


CELL = """%%trigger_job steps --quiet{flags}
a = io.run_task("a", lambda: calls.append("a") or calls.count("a"))
def load():
    calls.append("load")
    return io.run_task(["page", 2], lambda: calls.append("page") or calls.count("page"))
b = io.run_task("load", load)
c = io.run_task("c", lambda: calls.append("c") or calls.count("c"))
[a, b, c]
"""


def cell(flags: str = "") -> str:
    return CELL.format(flags=flags)


def test_refresh_task_runs_that_task_again_in_this_execution(ip: Any) -> None:
    assert ok(ip, cell()) == [1, 1, 1]
    assert ok(ip, cell(" --refresh-task c")) == [1, 1, 2]
    assert ip.user_ns["calls"] == ["a", "load", "page", "c", "c"]
    assert ok(ip, cell()) == [1, 1, 2]  # without the flag: replayed
    assert ip.user_ns["calls"] == ["a", "load", "page", "c", "c"]
    (run,) = trigger_nb.list_runs("steps")
    assert [h.output for h in run.task("c").history] == [1, 2]


def test_refresh_task_is_repeatable_and_takes_keys_as_views_print_them(ip: Any) -> None:
    ok(ip, cell())
    # a subtask by its list key: it runs with the parent that reaches it
    assert ok(ip, cell(' --refresh-task a --refresh-task ["page", 2]')) == [2, 2, 1]
    assert ip.user_ns["calls"] == ["a", "load", "page", "c", "a", "load", "page"]


def test_rerun_from_runs_that_task_and_every_later_one(ip: Any) -> None:
    ok(ip, cell())
    assert ok(ip, cell(" --rerun-from load")) == [1, 2, 2]
    assert ip.user_ns["calls"] == ["a", "load", "page", "c", "load", "page", "c"]


def test_the_flags_do_nothing_on_a_run_that_does_not_exist_yet(ip: Any) -> None:
    """A notebook keeping the flag still runs on a fresh store: nothing is cached there."""
    assert ok(ip, cell(" --refresh-task c --rerun-from a")) == [1, 1, 1]


def test_an_unknown_task_is_a_one_line_usage_error_and_nothing_runs(ip: Any) -> None:
    ok(ip, cell())
    result = ip.run_cell(cell(" --refresh-task cc"))
    assert isinstance(result.error_in_exec, UsageError)
    message = str(result.error_in_exec)
    assert message.startswith("%%trigger_job --refresh-task: run run_")
    assert message.endswith("has no task 'cc'; closest: 'c'")
    result = ip.run_cell(cell(" --rerun-from lod"))
    assert "%%trigger_job --rerun-from:" in str(result.error_in_exec)
    assert "closest: 'load'" in str(result.error_in_exec)
    assert ip.user_ns["calls"] == ["a", "load", "page", "c"]
    (run,) = trigger_nb.list_runs("steps")
    assert run.executions == 1


def test_parse_refresh_flags() -> None:
    args = parse_job_line('job --refresh-task a --refresh-task ["p", 2] --rerun-from "my task"')
    assert args.refresh_tasks == ("a", '["p", 2]')
    assert args.rerun_from == "my task"
    assert parse_job_line("job").refresh_tasks == ()
    with pytest.raises(MagicArgumentError, match="--rerun-from is given twice"):
        parse_job_line("job --rerun-from a --rerun-from b")
    with pytest.raises(MagicArgumentError, match="--refresh-task needs a value"):
        parse_job_line("job --refresh-task")
    with pytest.raises(MagicArgumentError, match="did you mean --refresh-task"):
        parse_job_line("job --refresh-tasks a")
