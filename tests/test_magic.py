"""The magics in a real, in-process IPython shell, on a real DiskStore in tmp_path.

Behaviour that needs a kernel (its event loop, SIGINT, nbclient) is in test_notebooks.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import trigger_nb
import trigger_nb._client.client
from trigger_nb._jupyter.args import MagicArgumentError, parse_job_line, split_words
from trigger_nb._render.bundle import static_mimebundle
from trigger_nb._widgets.display import register, show_run
from trigger_nb._widgets.output import WIDGET_VIEW_MIME
from trigger_nb._widgets.run_view import run_data


@pytest.fixture
def ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The shell after ``%load_ext trigger_nb``, with a fresh namespace and default client."""
    monkeypatch.setenv("TRIGGER_NB_DIR", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    # The default client is one per process; a new one per test reads TRIGGER_NB_DIR again.
    monkeypatch.setattr(trigger_nb._client.client, "_default", None)
    shell = InteractiveShell.instance()
    shell.colors = "nocolor"
    shell.reset(new_session=False)
    result = shell.run_cell("%load_ext trigger_nb")
    assert result.error_in_exec is None
    shell.user_ns["calls"] = []
    yield shell
    shell.reset(new_session=False)


def run(ip: Any, code: str) -> Any:
    return ip.run_cell(code, store_history=True)


def ok(ip: Any, code: str) -> Any:
    result = run(ip, code)
    assert result.error_in_exec is None, result.error_in_exec
    assert result.error_before_exec is None, result.error_before_exec
    return result.result


COUNTING = """%%trigger_job counter --quiet{flags}
first = io.run_task("first", lambda: calls.append("first") or len(calls))
second = io.run_task("second", lambda: calls.append("second") or len(calls))
first * 10 + second
"""


def test_second_execution_of_the_same_cell_replays(ip: Any) -> None:
    assert ok(ip, COUNTING.format(flags="")) == 12
    assert ok(ip, COUNTING.format(flags="")) == 12
    assert ip.user_ns["calls"] == ["first", "second"]
    (run_,) = trigger_nb.list_runs("counter")
    assert run_.executions == 2
    assert [e.replayed for e in run_.execution_history] == [0, 2]


def test_new_run_runs_every_task_again(ip: Any) -> None:
    ok(ip, COUNTING.format(flags=""))
    assert ok(ip, COUNTING.format(flags=" --new-run")) == 34
    assert ip.user_ns["calls"] == ["first", "second", "first", "second"]
    assert len(trigger_nb.list_runs("counter")) == 2


def test_refresh_runs_every_task_again_in_the_same_run(ip: Any) -> None:
    ok(ip, COUNTING.format(flags=""))
    assert ok(ip, COUNTING.format(flags=" --refresh")) == 34
    assert ip.user_ns["calls"] == ["first", "second", "first", "second"]
    (run_,) = trigger_nb.list_runs("counter")
    assert [e.executed for e in run_.execution_history] == [2, 2]
    assert ok(ip, COUNTING.format(flags="")) == 34  # and the refreshed results replay


def test_a_changed_payload_is_a_new_run(ip: Any) -> None:
    cell = '%%trigger_job greet --quiet --payload {"name": name}\n'
    cell += 'io.run_task("hello", lambda: calls.append(payload["name"]) or payload["name"])'
    ok(ip, "name = 'Ada'")
    assert ok(ip, cell) == "Ada"
    ok(ip, "name = 'Grace'")
    assert ok(ip, cell) == "Grace"
    ok(ip, "name = 'Ada'")
    assert ok(ip, cell) == "Ada"
    assert ip.user_ns["calls"] == ["Ada", "Grace"]
    assert sorted(r.payload["name"] for r in trigger_nb.list_runs("greet")) == ["Ada", "Grace"]


def test_schema_validates_the_payload_the_body_sees(ip: Any) -> None:
    ok(
        ip,
        "from pydantic import BaseModel\nclass NewUser(BaseModel):\n    user_id: str\n    age: int",
    )
    cell = '%%trigger_job signup --quiet --schema NewUser --payload {"user_id": "u1", "age": "7"}\n'
    cell += "(type(payload).__name__, payload.age)"
    assert ok(ip, cell) == ("NewUser", 7)


def test_body_may_await(ip: Any) -> None:
    cell = """%%trigger_job waiter --quiet
import asyncio
await asyncio.sleep(0.01)
pair = await asyncio.gather(io.arun_task("a", lambda: 1), io.arun_task("b", lambda: 2))
await io.arun_task("sum", lambda: sum(pair))
"""
    assert ok(ip, cell) == 3
    assert ok(ip, cell) == 3
    assert trigger_nb.list_runs("waiter")[0].execution_history[-1].replayed == 3


def test_assigned_names_stay_and_injected_names_are_restored(ip: Any) -> None:
    ok(ip, "payload = 'my own variable'")
    ok(
        ip,
        "%%trigger_job names --quiet\n"
        "answer = io.run_task('a', lambda: 42)\n"
        "seen = type(io).__name__",
    )
    assert ok(ip, "answer, seen, payload") == (42, "IO", "my own variable")
    assert "io" not in ip.user_ns and "ctx" not in ip.user_ns


def test_ctx_describes_the_job_and_run(ip: Any) -> None:
    cell = "%%trigger_job ctx-job --quiet --version 2.0\n"
    cell += "(ctx.job.id, ctx.job.version, ctx.run.execution)"
    assert ok(ip, cell) == ("ctx-job", "2.0", 1)
    assert ok(ip, cell) == ("ctx-job", "2.0", 2)


def test_last_expression_is_displayed_and_a_semicolon_silences_it(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ok(ip, "%%trigger_job shown --quiet\n6 * 7") == 42
    assert "Out[" in capsys.readouterr().out
    assert ok(ip, "%%trigger_job silent --quiet\n6 * 7;") is None
    assert "Out[" not in capsys.readouterr().out
    assert trigger_nb.list_runs("silent")[0].output == 42  # still the run's output


def test_live_view_shows_the_finished_tree(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ok(
        ip,
        "%%trigger_job viewed --name 'Viewed job'\nio.run_task('fetch', lambda: 1, name='Fetch')",
    )
    out = capsys.readouterr().out
    assert "Viewed job" in out and "Fetch" in out and "SUCCESS" in out


def test_failure_shows_the_users_line_not_trigger_nb_internals(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = """%%trigger_job broken --quiet
def divide():
    return 1 / 0
io.run_task("divide", lambda: divide())
"""
    result = run(ip, cell)
    assert isinstance(result.error_in_exec, trigger_nb.TaskError)
    out = capsys.readouterr().out
    assert "return 1 / 0" in out and 'io.run_task("divide", lambda: divide())' in out
    assert "ZeroDivisionError" in out
    for internal in ("trigger_nb/", "execute_run", "run_cell_magic", "_attempts"):
        assert internal not in out
    assert trigger_nb.list_runs("broken")[0].status == "FAILURE"


def test_error_in_the_body_itself_points_at_its_cell_line(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(ip, "%%trigger_job typo --quiet\nx = 1\nundefined_name + x")
    assert isinstance(result.error_in_exec, NameError)
    out = capsys.readouterr().out
    assert "line 3" in out and "undefined_name + x" in out and "trigger_nb/" not in out


def test_keyboard_interrupt_cancels_and_the_next_execution_continues(ip: Any) -> None:
    ok(ip, "stop = True")
    cell = """%%trigger_job interrupted --quiet
io.run_task("before", lambda: calls.append("before"))
def slow():
    calls.append("slow")
    if stop:
        raise KeyboardInterrupt  # what Ctrl-C raises inside the task
io.run_task("slow", slow)
io.run_task("after", lambda: calls.append("after"))
len(calls)
"""
    result = run(ip, cell)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "Re-run this cell to continue" in str(result.error_in_exec)
    run_ = trigger_nb.list_runs("interrupted")[0]
    assert run_.status == "CANCELED"
    assert run_.task("slow").status == "INTERRUPTED"
    ok(ip, "stop = False")
    assert ok(ip, cell) == 4
    assert ip.user_ns["calls"] == ["before", "slow", "slow", "after"]
    assert run_.reload().status == "SUCCESS"


def test_waiting_run_continues_when_the_cell_is_executed_again(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = """%%trigger_job waits --quiet
io.run_task("before", lambda: calls.append("before"))
io.wait("pause", 1.0)
io.run_task("after", lambda: calls.append("after"))
"done"
"""
    assert ok(ip, cell) is None
    assert "re-run this cell" in capsys.readouterr().out
    assert trigger_nb.list_runs("waits")[0].status == "WAITING"
    assert ok(ip, cell) is None  # not due yet: suspends again
    time.sleep(1.05)
    assert ok(ip, cell) == "done"
    assert ip.user_ns["calls"] == ["before", "after"]


def test_event_without_payload_only_registers_the_job(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ok(ip, "from pydantic import BaseModel\nclass NewUser(BaseModel):\n    user_id: str")
    cell = "%%trigger_job on-signup --event user.created --schema NewUser\n"
    cell += "io.run_task('welcome', lambda: calls.append(payload.user_id) or payload.user_id)"
    assert ok(ip, cell) is None
    assert "trigger_nb.send_event('user.created', payload)" in capsys.readouterr().out
    assert trigger_nb.list_runs("on-signup") == [] and ip.user_ns["calls"] == []
    (run_,) = trigger_nb.send_event("user.created", {"user_id": "u7"})
    assert (run_.status, run_.output, ip.user_ns["calls"]) == ("SUCCESS", "u7", ["u7"])
    trigger_nb.send_event("user.created", {"user_id": "u7"})
    assert ip.user_ns["calls"] == ["u7"]


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("counter --bogus", "--bogus"),
        ("counter -q", "-q"),
        ("counter --quiet --quiet", "--quiet"),
        ("counter --payload", "--payload"),
        ("counter --payload {'user_id': undefined_user}", "undefined_user"),
        ("counter --payload {'user_id': undefined_user}", "--payload"),
        ("counter --payload {'a': (1,}", "--payload"),
        ("counter --schema 42", "--schema"),
        ("counter --schema 'NewUser'", "--schema"),
        ("counter --schema NewUser --payload {'age': 1}", "--payload"),
        ("counter --integrations ['mail']", "--integrations"),
        ("counter --integrations {'run_task': object()}", "run_task"),
        ("counter --run-id 'not a valid id'", "--run-id"),
        ("", "JOB_ID"),
        ("''", "JOB_ID"),
        ("'bad job id!'", "job id"),
        ("counter extra", "extra"),
        ("counter --payload {'a': 1", "'}'"),
        ("counter --on-code-change sometimes", "use one of warn, rerun, ignore, error"),
        ("counter --on-code-change", "--on-code-change needs a value"),
        ("counter --on-code-change warn rerun", "'warn rerun' is not a policy"),
        ("counter --on-code-change Warn", "did you mean warn?"),
        ("counter --on-code-change=", "--on-code-change needs a value"),
        ("counter --on-code-change rerun --on-code-change warn", "given twice"),
        ("counter --refresh-stale=yes", "--refresh-stale is a switch"),
    ],
)
def test_bad_arguments_are_a_one_line_usage_error_and_nothing_runs(
    ip: Any, capsys: pytest.CaptureFixture[str], line: str, named: str
) -> None:
    ok(ip, "from pydantic import BaseModel\nclass NewUser(BaseModel):\n    user_id: str")
    result = run(ip, f"%%trigger_job {line}\nio.run_task('side-effect', lambda: calls.append(1))")
    assert isinstance(result.error_in_exec, UsageError)
    captured = capsys.readouterr()
    shown = captured.err + captured.out
    assert shown.count("\n") == 1 and shown.startswith("UsageError: %%trigger_job")
    assert named in shown
    assert "Traceback" not in shown and "trigger_nb/" not in shown
    assert ip.user_ns["calls"] == [] and trigger_nb.list_runs() == []


@pytest.mark.parametrize(
    ("magic", "expected"),
    [
        (
            '%%trigger_job myjob --paylod {"a": 1}',
            "unknown option --paylod: did you mean --payload?",
        ),
        ("%%trigger_job myjob --quite", "unknown option --quite: did you mean --quiet?"),
        ("%%trigger_job myjob --new_run", "unknown option --new_run: did you mean --new-run?"),
        ("%%trigger_job myjob --shema NewUser", "unknown option --shema: did you mean --schema?"),
        ("%%trigger_job myjob --runid r1", "unknown option --runid: did you mean --run-id?"),
        (
            "%%trigger_job myjob --on-code-chnage rerun",
            "unknown option --on-code-chnage: did you mean --on-code-change?",
        ),
        (
            "%%trigger_job myjob --refresh-stail",
            "unknown option --refresh-stail: did you mean --refresh-stale?",
        ),
        ("%trigger_cache clear myjob --rn r1", "unknown option --rn: did you mean --run?"),
        ("%trigger_runs --job myjob", "unknown option --job; %trigger_runs takes no options"),
    ],
)
def test_a_misspelt_option_suggests_the_closest_one(
    ip: Any, capsys: pytest.CaptureFixture[str], magic: str, expected: str
) -> None:
    body = "\nio.run_task('side-effect', lambda: calls.append(1))" if magic.startswith("%%") else ""
    result = run(ip, magic + body)
    assert isinstance(result.error_in_exec, UsageError)
    name = magic.split()[0]
    assert capsys.readouterr().err == f"UsageError: {name}: {expected}\n"
    assert ip.user_ns["calls"] == [] and trigger_nb.list_runs() == []


EXPRESSION_HINT = (
    "{flag} is a Python expression evaluated in the notebook's namespace: JSON-looking literals "
    'work ({{"id": 1}}), bare names are variables (quote text: {quoted})'
)


@pytest.mark.parametrize(
    ("line", "flag", "problem", "quoted"),
    [
        ("j --payload user1", "--payload", "NameError: name 'user1' is not defined", "'user1'"),
        ("j --payload new user", "--payload", "SyntaxError: invalid syntax", "'new user'"),
        ("j --schema NewUsr", "--schema", "NameError: name 'NewUsr' is not defined", "'NewUsr'"),
        (
            "j --integrations {'mail': mailer}",
            "--integrations",
            "NameError: name 'mailer' is not defined",
            "'mailer'",
        ),
    ],
)
def test_an_expression_that_fails_says_how_the_flag_is_read(
    ip: Any, capsys: pytest.CaptureFixture[str], line: str, flag: str, problem: str, quoted: str
) -> None:
    result = run(ip, f"%%trigger_job {line}\nio.run_task('side-effect', lambda: calls.append(1))")
    assert isinstance(result.error_in_exec, UsageError)
    shown = capsys.readouterr().err
    source = line.split(flag, 1)[1].strip()
    assert shown.startswith(f"UsageError: %%trigger_job {flag} {source}: {problem}")
    assert shown.endswith(". " + EXPRESSION_HINT.format(flag=flag, quoted=quoted) + "\n")
    assert shown.count("\n") == 1
    assert ip.user_ns["calls"] == [] and trigger_nb.list_runs() == []


def test_a_bare_word_payload_names_the_fix(ip: Any) -> None:
    """The message a user who meant the text "user1" gets, word for word."""
    result = run(ip, "%%trigger_job j --payload user1\nio.run_task('x', lambda: 1)")
    assert str(result.error_in_exec) == (
        "%%trigger_job --payload user1: NameError: name 'user1' is not defined. --payload is a "
        "Python expression evaluated in the notebook's namespace: JSON-looking literals work "
        "({\"id\": 1}), bare names are variables (quote text: 'user1')"
    )


def test_a_syntax_error_in_the_body_shows_the_cell_line(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(ip, "%%trigger_job syntax --quiet\nx = 1\ny = (")
    assert isinstance(result.error_in_exec, UsageError)
    shown = capsys.readouterr().err
    assert "line 3" in shown and "y = (" in shown and "trigger_nb/" not in shown


def test_trigger_runs_lists_the_runs(ip: Any) -> None:
    ok(ip, COUNTING.format(flags=""))
    ok(ip, "%%trigger_job other --quiet\n1")
    explorer = ok(ip, "%trigger_runs counter")
    data, _ = ip.display_formatter.format(explorer)
    run_id = trigger_nb.list_runs("counter")[0].id
    for shown in (data["text/plain"], data["text/html"]):
        assert "counter" in shown and "SUCCESS" in shown and run_id[:12] in shown
        assert "other" not in shown
    assert isinstance(run(ip, "%trigger_runs a b").error_in_exec, UsageError)


def test_trigger_cache_info_and_clear(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ok(ip, COUNTING.format(flags=""))
    run_id = trigger_nb.list_runs("counter")[0].id
    ok(ip, "%trigger_cache info counter")
    out = capsys.readouterr().out
    assert "1 run(s), 2 task(s)" in out and run_id in out
    ok(ip, f"%trigger_cache clear counter --run {run_id[:10]}")
    assert "cleared 1 run(s)" in capsys.readouterr().out
    assert trigger_nb.list_runs("counter") == []
    ok(ip, COUNTING.format(flags=""))
    assert len(ip.user_ns["calls"]) == 4  # cleared: the tasks ran again


def test_trigger_cache_info_names_the_store_in_use(
    ip: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ok(ip, "%trigger_cache info counter")
    assert "store: diskcache store at " in capsys.readouterr().out
    monkeypatch.setenv("TRIGGER_NB_STORE", pg_url)  # the default store of a new kernel
    monkeypatch.setattr(trigger_nb._client.client, "_default", None)
    ok(ip, COUNTING.format(flags=""))
    ok(ip, "%trigger_cache info counter")
    out = capsys.readouterr().out
    assert f"store: PostgreSQL store {pg_url}\n" in out and "1 run(s), 2 task(s)" in out
    trigger_nb.default_client().store.close()


@pytest.mark.parametrize(
    "line", ["", "info", "purge counter", "info a b", "clear counter --run", "info x --run nope"]
)
def test_trigger_cache_bad_arguments(ip: Any, line: str) -> None:
    result = run(ip, f"%trigger_cache {line}")
    assert isinstance(result.error_in_exec, UsageError)
    assert "%trigger_cache" in str(result.error_in_exec)


def test_split_words_keeps_expressions_whole() -> None:
    line = 'job --payload {"a b": [1, (2, 3)], "c": "x y"} --name "My job"'
    assert split_words(line) == [
        "job",
        "--payload",
        '{"a b": [1, (2, 3)], "c": "x y"}',
        "--name",
        '"My job"',
    ]
    args = parse_job_line(line + " --refresh --version=1.2")
    assert (args.job_id, args.name, args.version, args.refresh) == ("job", "My job", "1.2", True)
    assert args.payload == '{"a b": [1, (2, 3)], "c": "x y"}'
    assert parse_job_line("job --payload 1 + 2").payload == "1 + 2"
    with pytest.raises(MagicArgumentError, match=r"--quiet is a switch"):
        parse_job_line("job --quiet=yes")


@pytest.mark.parametrize("policy", ["warn", "rerun", "ignore", "error", "'rerun'", '"error"'])
def test_on_code_change_and_refresh_stale_are_parsed(policy: str) -> None:
    args = parse_job_line(f"job --quiet --on-code-change {policy} --refresh-stale")
    assert args.on_code_change == policy.strip("'\"") and args.refresh_stale
    assert parse_job_line(f"job --on-code-change={policy}").on_code_change == policy.strip("'\"")
    plain = parse_job_line("job --quiet")
    assert plain.on_code_change is None and plain.refresh_stale is False


def test_a_bad_policy_is_one_line_listing_the_four() -> None:
    with pytest.raises(MagicArgumentError) as caught:
        parse_job_line("job --on-code-change always")
    assert str(caught.value) == (
        "%%trigger_job: --on-code-change 'always' is not a policy; "
        "use one of warn, rerun, ignore, error"
    )
    with pytest.raises(MagicArgumentError, match=r"'rerun ' is not a policy \(did you mean rerun"):
        parse_job_line("job --on-code-change 'rerun '")


def test_the_help_and_the_usage_name_the_code_change_flags(ip: Any) -> None:
    from trigger_nb._jupyter.args import JOB_USAGE
    from trigger_nb._jupyter.magics import TriggerMagics

    assert "[--on-code-change POLICY] [--refresh-stale]" in JOB_USAGE
    doc = TriggerMagics.trigger_job.__doc__ or ""
    for text in ("--on-code-change POLICY", "--refresh-stale", "warn", "rerun", "ignore", "error"):
        assert text in doc
    help_text = ip.find_cell_magic("trigger_job").__doc__ or ""  # what %%trigger_job? shows
    assert "--on-code-change" in help_text and "--refresh-stale" in help_text
    result = run(ip, "%%trigger_job\nio.run_task('x', lambda: 1)")
    assert "[--on-code-change POLICY] [--refresh-stale]" in str(result.error_in_exec)


def test_event_with_payload_runs_at_once_and_records_the_event(ip: Any) -> None:
    cell = "%%trigger_job on-order --quiet --event order.paid --payload {'order': 7}\n"
    cell += (
        "shipped = io.run_task('ship', lambda: calls.append(payload['order']) or 'shipped')\n"
        "(ctx.event.name, shipped)"
    )
    assert ok(ip, cell) == ("order.paid", "shipped")
    (run_,) = trigger_nb.send_event("order.paid", {"order": 7})  # the same run: replayed
    assert run_.output == ("order.paid", "shipped") and ip.user_ns["calls"] == [7]


def run_with_a_running_loop(
    run_loop: Callable[..., Any], ip: Any, cell: str, seconds: float
) -> Any:
    """Execute ``cell`` as ipykernel does (inside a running asyncio loop), then keep the loop
    running for ``seconds`` so timers the cell set can fire."""

    async def scenario() -> Any:
        result = await ip.run_cell_async(cell, transformed_cell=ip.transform_cell(cell))
        await asyncio.sleep(seconds)
        return result

    return run_loop(scenario())


def test_waiting_run_resumes_by_itself_while_the_loop_runs(
    run_loop: Callable[..., Any], ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = """%%trigger_job napper --quiet
io.run_task("before", lambda: calls.append("before"))
io.wait("nap", 0.2)
io.run_task("after", lambda: calls.append("after"))
print("printed after the wait")
"woke up"
"""
    result = run_with_a_running_loop(run_loop, ip, cell, 0.8)
    assert result.error_in_exec is None and result.result is None  # the cell ended at the wait
    assert ip.user_ns["calls"] == ["before", "after"]
    out = capsys.readouterr().out
    assert "waits until" in out and "it resumes by itself" in out
    assert "printed after the wait\n'woke up'" in out  # the outcome, shown where the run began
    assert trigger_nb.list_runs("napper")[0].status == "SUCCESS"


def test_a_resumed_run_that_fails_shows_the_error(
    run_loop: Callable[..., Any], ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = '%%trigger_job napper-fails\nio.wait("nap", 0.1)\nio.run_task("explode", lambda: 1 / 0)'
    run_with_a_running_loop(run_loop, ip, cell, 0.6)
    captured = capsys.readouterr()
    run_id = trigger_nb.list_runs("napper-fails")[0].id
    headline = (
        f"\u2717 run {run_id} failed after resuming by itself: TaskError: task 'explode' failed "
        "after 1 attempt: ZeroDivisionError: division by zero"
    )
    # The cell's banner: what failed, the user's traceback, and how to go on.
    banner = captured.out[captured.out.index(headline) :]
    assert 'io.run_task("explode", lambda: 1 / 0)' in banner and "trigger_nb/" not in banner
    assert "Fix the code, then re-run this cell" in banner
    # And at once on stderr, wherever the user is.
    assert captured.err.startswith(headline + "\n")
    assert "%%trigger_job napper-fails cell" in captured.err
    assert trigger_nb.list_runs("napper-fails")[0].status == "FAILURE"


def test_a_resume_executes_the_runs_stored_payload_not_the_notebooks_variable(
    run_loop: Callable[..., Any], ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ok(
        ip,
        "from pydantic import BaseModel\nclass Order(BaseModel):\n    qty: int\norder = {'qty': 1}",
    )
    cell = "%%trigger_job shop --quiet --schema Order --payload order\n"
    cell += 'io.wait("nap", 0.2)\nio.run_task("ship", lambda: calls.append(payload.qty))'

    async def scenario() -> None:
        await ip.run_cell_async(cell, transformed_cell=ip.transform_cell(cell))
        ip.user_ns["order"]["qty"] = "many"  # changed after the cell: not the run's payload
        await asyncio.sleep(0.8)

    run_loop(scenario())
    (run_,) = trigger_nb.list_runs("shop")
    assert run_.status == "SUCCESS" and ip.user_ns["calls"] == [1]
    assert "could not resume" not in capsys.readouterr().out


def test_a_resume_that_cannot_run_says_so_in_its_cell_and_on_stderr(
    run_loop: Callable[..., Any], ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = '%%trigger_job vanishing --quiet\nio.wait("nap", 0.2)\nio.run_task("t", lambda: 1)'
    gone: list[str] = []

    async def scenario() -> None:
        await ip.run_cell_async(cell, transformed_cell=ip.transform_cell(cell))
        (run_,) = trigger_nb.list_runs("vanishing")
        trigger_nb.default_client().store.remove_run(run_.id)  # deleted while it waits
        gone.append(run_.id)
        await asyncio.sleep(0.8)

    run_loop(scenario())
    captured = capsys.readouterr()
    headline = f"\u2717 run {gone[0]} could not resume by itself: NotFoundError: "
    assert headline in captured.out and "no longer exists (cleared?)" in captured.out
    assert "re-run this cell to resume the run" in captured.out
    assert captured.err.startswith(headline) and "re-run that cell" in captured.err
    assert trigger_nb.list_runs("vanishing") == []


def test_re_executing_a_waiting_cell_replaces_its_timer(
    run_loop: Callable[..., Any], ip: Any
) -> None:
    cell = '%%trigger_job twice --quiet\nio.wait("nap", 0.3)\n'
    cell += 'io.run_task("after", lambda: calls.append(1))'

    async def scenario() -> None:
        for _ in range(2):
            await ip.run_cell_async(cell, transformed_cell=ip.transform_cell(cell))
        deadline = time.monotonic() + 15  # the timer fires 0.3 s later; a loaded machine lags
        while time.monotonic() < deadline and not ip.user_ns.get("calls"):
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # a second (replaced) timer would have fired by now too

    run_loop(scenario())
    assert ip.user_ns["calls"] == [1]
    assert trigger_nb.list_runs("twice")[0].executions == 3  # two by the cell, one by the timer


def test_a_resume_falling_due_during_another_run_waits_for_it(
    run_loop: Callable[..., Any], ip: Any
) -> None:
    napper = '%%trigger_job nap-a --quiet\nio.wait("nap", 0.2)\n'
    napper += 'io.run_task("a", lambda: calls.append("A"))'
    slow = (
        "%%trigger_job slow-b --quiet\nimport asyncio\nawait asyncio.sleep(1.0)\ncalls.append('B')"
    )

    async def scenario() -> None:
        await ip.run_cell_async(napper, transformed_cell=ip.transform_cell(napper))
        # B's body awaits inside nest-asyncio's nested loop, where A's timer falls due.
        await ip.run_cell_async(slow, transformed_cell=ip.transform_cell(slow))
        assert ip.user_ns["calls"] == ["B"]
        await asyncio.sleep(1.0)  # BUSY_RETRY_SECONDS after B: A resumes

    run_loop(scenario())
    assert ip.user_ns["calls"] == ["B", "A"]


def test_a_run_id_of_another_job_is_a_one_line_error_and_new_run_replaces_it(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ok(ip, "%%trigger_job nightly-a --run-id nightly --quiet\nio.run_task('a', lambda: 'a')")
    capsys.readouterr()

    cell = "%%trigger_job nightly-b --run-id nightly --quiet\nio.run_task('b', lambda: 1)"
    result = run(ip, cell)

    assert isinstance(result.error_in_exec, UsageError)
    shown = capsys.readouterr().err
    assert shown.startswith("UsageError: %%trigger_job --run-id: run id 'nightly' already belongs")
    assert shown.count("\n") == 1 and "new_run=True" in shown
    fresh = ok(ip, cell.replace("--quiet", "--new-run --quiet").replace("1)", "2)"))
    assert fresh == 2
    assert trigger_nb.load_run("nightly").job_id == "nightly-b"


# --- when the code changes: --on-code-change and --refresh-stale ------------------------------

# Side effects are counted in a file: a list the task appended to would itself be data the task
# reads, and so change its fingerprint.
EFFECT = """from pathlib import Path
def effect(name):
    with Path("effects.log").open("a") as file:
        file.write(name + "\\n")
    return name
def effects():
    return Path("effects.log").read_text().split() if Path("effects.log").exists() else []
"""
STALE_CELL = """%%trigger_job edited --quiet{flags}
check = io.run_task("check", lambda: effect("check") + str(threshold){task_option})
after = io.run_task("after", lambda: effect("after"))
[check, after]
"""


def stale_cell(flags: str = "", task_option: str = "") -> str:
    return STALE_CELL.format(flags=flags, task_option=task_option)


@pytest.fixture
def edited(ip: Any) -> Any:
    """A job cell run once with threshold 1, then the threshold changed to 2: task "check"
    reads it, so its stored result is stale; task "after" does not."""
    ok(ip, EFFECT + "threshold = 1")
    assert ok(ip, stale_cell()) == ["check1", "after"]
    ok(ip, "threshold = 2")
    return ip


def last_execution(job: str = "edited") -> Any:
    (run_,) = trigger_nb.list_runs(job)
    return run_, run_.execution_history[-1]


def test_a_stale_task_is_replayed_and_named_in_one_line_by_default(
    edited: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert ok(edited, stale_cell()) == ["check1", "after"]  # the stored result
    assert ok(edited, "effects()") == ["check", "after"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "global 'threshold' changed" in err, err
    assert "--refresh-stale" in err  # how to refresh, in the words of the magic
    run_, execution = last_execution()
    assert execution.stale == {run_.task("check").id: ["global 'threshold' changed"]}


def test_on_code_change_error_fails_the_cell_and_runs_nothing(
    edited: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(edited, stale_cell(" --on-code-change error"))
    error = result.error_in_exec
    assert isinstance(error, trigger_nb.StaleTaskError), error
    assert error.cache_key == "check" and error.reasons == ["global 'threshold' changed"]
    assert "'check'" in str(error) and "global 'threshold' changed" in str(error)
    shown = capsys.readouterr()
    assert "trigger_nb/" not in shown.out + shown.err  # the user's frames only
    assert ok(edited, "effects()") == ["check", "after"]
    run_, execution = last_execution()
    assert run_.status == "FAILURE" and execution.executed == 0


def test_on_code_change_rerun_runs_only_the_stale_task_again(edited: Any) -> None:
    assert ok(edited, stale_cell(" --on-code-change rerun")) == ["check2", "after"]
    assert ok(edited, "effects()") == ["check", "after", "check"]
    _, execution = last_execution()
    assert execution.executed == 1 and execution.replayed == 1
    # Run again without the flag: the job is the client's again (warn), and nothing is stale.
    assert ok(edited, stale_cell()) == ["check2", "after"]
    _, execution = last_execution()
    assert execution.stale == {} and execution.executed == 0


def test_on_code_change_ignore_replays_silently(
    edited: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert ok(edited, stale_cell(" --on-code-change ignore")) == ["check1", "after"]
    assert capsys.readouterr().err == ""
    _, execution = last_execution()
    assert execution.stale == {} and execution.executed == 0
    assert ok(edited, "effects()") == ["check", "after"]


def test_refresh_stale_reruns_the_stale_tasks_for_one_execution(
    edited: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ok(edited, stale_cell(" --refresh-stale")) == ["check2", "after"]
    assert ok(edited, "effects()") == ["check", "after", "check"]
    _, execution = last_execution()
    assert execution.executed == 1 and execution.stale == {}
    capsys.readouterr()
    assert ok(edited, stale_cell()) == ["check2", "after"]  # refreshed: nothing stale now
    assert capsys.readouterr().err == ""
    assert ok(edited, "effects()") == ["check", "after", "check"]


def test_refresh_stale_with_the_error_policy_refreshes_instead_of_failing(edited: Any) -> None:
    assert ok(edited, stale_cell(" --on-code-change error --refresh-stale")) == ["check2", "after"]
    assert ok(edited, "effects()") == ["check", "after", "check"]


def test_a_tasks_own_policy_beats_the_flag(edited: Any) -> None:
    cell = stale_cell(" --on-code-change error", task_option=', on_code_change="rerun"')
    assert ok(edited, cell) == ["check2", "after"]
    assert ok(edited, "effects()") == ["check", "after", "check"]


def test_the_flag_beats_the_clients_policy(edited: Any) -> None:
    ok(edited, "import trigger_nb\ntrigger_nb.default_client().on_code_change = 'error'")
    assert ok(edited, stale_cell(" --on-code-change ignore")) == ["check1", "after"]
    result = run(edited, stale_cell())  # without the flag: the client's "error"
    assert isinstance(result.error_in_exec, trigger_nb.StaleTaskError)


# --- how a run displays -----------------------------------------------------------------------

RUN_TYPE = "trigger_nb._client.run.JobRun"  # how display.register names the class


@pytest.fixture
def kernel_shell(ip: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The shell as inside ipykernel (a front end can show widgets), trigger_nb's display
    formatter taken off again: as if ``%load_ext`` had not run yet."""
    import ipykernel  # noqa: F401  (its presence is part of what tells a kernel)

    monkeypatch.setattr(ip, "kernel", object(), raising=False)
    formatter = ip.display_formatter.ipython_display_formatter
    # registered by name, and by class once a run was shown: both go
    while formatter.pop(RUN_TYPE, None) is not None:
        pass
    publish = ip.display_pub.publish
    yield ip
    ip.display_pub.publish = publish
    register(ip)  # back as the ip fixture's %load_ext left it


def _a_run() -> Any:
    job = trigger_nb.default_client().define_job("shown", name="Shown job")
    job.run(lambda payload, io, ctx: io.run_task("step", lambda: 1, name="first step"))
    return job.trigger()


def test_register_shows_a_run_as_its_page_and_the_interactive_tree_button(
    kernel_shell: Any,
) -> None:
    run_ = _a_run()
    formatter = kernel_shell.display_formatter.ipython_display_formatter
    with pytest.raises(KeyError):
        formatter.lookup(run_)

    register(kernel_shell)

    shown: list[dict[str, Any]] = []
    kernel_shell.display_pub.publish = lambda data, **kwargs: shown.append(data)  # what it sends
    data, _ = kernel_shell.display_formatter.format(run_)
    assert data == {}  # shown as two outputs instead of one result:
    button, page = shown
    assert button[WIDGET_VIEW_MIME]["model_id"]  # the interactive tree, made on demand ...
    assert "first step" in page["text/html"] and "Shown job" in page["text/plain"]  # ... the page
    assert 'class="tnb tnb-run tnb-doc"' in page["text/html"]
    assert formatter.lookup(run_) is show_run


def test_without_the_formatter_a_run_displays_as_static_html_and_text(kernel_shell: Any) -> None:
    run_ = _a_run()
    data, _ = kernel_shell.display_formatter.format(run_)
    assert set(data) == {"text/html", "text/plain"}
    assert data == static_mimebundle(run_data(run_))


def test_without_ipywidgets_a_run_still_displays_as_static_html_and_text(
    kernel_shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(kernel_shell)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # as if it were not installed
    run_ = _a_run()
    shown: list[dict[str, Any]] = []
    kernel_shell.display_pub.publish = lambda data, **kwargs: shown.append(data)
    kernel_shell.display_formatter.format(run_)
    assert shown == [static_mimebundle(run_data(run_))]  # the page only: no button


def test_the_display_module_is_light_to_import() -> None:
    """``import trigger_nb`` in a kernel imports it to register: it loads nothing heavy."""
    code = (
        "import sys, trigger_nb._widgets.display; "
        "print(sorted(m for m in ('IPython', 'ipywidgets', 'pydantic') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
