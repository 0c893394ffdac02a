"""``on_code_change``: what a replay does with a completed task whose code or inputs changed.

Plain Python API on a DiskStore. Side effects are counted in a file (``Effects``): a list the
task appended to would be data the task reads, and so change its own fingerprint. The edit
table (which edits make a task stale, and why) is tests/test_code_change_kernel.py, in a real
kernel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import (
    FakeClock,
    InvalidOptionError,
    JobRun,
    StaleTaskError,
    Store,
    TriggerClient,
)

POLICIES = ("warn", "rerun", "ignore", "error")


class Effects:
    """Side effects, one line per call in a file. The task sees only this object, whose
    content (a path) never changes, so counting does not make the task stale."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, name: str) -> str:
        with self.path.open("a") as file:
            file.write(name + "\n")
        return name

    def count(self, name: str) -> int:
        return self.all().count(name)

    def all(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []


@pytest.fixture
def effect(tmp_path: Path) -> Effects:
    return Effects(tmp_path / "effects.log")


class Edited:
    """A job of three tasks: "a" reads ``a_input`` (a closure value), "b" reads nothing that
    changes, "c" reads ``c_input``; "d", after them all, runs only when ``switches["d"]``.
    ``edit()`` changes what "a" reads (and, with ``also_c``, what "c" reads)."""

    def __init__(
        self,
        client: TriggerClient,
        effect: Effects,
        *,
        job_policy: str | None = None,
        a_policy: str | None = None,
    ) -> None:
        self.effect = effect
        self.a_input, self.c_input = {"v": 1}, {"v": 1}
        self.switches = {"d": False}
        self.seen: list[BaseException] = []
        a_input, c_input, switches, seen = self.a_input, self.c_input, self.switches, self.seen
        a_options = {} if a_policy is None else {"on_code_change": a_policy}

        def run(payload: Any, io: Any, ctx: Any) -> list[Any]:
            try:
                a = io.run_task("a", lambda: effect("a") and a_input["v"], **a_options)
            except StaleTaskError as error:
                seen.append(error)
                raise
            b = io.run_task("b", lambda: effect("b"))
            c = io.run_task("c", lambda: effect("c") and c_input["v"])
            out = [a, b, c]
            if switches["d"]:
                out.append(io.run_task("d", lambda: effect("d")))
            return out

        self.job = client.define_job("edited", on_code_change=job_policy, run=run)

    def edit(self, *, also_c: bool = False) -> None:
        self.a_input["v"] += 1
        if also_c:
            self.c_input["v"] += 1

    def trigger(self, **options: Any) -> JobRun:
        return self.job.trigger(**options)

    def counts(self) -> dict[str, int]:
        return {name: self.effect.count(name) for name in "abcd"}


def stale_keys(run: JobRun) -> dict[str, list[str]]:
    """The last execution's stale tasks, by cache key."""
    keys = {t.id: t.record.cache_key for t in run.all_tasks}
    return {keys[task_id]: reasons for task_id, reasons in run.executions[-1].stale.items()}


READS_A = "closure value 'a_input' changed"
READS_C = "closure value 'c_input' changed"


def test_an_unchanged_task_is_never_stale(client: TriggerClient, effect: Effects) -> None:
    job = Edited(client, effect)
    for _ in range(3):
        run = job.trigger()
        assert run.status == "SUCCESS" and stale_keys(run) == {}
    assert job.counts() == {"a": 1, "b": 1, "c": 1, "d": 0}


# --- the four policies --------------------------------------------------------------------------


def test_warn_replays_records_and_says_so_in_one_line(
    client: TriggerClient, effect: Effects, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Edited(client, effect)  # warn is the default
    job.trigger()
    job.edit()
    capsys.readouterr()
    run = job.trigger()
    assert run.status == "SUCCESS" and run.output == [1, "b", 1]  # the stored results
    assert job.counts() == {"a": 1, "b": 1, "c": 1, "d": 0}  # 0 repeats
    assert stale_keys(run) == {"a": [READS_A]}
    assert run.executions[-1].executed == 0 and run.executions[-1].replayed == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # ONE line per execution
    assert "'a'" in err and READS_A in err and "refresh" in err
    # Still stale on the next execution (its stored fingerprint is unchanged), said again once.
    run = job.trigger()
    assert stale_keys(run) == {"a": [READS_A]} and capsys.readouterr().err == err
    assert job.counts() == {"a": 1, "b": 1, "c": 1, "d": 0}


def test_warn_names_every_stale_task_in_the_one_line(
    client: TriggerClient, effect: Effects, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Edited(client, effect)
    job.trigger()
    job.edit(also_c=True)
    capsys.readouterr()
    run = job.trigger()
    assert stale_keys(run) == {"a": [READS_A], "c": [READS_C]}
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'a'" in err and "'c'" in err, err
    assert READS_C in err and "'b'" not in err


def test_ignore_replays_silently_and_records_nothing(
    client: TriggerClient, effect: Effects, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Edited(client, effect, job_policy="ignore")
    job.trigger()
    job.edit(also_c=True)
    capsys.readouterr()
    run = job.trigger()
    assert run.status == "SUCCESS" and run.output == [1, "b", 1]
    assert job.counts() == {"a": 1, "b": 1, "c": 1, "d": 0}
    assert run.executions[-1].stale == {}
    assert capsys.readouterr().err == ""


def test_rerun_repeats_exactly_the_stale_tasks(
    client: TriggerClient, effect: Effects, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Edited(client, effect, job_policy="rerun")
    job.trigger()
    job.edit(also_c=True)
    run = job.trigger()
    assert run.status == "SUCCESS" and run.output == [2, "b", 2]
    assert job.counts() == {"a": 2, "b": 1, "c": 2, "d": 0}
    assert run.executions[-1].executed == 2 and run.executions[-1].replayed == 1
    assert len(run.task("a").attempts) == 2  # the earlier attempt stays in its history
    # Re-run, the tasks carry the new fingerprint: nothing is stale or repeated any more.
    capsys.readouterr()
    run = job.trigger()
    assert job.counts() == {"a": 2, "b": 1, "c": 2, "d": 0}
    assert run.executions[-1].executed == 0 and capsys.readouterr().err == ""


def test_error_raises_from_that_run_task_and_nothing_after_it_runs(
    client: TriggerClient, effect: Effects
) -> None:
    job = Edited(client, effect, job_policy="error")
    job.trigger()
    job.edit()
    job.switches["d"] = True  # a new task after the stale one: it must not run
    run = job.trigger()
    assert run.status == "FAILURE"
    (error,) = job.seen  # raised by io.run_task("a", ...) itself
    assert isinstance(error, StaleTaskError) and run.exception is not None
    assert isinstance(run.exception, StaleTaskError)
    assert error.cache_key == "a" and error.reasons == [READS_A]
    assert "'a'" in str(error) and READS_A in str(error)
    assert job.counts() == {"a": 1, "b": 1, "c": 1, "d": 0}  # "d" never ran
    assert run.executions[-1].executed == 0


def test_a_stale_task_under_error_is_caught_by_except_stale_task_error(
    client: TriggerClient, effect: Effects
) -> None:
    """A StaleTaskError is an ordinary error: the run function may handle it."""
    settings = {"v": 1}

    def run_fn(payload: Any, io: Any, ctx: Any) -> str:
        try:
            return str(io.run_task("t", lambda: effect("t") and settings["v"]))
        except StaleTaskError as error:
            return f"stale: {error.reasons}"

    job = client.define_job("handled", on_code_change="error", run=run_fn)
    assert job.trigger().output == "1"
    settings["v"] = 2
    run = job.trigger()
    assert run.status == "SUCCESS"
    assert run.output == "stale: [\"closure value 'settings' changed\"]"


# --- which policy: task > job > client ----------------------------------------------------------


def effective_policy(job: Edited) -> str:
    """Run the edited job once more and tell which policy it applied to task "a"."""
    run = job.trigger()
    counts = job.counts()
    if run.status == "FAILURE":
        assert isinstance(run.exception, StaleTaskError) and counts["a"] == 1
        return "error"
    if counts["a"] == 2:
        return "rerun"
    assert counts["a"] == 1
    return "warn" if stale_keys(run) == {"a": [READS_A]} else "ignore"


@pytest.mark.parametrize(
    ("client_policy", "job_policy", "task_policy", "expected"),
    [
        (None, None, None, "warn"),
        ("error", None, None, "error"),
        ("rerun", None, None, "rerun"),
        ("ignore", None, None, "ignore"),
        ("error", "rerun", None, "rerun"),
        ("rerun", "ignore", None, "ignore"),
        ("ignore", "warn", None, "warn"),
        ("error", "rerun", "ignore", "ignore"),
        ("ignore", "error", "rerun", "rerun"),
        ("rerun", "ignore", "error", "error"),
        (None, "ignore", "warn", "warn"),
        ("error", None, "warn", "warn"),
    ],
)
def test_the_most_specific_policy_wins(
    disk_store: Store,
    clock: FakeClock,
    effect: Effects,
    client_policy: str | None,
    job_policy: str | None,
    task_policy: str | None,
    expected: str,
) -> None:
    extra = {} if client_policy is None else {"on_code_change": client_policy}
    client = TriggerClient("tests", store=disk_store, clock=clock, **extra)
    job = Edited(client, effect, job_policy=job_policy, a_policy=task_policy)
    job.trigger()
    job.edit()
    assert effective_policy(job) == expected


def test_a_job_defined_again_without_a_policy_gets_the_clients(
    client: TriggerClient, effect: Effects
) -> None:
    """What a %%trigger_job cell does when --on-code-change is dropped."""
    job = Edited(client, effect, job_policy="rerun")
    job.trigger()
    job.edit()
    again = Edited(client, effect)
    again.a_input.update(job.a_input)
    assert effective_policy(again) == "warn"


# --- refresh_stale ------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["warn", "error", "rerun"])
def test_refresh_stale_reruns_only_the_stale_tasks_once(
    client: TriggerClient, effect: Effects, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Edited(client, effect, job_policy=policy)
    job.trigger()
    job.edit(also_c=True)
    run = job.trigger(refresh_stale=True)
    assert run.status == "SUCCESS", run.error
    assert job.counts() == {"a": 2, "b": 1, "c": 2, "d": 0}
    assert run.executions[-1].executed == 2 and run.executions[-1].stale == {}
    capsys.readouterr()
    run = job.trigger()  # refreshed: nothing stale, nothing repeated
    assert run.status == "SUCCESS" and stale_keys(run) == {}
    assert job.counts() == {"a": 2, "b": 1, "c": 2, "d": 0}
    assert capsys.readouterr().err == ""


def test_refresh_stale_with_nothing_stale_runs_nothing(
    client: TriggerClient, effect: Effects
) -> None:
    job = Edited(client, effect)
    job.trigger()
    run = job.trigger(refresh_stale=True)
    assert run.executions[-1].executed == 0
    assert job.counts() == {"a": 1, "b": 1, "c": 1, "d": 0}


# --- bad policies -------------------------------------------------------------------------------


def test_a_bad_policy_is_refused_everywhere_naming_the_four(
    client: TriggerClient, disk_store: Store, effect: Effects
) -> None:
    def named(call: Callable[[], Any]) -> str:
        with pytest.raises(InvalidOptionError) as caught:
            call()
        text = str(caught.value)
        assert all(p in text for p in POLICIES), text
        return text

    assert "sometimes" in named(
        lambda: TriggerClient("x", store=disk_store, on_code_change="sometimes")
    )
    named(lambda: client.define_job("bad", on_code_change="never"))
    job = client.define_job(
        "bad-task", run=lambda p, io, c: io.run_task("t", lambda: 1, on_code_change="loud")
    )
    run = job.trigger()
    assert run.status == "FAILURE" and isinstance(run.exception, InvalidOptionError)
    assert "loud" in str(run.exception)


# --- a fresh process --------------------------------------------------------------------------

SCRIPT = """
import sys
from trigger_nb import TriggerClient

RATES = {"eur": 1.1, "usd": 1.0, "gbp": 0.8}
TAGS = {"alpha", "beta", "gamma", "delta"}
FROZEN = frozenset({("a", 1), ("b", 2)})

def convert(amount, currency):
    return round(amount * RATES[currency], 2)

client = TriggerClient("fresh", store=sys.argv[1])
job = client.define_job("fresh")

@job.run
def run(payload, io, ctx):
    io.run_task("convert", lambda: convert(10, "eur"))
    io.run_task("tags", lambda: sorted(TAGS) + sorted(FROZEN))
    return io.run_task("keys", lambda: list(RATES))

run = job.trigger()
print(run.status.value, run.executions[-1].executed, dict(run.executions[-1].stale))
"""


def test_a_fresh_process_with_another_hash_seed_sees_nothing_stale(tmp_path: Path) -> None:
    """Sets and dicts of strings iterate in another order under another hash seed: the
    fingerprint must not depend on it."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(SCRIPT))
    store = tmp_path / "fresh-store"
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, str(script), str(store)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr  # no stale line
        outputs.append(done.stdout.strip())
    assert outputs == ["SUCCESS 3 {}", "SUCCESS 0 {}"]


def test_the_replay_key_equals_the_digest_of_the_parts() -> None:
    """``key_of`` (the replay's quick check) mirrors ``of_task`` value for value: if they ever
    disagreed, every replay would take the slow path, or worse, miss a change."""
    import functools

    from trigger_nb._engine.fingerprint import Fingerprinter, digest_of

    threshold, names = 3, ["a", "b"]

    class Pricer:
        def price(self, qty: int) -> int:
            return qty * threshold

    def helper(value: int) -> int:
        return value + threshold

    def decorated(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            return fn(*args)

        return wrapper

    functions: list[Any] = [
        lambda: 1,
        lambda i=4: i,
        lambda *, factor=2.5: factor,
        lambda: threshold + len(names),
        lambda: helper(threshold),
        lambda: Pricer().price(2),
        functools.partial(helper, 3),
        decorated(helper),
        print,
        Fingerprinter,
        lambda s="x" * 500: s,
        lambda: 'quote"d',
    ]
    for fn in functions:
        parts = Fingerprinter().of_task(fn)
        assert not any("|" in value for value in parts.values()), parts  # the key's separator
        assert Fingerprinter().key_of(fn) == digest_of(parts), fn
        names, key, _ = Fingerprinter().record_of(fn)
        assert (names, key) == ("|".join(parts), digest_of(parts)), fn


class _Shifty:
    """A value fingerprinting trips over: asking its class raises."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no class for you")


def test_a_value_that_breaks_fingerprinting_never_fails_its_task(client: TriggerClient) -> None:
    shifty, calls = _Shifty(), []
    job = client.define_job("shifty")
    job.run(lambda payload, io, ctx: io.run_task("t", lambda: calls.append(shifty) or 1))
    assert job.trigger().output == 1
    again = job.trigger()
    assert again.output == 1 and len(calls) == 1, "replayed, not run again"
