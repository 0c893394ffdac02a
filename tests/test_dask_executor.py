"""io.parallel's children on a real Dask cluster (LocalCluster on loopback, worker processes).

What a user notices: results in item order, each side effect once, a re-execution that ships
nothing, retries, a worker SIGKILLed mid-run (its children's attempts fail with WorkerLostError
and run again under the same idempotency key, nothing else repeats), interrupts and
``run.cancel()`` that cancel what is queued on the cluster, ``io`` misuse on a worker, what
children print (kept per attempt on the worker, printed once here, replayed in item order).

Submissions are counted on the scheduler itself (it runs in this process with LocalCluster): a
plugin sees every task of ours start ("processing") — resubmissions by Dask included.
"""

from __future__ import annotations

import _thread
import collections
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

from trigger_nb import (
    DaskExecutor,
    InvalidOptionError,
    RetryOptions,
    RunStatus,
    TaskError,
    TriggerClient,
    WorkerLostError,
)

pytestmark = pytest.mark.slow

THREADS_PER_WORKER = 2


class Starts(SchedulerPlugin):
    """Counts, on the scheduler, every time a task of trigger_nb's is sent to run."""

    def __init__(self) -> None:
        self.keys: collections.Counter[str] = collections.Counter()

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "processing" and isinstance(key, str) and key.startswith("trigger_nb-"):
            self.keys[key] += 1

    def total(self) -> int:
        return sum(self.keys.values())


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2,
        threads_per_worker=THREADS_PER_WORKER,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as started:
        yield started


@pytest.fixture(scope="module")
def dask_client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster, set_as_default=False) as connected:
        yield connected


@pytest.fixture
def starts(cluster: LocalCluster) -> Iterator[Starts]:
    plugin = Starts()
    cluster.scheduler.add_plugin(plugin, name="test-starts")
    yield plugin
    cluster.scheduler.remove_plugin(name="test-starts")


@pytest.fixture
def dask(dask_client: Client) -> DaskExecutor:
    dask_client.wait_for_workers(2, timeout=60)  # a worker killed by the test before: restarted
    return DaskExecutor(dask_client)


def lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()]


def test_hundred_children_in_item_order_each_side_effect_once_then_replayed_unshipped(
    client: TriggerClient, dask: DaskExecutor, starts: Starts, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.txt"
    job = client.define_job(id="dask-fan-out", executor=dask)

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def square(n: int, task: Any) -> int:
            with open(effects, "a") as f:  # a side effect on the worker, seen by the test
                f.write(f"{n} {task.idempotency_key} {os.getpid()}\n")
            task.logger.info("squared", n=n)
            return n * n

        return list(io.parallel("squares", range(100), square))

    first = job.trigger()
    assert first.status is RunStatus.SUCCESS, first.error
    assert first.output == [n * n for n in range(100)]
    written = lines(effects)
    assert sorted(int(n) for n, _, _ in written) == list(range(100))  # each exactly once
    assert len({pid for _, _, pid in written} - {str(os.getpid())}) >= 1  # not in this process
    assert starts.total() == 100

    parent = first.reload().task("squares")
    assert [c.cache_key for c in parent.children] == list(range(100))
    assert [c.output for c in parent.children] == [n * n for n in range(100)]
    child = parent.children[7]
    assert [(log.message, log.data) for log in child.logs] == [("squared", {"n": 7})]
    assert {key for n, key, _ in written if n == "7"} == {child.idempotency_key}

    again = job.trigger()
    assert again.output == first.output
    assert again.executions[-1].executed == 0 and again.executions[-1].replayed == 101
    assert starts.total() == 100  # nothing shipped on the re-execution
    assert len(lines(effects)) == 100


def test_a_child_failing_twice_then_succeeding_with_retries(
    client: TriggerClient, dask: DaskExecutor, tmp_path: Path
) -> None:
    tries = tmp_path / "tries.txt"
    job = client.define_job(id="dask-retry")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[str]:
        def flaky(name: str, task: Any) -> str:
            with open(tries, "a") as f:
                f.write(f"{name} {task.attempt}\n")
            if name == "b" and task.attempt < 3:
                raise ConnectionError(f"attempt {task.attempt} of {name} refused")
            return name.upper()

        retry = RetryOptions(limit=3, min_timeout=0.01, randomize=False)
        return list(io.parallel("flaky", ["a", "b", "c"], flaky, executor=dask, retry=retry))

    result = job.trigger()
    assert result.status is RunStatus.SUCCESS, result.error
    assert result.output == ["A", "B", "C"]
    assert sorted(lines(tries)) == [["a", "1"], ["b", "1"], ["b", "2"], ["b", "3"], ["c", "1"]]
    b = result.task("flaky").children[1]
    assert [a.status for a in b.attempts] == ["FAILED", "FAILED", "COMPLETED"]
    assert b.attempts[0].error is not None
    assert b.attempts[0].error.message == "attempt 1 of b refused"
    assert "flaky" in b.attempts[0].error.traceback  # the worker's frames came back


def test_a_child_that_keeps_failing_fails_the_run_and_reruns_alone(
    client: TriggerClient, dask: DaskExecutor, starts: Starts
) -> None:
    broken = {"on": True}
    job = client.define_job(id="dask-fail")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        on = broken["on"]  # read in the kernel: the shipped closure carries the value

        def work(n: int) -> int:
            if n == 2 and on:
                raise ValueError("bad item 2")
            return n

        return list(io.parallel("work", range(4), work, executor=dask))

    failed = job.trigger()
    assert failed.status is RunStatus.FAILURE
    assert isinstance(failed.exception, TaskError) and failed.exception.cache_key == 2
    assert "ValueError: bad item 2" in str(failed.error)
    shipped = starts.total()
    assert shipped == 4
    broken["on"] = False
    assert job.trigger().output == [0, 1, 2, 3]
    assert starts.total() == shipped + 1  # only the failed child ran again


def test_io_on_a_worker_names_the_task_and_the_fix(
    client: TriggerClient, dask: DaskExecutor
) -> None:
    job = client.define_job(id="dask-io")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[Any]:
        return list(
            io.parallel("nested", [1], lambda n: io.run_task("inner", lambda: n), executor=dask)
        )

    result = job.trigger()
    assert result.status is RunStatus.FAILURE
    assert isinstance(result.exception, InvalidOptionError)
    message = str(result.exception)
    assert "task 'item 0'" in message and "io.run_task on a Dask worker" in message
    assert "executor='threads'" in message

    uses_ctx = client.define_job(id="dask-ctx")

    @uses_ctx.run
    def run_ctx(payload: Any, io: Any, ctx: Any) -> list[Any]:
        ids = io.parallel("ids", [1], lambda n: (ctx.job.id, ctx.run.id), executor=dask)
        assert ids == [("dask-ctx", ctx.run.id)]  # ctx travels, but for its client:
        return list(io.parallel("client", [1], lambda n: ctx.client.id, executor=dask))

    refused = uses_ctx.trigger()
    assert isinstance(refused.exception, InvalidOptionError)
    assert "called ctx.client.id on a Dask worker" in str(refused.exception)


def test_unpicklable_function_and_output_say_what_and_how(
    client: TriggerClient, dask: DaskExecutor
) -> None:
    lock = threading.Lock()
    job = client.define_job(id="dask-pickle")

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> Any:
        return io.parallel("locked", [1], lambda n: lock.locked(), executor=dask)

    result = job.trigger()
    assert isinstance(result.exception, InvalidOptionError)
    assert "cannot be sent to the Dask workers" in str(result.exception)

    output_job = client.define_job(id="dask-output")

    @output_job.run
    def run_output(payload: Any, io: Any, ctx: Any) -> Any:
        return io.parallel("gen", [1], lambda n: (i for i in range(n)), executor=dask)

    failed = output_job.trigger()
    assert failed.status is RunStatus.FAILURE
    assert "generator that cannot be stored" in str(failed.error)


@pytest.mark.parametrize("seed", range(5))
def test_a_worker_sigkilled_mid_run(
    client: TriggerClient,
    dask: DaskExecutor,
    dask_client: Client,
    starts: Starts,
    tmp_path: Path,
    seed: int,
) -> None:
    """The run completes; every result recorded once; only children in flight on the killed
    worker (started there, not yet recorded by the kernel) ran twice, under their first
    idempotency key, after an attempt that failed with WorkerLostError."""
    effects = tmp_path / "effects.txt"
    rng = random.Random(seed)
    kill_after = rng.randint(5, 60)  # children started before the kill
    victim = rng.choice(sorted(dask_client.run(os.getpid).values()))
    job = client.define_job(id="dask-kill")
    at_kill: dict[str, set[int]] = {}

    def killer() -> None:
        deadline = time.monotonic() + 60
        while len(lines(effects)) < kill_after and time.monotonic() < deadline:
            time.sleep(0.005)
        (run,) = client.list_runs(job="dask-kill")
        parent = run.task("slow")
        recorded = {c.cache_key for c in parent.children if c.status == "COMPLETED"}
        os.kill(victim, signal.SIGKILL)
        # What the victim started, read after the kill: read before it, a child the victim
        # began in between was missing from "in flight" though it rightly ran again.
        started = {int(n) for n, _, _, pid in lines(effects) if int(pid) == victim}
        at_kill["in flight"] = started - recorded

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def slow(n: int, task: Any) -> int:
            with open(effects, "a") as f:
                f.write(f"{n} {task.idempotency_key} {task.attempt} {os.getpid()}\n")
            time.sleep(0.03)
            return n + 1000

        return list(io.parallel("slow", range(100), slow, executor=dask))

    thread = threading.Thread(target=killer)
    thread.start()
    result = job.trigger()
    thread.join()
    assert result.status is RunStatus.SUCCESS, result.error
    assert result.output == [n + 1000 for n in range(100)]

    per_child = collections.defaultdict(list)
    for n, key, attempt, pid in lines(effects):
        per_child[int(n)].append((key, int(attempt), int(pid)))
    assert sorted(per_child) == list(range(100))
    repeated = {n: runs for n, runs in per_child.items() if len(runs) > 1}
    assert set(repeated) <= at_kill["in flight"]
    for runs in repeated.values():
        assert len({key for key, _, _ in runs}) == 1  # the same idempotency key each time
        assert runs[0][2] == victim and [a for _, a, _ in runs] == [1, 2]

    children = result.reload().task("slow").children
    assert [c.output for c in children] == [n + 1000 for n in range(100)]
    lost = [c for c in children if len(c.attempts) > 1]
    for child in lost:
        first, last = child.attempts[0], child.attempts[-1]
        assert first.status == "FAILED" and last.status == "COMPLETED"
        assert first.error is not None and first.error.type.endswith("WorkerLostError")
    assert {c.cache_key for c in lost} >= set(repeated)
    # Dask never started one of ours twice behind the engine's back: one start per attempt key.
    assert max(starts.keys.values()) == 1


def test_run_cancel_cancels_the_futures_still_queued(
    client: TriggerClient, dask: DaskExecutor, cluster: LocalCluster, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.txt"
    job = client.define_job(id="dask-cancel")
    handle: dict[str, Any] = {}

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        handle["run_id"] = ctx.run.id

        def slow(n: int) -> int:
            with open(effects, "a") as f:
                f.write(f"{n}\n")
            time.sleep(0.5)
            return n

        return list(io.parallel("slow", range(40), slow, executor=dask))

    def cancel_soon() -> None:
        while not lines(effects):
            time.sleep(0.01)
        client.load_run(handle["run_id"]).cancel()

    thread = threading.Thread(target=cancel_soon)
    thread.start()
    result = job.trigger()
    thread.join()
    assert result.status is RunStatus.CANCELED
    assert not _our_tasks_left(cluster, result)
    started = len(lines(effects))
    time.sleep(1.0)
    assert len(lines(effects)) == started < 40  # nothing queued ran after the cancel
    statuses = collections.Counter(c.status for c in result.reload().task("slow").children)
    assert statuses["INTERRUPTED"] > 0 and statuses["COMPLETED"] < 40


# Ctrl-C lands wherever the main thread is: one that lands in a gc callback (Dask's GC
# diagnosis) is swallowed there, reported as unraisable; the interrupter then sends another.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_interrupt_cancels_the_futures_still_queued(
    client: TriggerClient, dask: DaskExecutor, cluster: LocalCluster, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.txt"
    job = client.define_job(id="dask-interrupt")
    returned = threading.Event()

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def slow(n: int) -> int:
            with open(effects, "a") as f:
                f.write(f"{n}\n")
            time.sleep(0.5)
            return n

        return list(io.parallel("slow", range(40), slow, executor=dask))

    def interrupt_soon() -> None:
        while not lines(effects):
            time.sleep(0.01)
        while not returned.is_set():
            _thread.interrupt_main()  # what Kernel -> Interrupt does
            returned.wait(1.0)

    thread = threading.Thread(target=interrupt_soon)
    thread.start()
    try:
        result = job.trigger()
    except KeyboardInterrupt:
        result = None
    finally:
        returned.set()
    thread.join()
    (stored,) = client.list_runs(job="dask-interrupt")
    assert not _our_tasks_left(cluster, stored)
    started = len(lines(effects))
    time.sleep(1.0)
    assert len(lines(effects)) == started < 40
    assert stored.status is RunStatus.CANCELED
    assert result is None or result.status is RunStatus.CANCELED


def _our_tasks_left(cluster: LocalCluster, run: Any, seconds: float = 10.0) -> list[str]:
    """The tasks of ``run``'s children the scheduler still holds (released ones go within
    moments)."""
    ids = {child.id for child in run.reload().task("slow").children}
    deadline = time.monotonic() + seconds
    while True:
        left = [k for k in cluster.scheduler.tasks if _task_id_of(k) in ids]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _task_id_of(key: object) -> str:
    """The task id in a key of ours: trigger_nb-<task id>-<attempt>-<nonce>."""
    parts = str(key).split("-")
    return parts[1] if len(parts) == 4 and parts[0] == "trigger_nb" else ""


def test_executor_defaults_and_bad_values(tmp_path: Path, dask: DaskExecutor) -> None:
    with pytest.raises(InvalidOptionError, match="executor=42 is invalid"):
        TriggerClient("bad", store=str(tmp_path / "s1"), executor=42)
    client = TriggerClient("defaults", store=str(tmp_path / "s2"), executor=dask)
    job = client.define_job(id="inherits")
    threads = client.define_job(id="threads", executor="threads")
    seen: dict[str, int] = {}

    def body(payload: Any, io: Any, ctx: Any) -> list[int]:
        return list(io.parallel("pids", range(2), lambda n: os.getpid()))

    job.run(body)
    threads.run(body)
    seen["dask"] = job.trigger().output[0]
    seen["threads"] = threads.trigger().output[0]
    assert seen["dask"] != os.getpid() and seen["threads"] == os.getpid()
    with pytest.raises(InvalidOptionError, match="DaskExecutor"):
        DaskExecutor(client=3.5)
    assert isinstance(WorkerLostError("x", task_id="t"), RuntimeError)


def test_without_dask_installed_the_error_names_the_install_command() -> None:
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None\n"
        "import trigger_nb\n"
        "for make in (lambda: trigger_nb.DaskExecutor(),\n"
        "             lambda: trigger_nb.TriggerClient('x', executor='dask')):\n"
        "    try:\n"
        "        make()\n"
        "    except ImportError as error:\n"
        "        print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    printed = done.stdout.splitlines()
    assert len(printed) == 2, done.stdout + done.stderr
    assert all("pip install 'trigger_nb[dask]'" in line for line in printed)


def test_a_notebook_kernel_runs_children_on_dask_with_the_live_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nbclient, a real kernel: functions and lambdas defined in the notebook run on the
    cluster (``executor="dask"``: the notebook's default Dask client), the tree is a live widget
    and says what ran; executing the cell again ships nothing."""
    import nbformat
    from nbclient import NotebookClient

    import trigger_nb

    monkeypatch.setenv("TRIGGER_NB_DIR", str(tmp_path / "store"))
    job_cell = (
        "%%trigger_job dask-cell\n"
        "tripled = io.parallel('triple', range(6), triple, executor='dask')\n"
        "plus = io.parallel('plus', range(3), lambda n: n + factor, executor='dask')\n"
        "tripled + plus"
    )
    cells = [
        "%load_ext trigger_nb\n"
        "from dask.distributed import Client, LocalCluster\n"
        "cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,\n"
        "                       host='127.0.0.1', dashboard_address=None)\n"
        "dask_client = Client(cluster)",
        "import os\n"
        "factor = 3\n"
        "def triple(n, task):\n"
        "    with open('effects.txt', 'a') as f:\n"
        "        f.write(f'{n} {os.getpid()}\\n')\n"
        "    task.logger.info('tripled', n=n)\n"
        "    print(f'tripled {n}')\n"
        "    return n * factor",
        job_cell,
        job_cell,
        "kernel_pid = os.getpid()\ndask_client.close()\ncluster.close()\nkernel_pid",
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=180,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()

    first, second = notebook.cells[2].outputs, notebook.cells[3].outputs

    def shown(outputs: Any) -> str:
        """The text of the cell's displays: the live view's, then the finished run's page."""
        displays = [o for o in outputs if o.output_type == "display_data"]
        return "".join(o.data.get("text/plain", "") for o in displays)

    for outputs in (first, second):
        displays = [o for o in outputs if o.output_type == "display_data"]
        assert any("application/vnd.jupyter.widget-view+json" in o.data for o in displays)
        (result,) = [o for o in outputs if o.output_type == "execute_result"]
        assert result.data["text/plain"] == "[0, 3, 6, 9, 12, 15, 3, 4, 5]"
    assert "11 executed · 0 replayed" in shown(first)
    assert "✓ item 5" in shown(first)
    assert "0 executed · 11 replayed" in shown(second)

    def printed(outputs: Any) -> list[str]:  # stdout: a loaded worker may log to stderr
        streams = [o for o in outputs if o.output_type == "stream" and o.name == "stdout"]
        return "".join(o.text for o in streams).splitlines()

    tripled = [f"tripled {n}" for n in range(6)]
    assert sorted(printed(first)) == tripled  # shown in the cell, once, as results arrived
    assert printed(second) == tripled  # replayed in item order

    kernel_pid = notebook.cells[4].outputs[0].data["text/plain"]
    written = lines(tmp_path / "effects.txt")
    assert sorted(int(n) for n, _ in written) == list(range(6))  # once each, over two runs
    assert kernel_pid not in {pid for _, pid in written}  # they ran on the workers
    (run,) = trigger_nb.list_runs("dask-cell", store=str(tmp_path / "store"))
    child = run.task("triple").children[4]
    assert [(log.message, log.data) for log in child.logs] == [("tripled", {"n": 4})]


def test_moving_children_between_executors_keeps_them_replayed_not_stale(
    client: TriggerClient, dask: DaskExecutor, starts: Starts, tmp_path: Path
) -> None:
    """A child's fingerprint is that of the function a thread would run: a run whose children
    ran in threads (one failed) continues on Dask replaying the others without a stale
    warning; only the failed one is shipped."""
    job = client.define_job(id="dask-switch")
    where: dict[str, Any] = {"executor": "threads"}
    fixed = tmp_path / "fixed"  # the fix lives outside the code: the code does not change
    offset = 10

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def add(n: int) -> int:
            if n == 3 and not fixed.exists():
                raise ValueError("not yet")
            return n + offset

        return list(io.parallel("add", range(5), add, executor=where["executor"]))

    assert job.trigger().status is RunStatus.FAILURE
    fixed.touch()
    where["executor"] = dask
    again = job.trigger()
    assert again.output == [10, 11, 12, 13, 14]
    assert again.executions[-1].executed == 2  # the parent and child 3
    assert again.stale_tasks == []
    assert starts.total() == 1


def test_children_printing_at_once_on_two_workers_each_keep_only_their_own_lines(
    client: TriggerClient, dask: DaskExecutor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every thread of both workers runs a child at the same time (the first children to start
    wait, between their prints, until as many have started as the cluster has threads: a
    rendezvous through files, the workers being other processes). Each child's capture holds
    only its own lines, shown once in this process when its result arrived; a re-execution
    replays them in item order, shipping nothing."""
    slots = 2 * THREADS_PER_WORKER
    items = list(range(2 * slots))
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    job = client.define_job(id="dask-prints", executor=dask)

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def child(n: int) -> int:
            print(f"{n}: first")
            print(f"{n}: warning", file=sys.stderr)
            (meeting / f"{n} {os.getpid()} {threading.get_ident()}").touch()
            deadline = time.monotonic() + 60  # a guard against a hang, not a measure
            while len(os.listdir(meeting)) < slots and time.monotonic() < deadline:
                time.sleep(0.01)
            print(f"{n}: second", "met" if len(os.listdir(meeting)) >= slots else "alone")
            return n

        return list(io.parallel("children", items, child))

    first = job.trigger()
    assert first.status is RunStatus.SUCCESS, first.error
    started = [name.split() for name in os.listdir(meeting)]
    assert len({pid for _, pid, _ in started}) == 2  # both workers,
    assert len({(pid, thread) for _, pid, thread in started}) == slots  # every thread of each

    mine = [f"{n}: first\n{n}: second met\n" for n in items]
    warnings = [f"{n}: warning\n" for n in items]
    children = first.task("children").children
    assert [c.stdout for c in children] == mine
    assert [c.stderr for c in children] == warnings
    assert [c.displays for c in children] == [[]] * len(items)
    assert first.task("children").stdout == "".join(mine)  # the parent: in item order

    live = capsys.readouterr()  # shown here once each, as each result arrived
    assert sorted(live.out.splitlines()) == sorted("".join(mine).splitlines())
    assert sorted(live.err.splitlines()) == sorted("".join(warnings).splitlines())

    again = job.trigger()
    assert again.executions[-1].executed == 0
    replayed = capsys.readouterr()
    assert replayed.out == "".join(mine) and replayed.err == "".join(warnings)


def test_a_failed_remote_attempts_output_is_kept_and_replays_come_in_item_order(
    client: TriggerClient, dask: DaskExecutor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a child printed on its worker before raising stays with that attempt; a run that
    failed on one child replays the others in item order before the fixed one runs again."""
    fixed = tmp_path / "fixed"
    job = client.define_job(id="dask-print-fail", executor=dask)

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def child(n: int, task: Any) -> int:
            print(f"{n}: attempt {task.attempt}")
            if n == 1 and task.attempt == 1:
                print("1: connection refused", file=sys.stderr)
                raise ConnectionError("refused")
            if n == 3 and not fixed.exists():
                raise ValueError("3 is broken")
            return n

        retry = RetryOptions(limit=2, min_timeout=0.01, randomize=False)
        return list(io.parallel("children", range(4), child, retry=retry))

    failed = job.trigger()
    assert failed.status is RunStatus.FAILURE
    children = failed.task("children").children
    flaky, broken = children[1], children[3]
    assert [a.status for a in flaky.attempts] == ["FAILED", "COMPLETED"]
    assert flaky.captured_output(1) == [
        ("stdout", "1: attempt 1\n"),
        ("stderr", "1: connection refused\n"),
    ]
    assert flaky.stdout == "1: attempt 2\n" and flaky.stderr == ""
    tries = len(broken.attempts)
    assert broken.status == "FAILED" and tries >= 2
    assert broken.stdout == f"3: attempt {tries}\n"  # the last attempt's, which failed
    assert broken.captured_output(1) == [("stdout", "3: attempt 1\n")]
    assert f"3: attempt {tries}" in failed._repr_mimebundle_()["text/html"]

    capsys.readouterr()
    fixed.touch()
    done = job.trigger()
    assert done.output == [0, 1, 2, 3]
    replayed_then_ran = capsys.readouterr().out
    replayed = "0: attempt 1\n1: attempt 2\n2: attempt 1\n"
    assert replayed_then_ran == f"{replayed}3: attempt {tries + 1}\n"
    job.trigger()
    assert capsys.readouterr().out == replayed_then_ran  # the parent replayed whole


def test_a_remote_child_printing_past_the_bound_is_truncated_and_completes(
    client: TriggerClient, dask: DaskExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bounded as a local attempt's capture: the text kept, then one marker; the child
    completes. (The few characters past the bound went to the worker's own stdout.) With
    ``capture_output=False`` a remote child's lines are shown here, not kept."""
    from trigger_nb._engine.capture import TEXT_LIMIT
    from trigger_nb._engine.worker_output import MARKER

    line = "x" * 999 + "\n"
    job = client.define_job(id="dask-chatty", executor=dask)

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[int]:
        def chatty(n: int) -> int:
            for _ in range(TEXT_LIMIT // len(line)):
                print(line, end="")
            print("the end")
            return n

        return list(io.parallel("chatty", [7], chatty))

    result = job.trigger()
    assert result.status is RunStatus.SUCCESS and result.output == [7]
    kept = result.task("chatty").children[0].stdout
    assert len(kept) == TEXT_LIMIT and kept.endswith(MARKER)
    assert kept.startswith(line * 100) and "the end" not in kept
    assert "output truncated" not in kept[: -len(MARKER)]  # one marker: the kernel cut nothing

    quiet = client.define_job(id="dask-quiet", executor=dask)
    quiet.run(
        lambda payload, io, ctx: io.parallel(
            "quiet", [1, 2], lambda n: print(f"{n} not kept"), capture_output=False
        )
    )
    capsys.readouterr()
    shown = quiet.trigger()
    assert sorted(capsys.readouterr().out.splitlines()) == ["1 not kept", "2 not kept"]
    assert [c.stdout for c in shown.task("quiet").children] == ["", ""]
    quiet.trigger()
    assert capsys.readouterr().out == ""


def test_plain_python_prints_a_remote_childs_lines_once_and_replays_them_in_order(
    tmp_path: Path,
) -> None:
    """A script, its own LocalCluster (whose workers write to the script's stdout too): each
    child's lines appear once (the worker keeps them; the script prints them on arrival), and
    the re-execution re-writes them in item order."""
    script = tmp_path / "fan_out.py"
    script.write_text(
        "import sys\n"
        "from distributed import Client, LocalCluster\n"
        "from trigger_nb import DaskExecutor, TriggerClient\n"
        "if __name__ == '__main__':\n"
        "    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True,\n"
        "                      host='127.0.0.1', dashboard_address=None) as cluster,\\\n"
        "         Client(cluster) as dask_client:\n"
        f"        client = TriggerClient('script', store={str(tmp_path / 'store')!r})\n"
        "        job = client.define_job(id='fan-out', executor=DaskExecutor(dask_client))\n"
        "        def child(n):\n"
        "            print(f'{n}: hello')\n"
        "            print(f'{n}: bye', flush=True)\n"
        "            return n\n"
        "        job.run(lambda payload, io, ctx: io.parallel('c', range(6), child))\n"
        "        print(job.trigger().status, flush=True)\n"
        "        print('--- again', flush=True)\n"
        "        print(job.trigger().status, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, again = done.stdout.split("--- again\n")
    expected = [f"{n}: {word}" for n in range(6) for word in ("hello", "bye")]
    assert sorted(first.splitlines()) == sorted([*expected, "SUCCESS"])  # once each
    assert again.splitlines() == [*expected, "SUCCESS"]  # in item order


def test_the_worker_side_of_an_attempt_in_this_process() -> None:
    """``run_on_worker`` as a worker runs it (here, in-process: coverage sees it): output
    pickled once, logs and properties kept, errors with their traceback, io refused, async."""
    import pickle

    import cloudpickle

    from trigger_nb._engine.remote import WorkerIO, WorkerKernelLogger, WorkerTask, run_on_worker

    def handle() -> WorkerTask:
        task = WorkerTask(
            id="t1", cache_key=3, idempotency_key="k" * 64, name="item 3", attempt=2,
            run_id="run_x", parent="'squares'",
        )  # fmt: skip
        return pickle.loads(pickle.dumps(task))  # as it travels

    def ok(n: int, task: Any) -> dict[str, int]:
        task.logger.info("working", n=n, lock=threading.Lock())  # unpicklable: sent as text
        task.output_properties.append({"label": "n", "text": str(n)})
        return {"n": n, "attempt": task.attempt}

    envelope = run_on_worker(3, handle(), cloudpickle.dumps(ok), True)
    assert envelope.kind == "ok" and envelope.data is not None
    assert pickle.loads(envelope.data) == {"n": 3, "attempt": 2}
    assert envelope.type_name == "dict"
    assert envelope.logs[0][:2] == ("info", "working") and envelope.logs[0][2]["n"] == 3
    assert isinstance(envelope.logs[0][2]["lock"], str)
    assert envelope.output_properties == [{"label": "n", "text": "3"}]

    def fails(n: int) -> int:
        raise KeyError(n)

    failed = run_on_worker(3, handle(), cloudpickle.dumps(fails), False)
    assert failed.kind == "error" and failed.data is not None
    assert isinstance(pickle.loads(failed.data), KeyError) and failed.traceback is not None

    io_stub, logger_stub = WorkerIO(), WorkerKernelLogger()

    def uses_io(n: int) -> Any:
        io_stub.logger.warn("fine")
        logger_stub.info("fine too")
        assert io_stub.run_id == "run_x"
        return io_stub.run_task("inner", lambda: n)

    refused = run_on_worker(3, handle(), cloudpickle.dumps(uses_io), False)
    assert (
        refused.kind == "io" and "task 'item 3' (key 3 of io.parallel 'squares')" in refused.message
    )
    assert [level for level, _, _ in refused.logs] == ["warn", "info"]

    async def later(n: int) -> int:
        return n * 2

    assert (
        pickle.loads(run_on_worker(4, handle(), cloudpickle.dumps(later), False).data or b"") == 8
    )
    unstorable = run_on_worker(1, handle(), cloudpickle.dumps(lambda n: (i for i in [n])), False)
    assert unstorable.kind == "unpicklable" and unstorable.type_name == "generator"


def test_a_cluster_of_threads_in_this_process_prints_each_line_once(
    client: TriggerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """``LocalCluster(processes=False)`` (common in notebooks): the workers are threads of this
    process, where the kernel's own stream tee is on too. Each child's lines are kept by the
    worker's tee only and printed once, here, on arrival; the streams are given back after."""
    stdout = sys.stdout
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster, set_as_default=False) as threads_client,
    ):
        job = client.define_job(id="dask-in-process", executor=DaskExecutor(threads_client))

        @job.run
        def run(payload: Any, io: Any, ctx: Any) -> list[int]:
            def child(n: int) -> int:
                print(f"{n}: on a worker thread")
                return n

            return list(io.parallel("children", range(4), child))

        done = job.trigger()
    assert done.output == [0, 1, 2, 3]
    mine = [f"{n}: on a worker thread\n" for n in range(4)]
    assert [c.stdout for c in done.task("children").children] == mine
    assert sorted(capsys.readouterr().out.splitlines()) == sorted("".join(mine).splitlines())
    assert sys.stdout is stdout


_barrier = threading.Barrier(2, timeout=10)


def _two_threads_printing(n: int) -> int:
    print(f"{n}: one")
    _barrier.wait()  # the other thread has printed its first line too
    sys.stderr.writelines([f"{n}: ", "two\n"])
    _barrier.wait()
    print(f"{n}: three")
    if n == 1:
        raise ValueError("one fails")
    return n


def test_the_worker_keeps_each_attempts_prints_in_this_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``run_on_worker`` as two threads of one worker run it at once (here, in-process:
    coverage sees it): each envelope holds only its own attempt's lines, stdout and stderr in
    the order written; past the bound, the rest goes to this process's stream after a marker;
    the streams are given back after the last attempt."""
    import pickle

    import cloudpickle

    from trigger_nb._engine.capture import TEXT_LIMIT
    from trigger_nb._engine.remote import WorkerTask, run_on_worker
    from trigger_nb._engine.worker_output import MARKER

    def handle(key: int) -> WorkerTask:
        return WorkerTask(
            id=f"t{key}", cache_key=key, idempotency_key="k" * 64, name=f"item {key}",
            attempt=1, run_id="run_x", parent="'p'",
        )  # fmt: skip

    stdout, stderr = sys.stdout, sys.stderr
    function = pickle.dumps(_two_threads_printing)  # by reference: it shares a barrier
    envelopes: dict[int, Any] = {}
    threads = [
        threading.Thread(
            target=lambda n=n: envelopes.update({n: run_on_worker(n, handle(n), function, False)})
        )
        for n in (0, 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert envelopes[0].kind == "ok" and pickle.loads(envelopes[0].data) == 0
    assert envelopes[1].kind == "error"  # a failed attempt's output travels too
    for n in (0, 1):
        assert envelopes[n].printed == [
            ("stdout", f"{n}: one\n"), ("stderr", f"{n}: two\n"), ("stdout", f"{n}: three\n")
        ]  # fmt: skip
    assert capsys.readouterr() == ("", "")  # kept, not written here: the kernel prints them
    assert (sys.stdout, sys.stderr) == (stdout, stderr)

    def chatty(n: int) -> int:
        sys.stdout.write("x" * (TEXT_LIMIT - 10))
        sys.stdout.write("0123456789abc")
        sys.stdout.write("past")
        sys.stdout.write(b"not text")  # type: ignore[arg-type]  # the stream's own error
        return n

    unbounded = run_on_worker(2, handle(2), cloudpickle.dumps(chatty), False)
    assert unbounded.kind == "error" and "bytes" in unbounded.message
    ((stream, text),) = unbounded.printed
    assert stream == "stdout" and len(text) == TEXT_LIMIT and text.endswith(MARKER)
    assert capsys.readouterr().out.endswith("abcpast")  # the rest: the worker's own stream


@pytest.fixture(params=["threads", "dask"])
def executor(request: pytest.FixtureRequest) -> Any:
    if request.param == "threads":
        return "threads"
    return request.getfixturevalue("dask")


def test_the_executor_contract(client: TriggerClient, executor: Any, tmp_path: Path) -> None:
    """What every executor gives io.parallel's children, threads and Dask alike: results and
    records in item order, task handles, logs and output properties recorded, retries, and a
    failing child that fails the parent with its own error while the others complete, and each
    child's own prints, its failed attempts' too."""
    tries = tmp_path / "tries.txt"
    job = client.define_job(id="contract", executor=executor)

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> list[str]:
        def work(word: str, task: Any) -> str:
            with open(tries, "a") as f:
                f.write(f"{word} {task.attempt}\n")
            print(f"{word} try {task.attempt}")
            if word == "b" and task.attempt == 1:
                raise TimeoutError("first try of b")
            if word == "z":
                raise ValueError("z is not allowed")
            task.logger.warn("worked", word=word)
            task.output_properties.append({"label": "length", "text": str(len(word))})
            return f"{word}:{task.cache_key}:{task.run_id == ctx.run.id}"

        retry = RetryOptions(limit=2, min_timeout=0.01, randomize=False)
        return list(io.parallel("words", payload, work, retry=retry))

    done = job.trigger(["a", "b", "c"])
    assert done.output == ["a:0:True", "b:1:True", "c:2:True"]
    children = done.task("words").children
    assert [c.name for c in children] == ["item 0", "item 1", "item 2"]
    assert [len(c.attempts) for c in children] == [1, 2, 1]
    assert [(log.level, log.data) for log in children[1].logs] == [("warn", {"word": "b"})]
    assert children[2].output_properties == [{"label": "length", "text": "1"}]
    assert [c.stdout for c in children] == ["a try 1\n", "b try 2\n", "c try 1\n"]
    assert children[1].captured_output(1) == [("stdout", "b try 1\n")]

    failed = job.trigger(["x", "z"])
    assert failed.status is RunStatus.FAILURE
    assert isinstance(failed.exception, TaskError) and failed.exception.cache_key == 1
    assert [c.status for c in failed.task("words").children] == ["COMPLETED", "FAILED"]
