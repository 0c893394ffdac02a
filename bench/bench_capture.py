"""What capturing a task's output costs (issue 14).

Run: ``.venv/bin/python bench/bench_capture.py``.

- first run of N tasks that print nothing (the common case), capture on (the default) vs
  ``capture_output=False`` vs a ``diskcache.Cache.set`` loop: a task that prints nothing
  allocates no capture, so the two runs should cost the same.
- a task printing 10,000 lines vs the same prints without trigger_nb, **in a real Jupyter
  kernel** (where a notebook's prints go: ipykernel's ``OutStream``), both timed inside the
  kernel, interleaved, medians of ``REPEATS``.
- the same in plain Python, stdout to ``/dev/null``: every write there is one C call, and the
  tee that routes each write to the task running in its context is a Python call: shown for
  what it is, not a target.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import diskcache

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import REPEATS, human, median, milli, table, timed, verdict

from trigger_nb import DiskStore, TriggerClient

TASKS = int(os.environ.get("TRIGGER_NB_BENCH_TASKS", "10000"))
LINES = 10_000

PRINTS = f"""
import time
def report():
    for i in range({LINES}):
        print("row", i, "of the report: ok")
"""

IN_KERNEL = (
    PRINTS
    + """
%load_ext trigger_nb
import trigger_nb, statistics
client = trigger_nb.TriggerClient("bench", store=trigger_nb.DiskStore(STORE))
job = client.define_job("prints")
job.run(lambda payload, io, ctx: io.run_task("report", report))
plain, ours = [], []
for repeat in range(REPEATS):
    began = time.perf_counter(); report(); plain.append(time.perf_counter() - began)
    began = time.perf_counter(); job.trigger(new_run=True); ours.append(time.perf_counter() - began)
RESULT = (statistics.median(plain), statistics.median(ours))
"""
)


def first_runs(root: Path) -> tuple[list[float], list[float], list[float]]:
    captured, uncaptured, sets = [], [], []
    for repeat in range(REPEATS):
        cache = diskcache.Cache(str(root / f"set-{repeat}"), eviction_policy="none")

        def set_loop(cache: diskcache.Cache = cache) -> None:
            for i in range(TASKS):
                cache.set(f"task-{i}", i)

        sets.append(timed(set_loop) / TASKS)
        cache.close()
        for capture, times in ((True, captured), (False, uncaptured)):
            client = TriggerClient("bench", store=DiskStore(root / f"first-{repeat}-{capture}"))
            job = client.define_job("first")

            def run(payload: object, io: Any, ctx: object, capture: bool = capture) -> None:
                for i in range(TASKS):
                    io.run_task(f"task-{i}", lambda i=i: i, capture_output=capture)

            job.run(run)
            times.append(timed(job.trigger) / TASKS)
            client.store.close()
    return captured, uncaptured, sets


def in_kernel(store: Path) -> tuple[float, float]:
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(store.parent))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        code = IN_KERNEL.replace("REPEATS", str(REPEATS)).replace("STORE", repr(str(store)))
        reply = client.execute_interactive(code, timeout=600, output_hook=lambda message: None)
        assert reply["content"]["status"] == "ok", reply["content"]
        found: dict[str, Any] = {}

        def keep(message: dict[str, Any]) -> None:
            if message["msg_type"] == "stream":
                found["text"] = found.get("text", "") + message["content"]["text"]

        client.execute_interactive("print(RESULT)", timeout=60, output_hook=keep)
        plain, ours = (float(x) for x in found["text"].strip("()\n").split(","))
        return plain, ours
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def plain_python(root: Path) -> tuple[float, float]:
    namespace: dict[str, Any] = {}
    exec(PRINTS, namespace)
    report = namespace["report"]
    client = TriggerClient("bench", store=DiskStore(root / "plain"))
    job = client.define_job("prints")
    job.run(lambda payload, io, ctx: io.run_task("report", report))
    plain, ours = [], []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for _ in range(REPEATS):
            began = time.perf_counter()
            report()
            plain.append(time.perf_counter() - began)
            began = time.perf_counter()
            job.trigger(new_run=True)
            ours.append(time.perf_counter() - began)
    return median(plain), median(ours)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="trigger-nb-bench-") as tmp:
        root = Path(tmp)
        captured, uncaptured, sets = first_runs(root)
        kernel_plain, kernel_ours = in_kernel(root / "kernel-store")
        python_plain, python_ours = plain_python(root)
    f_set = median(captured) / median(sets)
    f_off = median(captured) / median(uncaptured)
    r_kernel, r_python = kernel_ours / kernel_plain, python_ours / python_plain
    rows = [
        ["first run, per task, prints nothing", human(median(captured)), "`Cache.set` loop",
         human(median(sets)), f"{f_set:.2f}x", f"<= 2.0x: {verdict(f_set, 2.0)}"],
        ["first run, per task, prints nothing", human(median(captured)),
         "same, `capture_output=False`", human(median(uncaptured)), f"{f_off:.2f}x",
         "capture's own cost"],
        [f"a task printing {LINES:,} lines, in a Jupyter kernel", milli(kernel_ours),
         "the same prints, no trigger_nb", milli(kernel_plain), f"{r_kernel:.2f}x",
         f"<= 1.2x: {verdict(r_kernel, 1.2)}"],
        [f"a task printing {LINES:,} lines, plain Python to /dev/null", milli(python_ours),
         "the same prints, no trigger_nb", milli(python_plain), f"{r_python:.2f}x",
         "not a target (see below)"],
    ]  # fmt: skip
    print(f"### Output capture ({TASKS:,} tasks; median of {REPEATS} repeats)\n")
    print(table(["measure", "trigger_nb", "baseline", "baseline time", "ratio", "target"], rows))
    print(
        "\nThe printing rows include the run's fixed cost (lock, run record, one task entry "
        "with its capture). A print of three values is six writes; each goes through a "
        "Python-level tee that finds the task running in the caller's context (a contextvar) "
        "and keeps the text. In a kernel, a write to ipykernel's `OutStream` costs several "
        "times that; to `/dev/null` in plain Python it is a single C call, so there the tee "
        "shows.\n"
    )


if __name__ == "__main__":
    main()
