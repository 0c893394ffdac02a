"""What a task prints is kept with its attempt and printed again when it is replayed (plain
Python: stdout and stderr; rich displays are tested in a real kernel, test_capture_kernel.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import InvalidOptionError, RetryOptions, TriggerClient
from trigger_nb._cli.main import main as cli
from trigger_nb._engine.capture import TEXT_LIMIT

NO_RETRY_WAIT = RetryOptions(limit=3, min_timeout=0.0, max_timeout=0.0, randomize=False)


def test_prints_are_shown_live_kept_and_printed_again_on_replay(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []
    job = client.define_job("report")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> int:
        print("cell: before")

        def report() -> int:
            calls.append("report")
            print("total: 42")
            print("careful", file=sys.stderr)
            return 42

        value = io.run_task("report", report)
        print("cell: after")
        return int(value)

    first = job.trigger()
    live = capsys.readouterr()
    assert live.out == "cell: before\ntotal: 42\ncell: after\n"
    assert live.err == "careful\n"
    task = first.task("report")
    assert (task.stdout, task.stderr, task.displays) == ("total: 42\n", "careful\n", [])

    again = job.trigger()
    replayed = capsys.readouterr()
    assert calls == ["report"]  # replayed, not run
    assert replayed.out == live.out  # the same text, in the same place
    assert replayed.err == live.err
    assert again.task("report").stdout == "total: 42\n"


def test_a_task_that_prints_nothing_stores_nothing(client: TriggerClient) -> None:
    job = client.define_job("quiet")
    job.run(lambda payload, io, ctx: io.run_task("t", lambda: 1))
    run = job.trigger()
    assert run.task("t").stdout == "" and not run.task("t").attempts[0].captured
    assert client.store.load_captures(run.id) == {}


def test_a_parent_keeps_its_subtasks_output_and_replays_it_whole(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []
    job = client.define_job("nested")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        def parent() -> None:
            print("parent: start")
            io.run_task("child", lambda: calls.append("child") or print("child: hi"))
            print("parent: end")

        io.run_task("parent", parent)

    first = job.trigger()
    shown = capsys.readouterr().out
    assert shown == "parent: start\nchild: hi\nparent: end\n"
    assert first.task("parent").stdout == shown
    assert first.task("child").stdout == "child: hi\n"
    job.trigger()
    assert capsys.readouterr().out == shown
    assert calls == ["child"]


def test_parallel_children_capture_only_their_own_lines_and_replay_in_item_order(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    items = list(range(4))
    barrier = threading.Barrier(len(items), timeout=10)
    job = client.define_job("fan-out")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def child(n: int) -> int:
            print(f"{n}: first")
            barrier.wait()  # every child has printed its first line before any prints again
            print(f"{n}: second")
            return n

        return list(io.parallel("children", items, child, max_workers=len(items)))

    first = job.trigger()
    live = capsys.readouterr().out.splitlines()
    assert sorted(live[: len(items)]) == [f"{n}: first" for n in items]  # interleaved live
    parent = first.task("children")
    for n, view in enumerate(parent.children):
        assert view.stdout == f"{n}: first\n{n}: second\n"
    in_order = "".join(f"{n}: first\n{n}: second\n" for n in items)
    assert parent.stdout == in_order  # the parent's output: its children in item order

    job.trigger()  # the parent replayed whole
    assert capsys.readouterr().out == in_order


def test_children_replayed_one_by_one_print_in_item_order(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = {"on": True}
    job = client.define_job("fan-out-retry")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def child(n: int) -> int:
            print(f"item {n}")
            if n == 2 and failing["on"]:
                raise RuntimeError("not yet")
            return n

        return list(io.parallel("children", range(4), child))

    assert job.trigger().status == "FAILURE"
    capsys.readouterr()
    failing["on"] = False
    assert job.trigger().status == "SUCCESS"  # 0, 1, 3 replayed; 2 runs again
    assert capsys.readouterr().out == "item 0\nitem 1\nitem 2\nitem 3\n"


def test_a_slow_child_run_again_prints_before_later_children_replayed(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """A replayed child's output waits for every earlier child to finish (``ItemOrder``),
    without holding the others back: the later children replay meanwhile."""
    failing = {"on": True}
    job = client.define_job("slow-first")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def child(n: int) -> int:
            if n == 0:
                if failing["on"]:
                    raise RuntimeError("not yet")
                time.sleep(0.3)  # the replays of 1 to 5 are done long before
            print(f"item {n}")
            return n

        return list(io.parallel("children", range(6), child))

    assert job.trigger().status == "FAILURE"
    capsys.readouterr()
    failing["on"] = False
    assert job.trigger().status == "SUCCESS"
    assert capsys.readouterr().out == "".join(f"item {n}\n" for n in range(6))


def test_gathered_arun_tasks_each_capture_their_own_lines(client: TriggerClient) -> None:
    job = client.define_job("gather")

    @job.run
    async def run(payload: Any, io: Any, ctx: Any) -> list[str]:
        async def step(name: str) -> str:
            print(f"{name} 1")
            await asyncio.sleep(0.01)  # the others print in between
            print(f"{name} 2")
            return name

        return list(await asyncio.gather(*(io.arun_task(n, lambda n=n: step(n)) for n in "abc")))

    result = job.trigger()
    assert result.output == ["a", "b", "c"]
    assert [result.task(n).stdout for n in "abc"] == [f"{n} 1\n{n} 2\n" for n in "abc"]


def test_capture_output_false_shows_live_but_keeps_and_replays_nothing(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    job = client.define_job("uncaptured")
    job.run(
        lambda payload, io, ctx: io.run_task("t", lambda: print("secret"), capture_output=False)
    )
    run = job.trigger()
    assert capsys.readouterr().out == "secret\n"
    assert run.task("t").stdout == ""
    job.trigger()
    assert capsys.readouterr().out == ""


def test_capture_output_must_be_a_bool(client: TriggerClient) -> None:
    job = client.define_job("bad-option")
    job.run(lambda payload, io, ctx: io.run_task("t", lambda: 1, capture_output="yes"))
    run = job.trigger()
    assert run.status == "FAILURE" and run.error.type.endswith(InvalidOptionError.__name__)
    assert "capture_output='yes' is invalid" in run.error.message


def test_replay_output_false_keeps_but_does_not_print_again(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    job = client.define_job("no-replay")
    job.run(lambda payload, io, ctx: io.run_task("t", lambda: print("once")))
    job.trigger()
    assert capsys.readouterr().out == "once\n"
    run = job.trigger(replay_output=False)
    assert capsys.readouterr().out == ""
    assert run.task("t").stdout == "once\n"


def test_a_failed_attempts_output_is_kept_with_that_attempt(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    job = client.define_job("flaky")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> str:
        def flaky(task: Any) -> str:
            print(f"attempt {task.attempt}: connecting")
            if task.attempt < 3:
                raise ConnectionError("refused")
            return "ok"

        return str(io.run_task("flaky", flaky, retry=NO_RETRY_WAIT))

    result = job.trigger()
    assert result.output == "ok"
    task = result.task("flaky")
    assert task.stdout == "attempt 3: connecting\n"  # the last attempt's
    assert [a.captured for a in task.attempts] == [True, True, True]
    assert task.captured_output(1) == [("stdout", "attempt 1: connecting\n")]
    html = result._repr_mimebundle_()["text/html"]
    assert "Printed and displayed by attempt #1" in html and "attempt 1: connecting" in html
    capsys.readouterr()
    job.trigger()
    assert capsys.readouterr().out == "attempt 3: connecting\n"  # only the one that completed


def test_a_crashing_tasks_output_is_kept(client: TriggerClient) -> None:
    job = client.define_job("crash")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        def crash() -> None:
            print("loaded 3 rows")
            raise ValueError("row 4 is bad")

        io.run_task("crash", crash)

    result = job.trigger()
    assert result.status == "FAILURE"
    assert result.task("crash").stdout == "loaded 3 rows\n"


def test_a_task_printing_50_mb_is_truncated_with_a_marker_and_completes(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    line = "x" * 999 + "\n"
    job = client.define_job("chatty")
    job.run(
        lambda payload, io, ctx: io.run_task(
            "t", lambda: [print(line, end="") for _ in range(50_000)] and 7
        )
    )
    run = job.trigger()
    assert capsys.readouterr().out.count("\n") == 50_000  # all of it shown live
    assert run.status == "SUCCESS" and run.task("t").output == 7
    stored = run.task("t").stdout
    assert stored.startswith(line * 10)
    assert "output truncated here" in stored
    assert TEXT_LIMIT <= len(stored) <= TEXT_LIMIT + 300


def test_the_static_html_and_text_views_show_the_output(client: TriggerClient) -> None:
    job = client.define_job("views")
    job.run(lambda payload, io, ctx: io.run_task("t", lambda: print("<b>not bold</b>")))
    run = job.trigger()
    html = run._repr_mimebundle_()["text/html"]
    assert "Printed and displayed" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>not bold</b>" not in html


def test_cli_show_task_stdout(
    client: TriggerClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    job = client.define_job("cli")
    job.run(
        lambda payload, io, ctx: io.run_task(
            "report", lambda: print("line 1\nline 2") or print("oops", file=sys.stderr)
        )
    )
    run = job.trigger()
    capsys.readouterr()
    store = str(tmp_path / "store")
    assert cli(["--dir", store, "show", run.id, "--task", "report", "--stdout"]) == 0
    assert capsys.readouterr().out == "line 1\nline 2\n"
    assert cli(["--dir", store, "show", run.id, "--task", "report", "--stderr"]) == 0
    assert capsys.readouterr().err == "oops\n"
    assert cli(["--dir", store, "show", run.id, "--stdout"]) == 2
    assert "add --task KEY" in capsys.readouterr().err


def test_a_damaged_capture_is_reported_and_the_value_still_replays(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    job = client.define_job("damaged")
    job.run(lambda payload, io, ctx: io.run_task("t", lambda: print("hello") or 5))
    run = job.trigger()
    (key,) = client.store.load_captures(run.id)
    client.store.backend.write([(f"c:{run.id}:{key}", b"garbage bytes")])
    capsys.readouterr()
    again = job.trigger()
    assert again.output == 5 and again.status == "SUCCESS"
    assert "cannot be shown again" in capsys.readouterr().err


def test_the_streams_are_given_back_after_the_run(client: TriggerClient) -> None:
    before = (sys.stdout, sys.stderr)
    job = client.define_job("streams")
    job.run(lambda payload, io, ctx: io.run_task("t", lambda: print("x")))
    job.trigger()
    assert (sys.stdout, sys.stderr) == before


def test_plain_python_replay_prints_again_in_a_fresh_process(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from trigger_nb import TriggerClient
            client = TriggerClient("script", store="store")
            job = client.define_job("report")

            @job.run
            def run(payload, io, ctx):
                print("start")
                io.run_task("a", lambda: print("a says hi") or open("effects", "a").write("a"))
                io.run_task("b", lambda: print("b warns", file=sys.stderr))
                print("end")

            job.trigger()
            """
        )
    )

    def execute() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, check=True
        )

    first, second = execute(), execute()
    assert first.stdout == second.stdout == "start\na says hi\nend\n"
    assert first.stderr == second.stderr == "b warns\n"
    assert (tmp_path / "effects").read_text() == "a"  # once


def test_displays_past_the_limit_are_cut_with_one_marker() -> None:
    from trigger_nb._engine.capture import RICH_LIMIT, Capture

    capture = Capture()
    big = {"image/png": b"\x89PNG" + b"x" * (RICH_LIMIT // 3)}  # base64 makes it 4/3 bigger
    for _ in range(4):
        capture.display(big, {"odd": object()})  # metadata that is not JSON is kept as text
    kinds = [kind for kind, _ in capture.events()]
    assert kinds == ["display", "display", "stderr"]
    assert "display output truncated here" in capture.events()[-1][1]
    assert capture.dropped > 0


def test_a_widget_displayed_in_a_task_is_not_kept() -> None:
    from trigger_nb._engine.capture import Capture

    capture = Capture()
    capture.display({"application/vnd.jupyter.widget-view+json": {"model_id": "x"}}, None)
    assert capture.events() == []
