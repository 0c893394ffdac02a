"""What a Dask child prints, kept on the worker and printed by the kernel, against raw Dask.

Run: ``.venv/bin/python bench/bench_dask_output.py`` (needs ``trigger_nb[dask]``). Repeats
default to 5 (``TRIGGER_NB_BENCH_REPEATS`` overrides it), interleaved with their baselines.

- Printing: 20 children each printing 10,000 lines on a LocalCluster (2 worker processes x 2
  threads), trigger_nb (kept per attempt on the worker, sent back with the result, printed once
  by this process into the child's capture, stored) vs raw ``client.map`` + ``gather`` of the
  same function (its prints go to the worker's stdout). Both write every line once, to
  /dev/null: the workers are started with /dev/null as their stdout, this process's
  ``sys.stdout`` is /dev/null while measuring. Target, as a local task printing 10,000 lines
  (issue 14): <= 1.2x.
- Silent: 1,000 trivial children that print nothing, trigger_nb vs raw map + gather (issue 17's
  per-child overhead row, <= 2x): capturing must not make the common case slower.

Every trigger_nb run is a fresh run (``new_run=True``) in a real DiskStore.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import median, table, timed, verdict

from trigger_nb import DaskExecutor, DiskStore, TriggerClient

REPEATS = int(os.environ.get("TRIGGER_NB_BENCH_REPEATS", "5"))
PRINTING_CHILDREN, LINES = 20, 10_000
SILENT_CHILDREN = 1000
WORKERS, THREADS_PER_WORKER = 2, 2


def chatty(n: int) -> int:
    for i in range(LINES):
        print(f"child {n} line {i}")
    return n


def trivial(n: int) -> int:
    return n + 1


@contextlib.contextmanager
def fd_to_devnull(fd: int) -> Iterator[None]:
    """``fd`` points at /dev/null meanwhile (processes started now inherit it)."""
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def main() -> None:
    from distributed import Client, LocalCluster

    directory = Path(tempfile.mkdtemp(prefix="bench-dask-output-"))
    with fd_to_devnull(1):
        cluster = LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=THREADS_PER_WORKER,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    with cluster, Client(cluster, set_as_default=False) as dask_client:
        dask = DaskExecutor(dask_client)
        client = TriggerClient("bench", store=DiskStore(directory / "store"))

        runs: dict[str, Any] = {}

        def ours(job_id: str, fn: object, items: list[int]) -> None:
            job = client.define_job(job_id, executor=dask)
            job.run(lambda payload, io, ctx: io.parallel("children", items, fn))
            run = job.trigger(new_run=True)
            assert run.status == "SUCCESS", run.error
            runs[job_id] = run

        def raw(fn: object, items: list[int]) -> None:
            dask_client.gather(dask_client.map(fn, items, pure=False))

        printing = list(range(PRINTING_CHILDREN))
        silent = list(range(SILENT_CHILDREN))
        load_at_start = os.getloadavg()[0]
        chatty_raw, chatty_ours, silent_raw, silent_ours = ([] for _ in range(4))
        shown = sys.stdout
        with open(os.devnull, "w") as devnull:
            sys.stdout = devnull
            try:
                ours("warm", trivial, silent[:50])  # workers import, plugin registered
                raw(trivial, silent[:50])
                for _ in range(REPEATS):
                    chatty_raw.append(timed(lambda: raw(chatty, printing)))
                    chatty_ours.append(timed(lambda: ours("chatty", chatty, printing)))
                    silent_raw.append(timed(lambda: raw(trivial, silent)))
                    silent_ours.append(timed(lambda: ours("silent", trivial, silent)))
            finally:
                sys.stdout = shown
        stdout = runs["chatty"].task("children").children[3].stdout  # kept, whole
        assert stdout.count("\n") == LINES and stdout.startswith("child 3 line 0\n"), stdout[:80]

    load_at_end = os.getloadavg()[0]
    chatty_ratio = median(chatty_ours) / median(chatty_raw)
    silent_ratio = median(silent_ours) / median(silent_raw)
    rows = [
        [
            f"printing: {PRINTING_CHILDREN} children x {LINES:,} lines",
            f"{median(chatty_ours):.2f} s",
            "raw `client.map` + `gather` (prints to the worker's stdout)",
            f"{median(chatty_raw):.2f} s",
            f"{chatty_ratio:.2f}x",
            f"<= 1.2x: {verdict(chatty_ratio, 1.2)}",
        ],
        [
            f"silent: {SILENT_CHILDREN:,} trivial children",
            f"{median(silent_ours):.2f} s",
            "raw `client.map` + `gather`",
            f"{median(silent_raw):.2f} s",
            f"{silent_ratio:.2f}x",
            f"<= 2x: {verdict(silent_ratio, 2.0)}",
        ],
    ]
    print(
        f"### Dask children's prints: LocalCluster({WORKERS} worker processes x "
        f"{THREADS_PER_WORKER} threads), median of {REPEATS} repeats\n"
    )
    print(table(["measure", "trigger_nb", "baseline", "baseline time", "ratio", "target"], rows))
    print(
        f"\n1-minute load average at start / end: {load_at_start:.2f} / {load_at_end:.2f} on "
        f"{os.cpu_count()} CPUs.\n"
    )


if __name__ == "__main__":
    main()
