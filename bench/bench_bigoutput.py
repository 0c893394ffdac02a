"""Big outputs (issue 16): a 1 GiB numpy array and a ~100 MB DataFrame stored by a task, against
``pickle.dump`` / ``pickle.load`` (protocol 5) to a plain file.

Run: ``.venv/bin/python bench/bench_bigoutput.py`` (``TRIGGER_NB_BENCH_BIG_MB`` sets the array's
size, default 1024; ``TRIGGER_NB_BENCH_REPEATS`` the repeats, default 7;
``TRIGGER_NB_BENCH_ONLY=DataFrame`` measures only the values whose label has that text).
Every number is measured in a fresh process (``python -c``), the value built before the clock
starts; the subject and its baseline alternate (which goes first alternates too), medians of
the repeats:

- first run: one ``job.trigger()`` whose task returns the value (it is streamed to its file)
  vs ``pickle.dump(value, file, protocol=5)`` to a new file; peak extra memory
  (``ru_maxrss`` minus the resident size once the value exists) as a share of the value.
- replay: ``job.trigger()`` again (the value read back, every part's digest checked) vs
  ``pickle.load``; ``mmap=True`` replay (buffers mapped read-only: size, trailer and pickle
  stream checked, buffers on demand with ``trigger-nb verify``). For replays two times: the
  whole execution (run lock, run record, the task's output) and the ``io.run_task`` call alone.

Fair conditions, both sides alike:
- ``os.sync()`` before every measure: each starts with no dirty pages of earlier measures to
  flush (a 1 GiB write that lands on 2 GiB of unflushed data is throttled to disk speed), and
  each side writes a new file (rewriting the same file drops its unflushed pages, which made
  the old baseline look twice as fast as any write that keeps its data).
- the reads find their file in the page cache (written just before): memory speed, not disk.
- the process has triggered a job with a 2 MiB array output (a framed file of its own)
  before the clock starts: a fresh process's first trigger pays one-time costs (pydantic's
  schemas and plugin scan, lazy imports) that belong to no output; that first trigger's time
  is printed apart. Its output is big since the first big output written or replayed in a
  process pays its own: importing ``xxhash`` (~0.5 ms) and, on replay, building
  ``TaskRecord``'s deferred pydantic schema (~5 ms of CPU: the replay parses the task's record
  to let the run's output refer to the big one); a small warm-up output left those in the
  measure.
- the value read back stays alive until the clock stops, on both sides (``pickle.load``'s is
  assigned; the task's output is kept in a list): freeing ~100 MB of read memory (unmapping its
  pages) costs ~5 ms that belongs to neither reading it nor the run's own work. (Before, the
  replayed value was dropped as the run function returned, inside the timed section.)
- the task reads the value from a global: with fingerprints on, the value would be hashed too
  (bench_fingerprint.py measures that: ~130 ms per GiB), so they are off here
  (``on_code_change="ignore"``) to measure the output's own path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import human, median, table, verdict

ARRAY_MB = int(os.environ.get("TRIGGER_NB_BENCH_BIG_MB", "1024"))
# More repeats than most benchmarks: two cores shared with other work move one repeat by 2x.
REPEATS = int(os.environ.get("TRIGGER_NB_BENCH_REPEATS", "7"))

MAKE = {
    f"numpy {ARRAY_MB:,} MiB": f"value = np.random.default_rng(0).random({ARRAY_MB} * 2**20 // 8)",
    "DataFrame ~100 MB": (
        "n = 2_500_000\n"
        "value = pd.DataFrame({'f': np.random.default_rng(0).random(n), 'i': np.arange(n),"
        " 'g': np.arange(n) % 10, 't': pd.date_range('2024', periods=n, freq='s'),"
        " 'x': np.random.default_rng(1).random(n), 'y': np.random.default_rng(2).random(n)})"
    ),
    # The same columns in polars (its own pickling serializes the frame into one in-band bytes
    # object; trigger_nb hands its Arrow buffers out of band: see _store/polars_arrow.py).
    "polars DataFrame ~100 MB": (
        "n = 2_500_000\n"
        "value = pl.DataFrame({'f': np.random.default_rng(0).random(n), 'i': np.arange(n),"
        " 'g': np.arange(n) % 10, 't': pd.date_range('2024', periods=n, freq='s'),"
        " 'x': np.random.default_rng(1).random(n), 'y': np.random.default_rng(2).random(n)})"
    ),
}
# Imported before the clock starts in every process of that value, reads too: whoever replays a
# polars frame has imported polars (~95 ms, which pickle.load and a replay would both pay).
IMPORTS = {"polars DataFrame ~100 MB": "import polars as pl\n"}
# TRIGGER_NB_BENCH_ONLY=DataFrame (a substring of the labels): measure only those values.
ONLY = os.environ.get("TRIGGER_NB_BENCH_ONLY", "")

PRELUDE = """
import pickle, sys, time
import numpy as np, pandas as pd
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
def peak():
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                if line.startswith("VmHWM"))
def start():  # the peak so far forgotten (the value's construction had temporaries)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return rss(), time.process_time(), time.perf_counter()
"""

OURS = """
from trigger_nb import TriggerClient
client = TriggerClient("bench", store=sys.argv[1], on_code_change="ignore")
warm = client.define_job("warm-up")
warm.run(lambda payload, io, ctx: io.run_task("small", lambda: np.zeros(2**18)))  # 2 MiB
began = time.perf_counter()
warm.trigger()
WARM = time.perf_counter() - began
job = client.define_job("big")
MAP = sys.argv[2] == "mmap"
CALL, KEPT = [0.0], []
def run(payload, io, ctx):
    began = time.perf_counter()
    KEPT.append(io.run_task("big", lambda: VALUE(), mmap=MAP))  # kept, as pickle.load's value
    CALL[0] = time.perf_counter() - began
job.run(run)
"""

SCRIPTS = {
    "dump": "{make}\nbase, cpu, began = start()\n"
    "with open(sys.argv[1], 'wb') as f: pickle.dump(value, f, protocol=5)\n"
    "WARM, CALL = 0.0, [0.0]\n",
    "load": "base, cpu, began = start()\n"
    "with open(sys.argv[1], 'rb') as f: value = pickle.load(f)\nWARM, CALL = 0.0, [0.0]\n",
    "first": "{make}\nVALUE = lambda: value\n" + OURS + "base, cpu, began = start()\n"
    "run = job.trigger()\nassert run.executions[-1].executed == 1\n",
    "replay": "VALUE = lambda: None\n" + OURS + "base, cpu, began = start()\n"
    "run = job.trigger()\nassert run.executions[-1].replayed == 1\n",
}
END = (
    "wall, used = time.perf_counter() - began, time.process_time() - cpu\n"
    "print(wall, peak() - base, CALL[0], WARM, used)\n"
)


ORDERS = (("dump", "first", "load", "re", "mm"), ("first", "dump", "re", "mm", "load"))


class Measure:
    """One fresh process's numbers: the timed section (wall and CPU time: user + system, all
    threads), peak extra memory, the ``run_task`` call (replays) and the warm-up trigger."""

    def __init__(self, kind: str, make: str, imports: str, *args: str) -> None:
        os.sync()  # no earlier measure's dirty pages left to flush during this one
        code = PRELUDE + imports + SCRIPTS[kind].format(make=make) + END
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
        )
        seconds, peak, call, warm, cpu = done.stdout.split()
        self.seconds, self.peak, self.call = float(seconds), int(peak), float(call)
        self.warm, self.cpu = float(warm), float(cpu)


def main() -> None:
    rows, warm_ups = [], []
    with tempfile.TemporaryDirectory(prefix="trigger-nb-bench-") as tmp:
        for label, make in [(k, v) for k, v in MAKE.items() if ONLY in k]:
            size = measure_size(make, IMPORTS.get(label, ""))
            got: dict[str, list[Measure]] = {k: [] for k in ("dump", "load", "first", "re", "mm")}
            for repeat in range(REPEATS):
                plain = Path(tmp, f"plain-{repeat}.pkl")  # a new file, as the store writes one
                store = Path(tmp, f"store-{repeat}")
                runs = {
                    "dump": ("dump", str(plain)),
                    "first": ("first", str(store), "read"),
                    "load": ("load", str(plain)),
                    "re": ("replay", str(store), "read"),
                    "mm": ("replay", str(store), "mmap"),
                }
                # Alternate which side goes first: a side must not always find the memory
                # and the disk as the other left them.
                order = ORDERS[repeat % 2]
                for name in order:
                    kind, *args = runs[name]
                    got[name].append(Measure(kind, make, IMPORTS.get(label, ""), *args))
                plain.unlink()
                shutil.rmtree(store)
            warm_ups += [m.warm for m in got["first"] + got["re"] + got["mm"]]
            rows += _rows(label, size, got)
    print(f"### Big outputs (fresh process per measure, median of {REPEATS} repeats)\n")
    print(table(["measure", "trigger_nb", "baseline", "baseline time", "ratio", "target"], rows))
    print(
        "\nFirst run and replay: the whole `job.trigger()` (run lock, run record, the output "
        "written or read and checked), in a process that has triggered a job with a 2 MiB "
        "output already (that first trigger, in a fresh process, took "
        f"{human(median(warm_ups))}, once: pydantic's schemas and imports). Writing and "
        "reading hash every part with XXH3-64 a 256 KiB chunk at a time, in cache. A mapped "
        "replay checks the trailer, the sizes and the pickle stream, not the buffers "
        "(`trigger-nb verify RUN` does); `io.run_task` is the call that hands the mapped value "
        "back, the rest of the execution is the run's lock and records. `os.sync()` before each "
        "measure; each side writes a new file.\n"
    )


def _rows(label: str, size: int, got: dict[str, list[Measure]]) -> list[list[str]]:
    def med(kind: str, field: str = "seconds") -> float:
        return median([getattr(m, field) for m in got[kind]])

    r_first, r_replay = med("first") / med("dump"), med("re") / med("load")
    c_first = med("first", "cpu") / med("dump", "cpu")
    c_replay = med("re", "cpu") / med("load", "cpu")
    peak = med("first", "peak")
    return [
        [f"{label}: first run", human(med("first")), "`pickle.dump`", human(med("dump")),
         f"{r_first:.2f}x", f"<= 1.3x: {verdict(r_first, 1.3)}"],
        [f"{label}: first run, CPU time", human(med("first", "cpu")), "`pickle.dump`",
         human(med("dump", "cpu")), f"{c_first:.2f}x", ""],
        [f"{label}: first run, peak extra memory", f"{peak / 2**20:,.0f} MiB",
         "the value", f"{size / 2**20:,.0f} MiB", f"{peak / size:.0%}",
         f"<= 10%: {verdict(peak / size, 0.10)}"],
        [f"{label}: replay", human(med("re")), "`pickle.load`", human(med("load")),
         f"{r_replay:.2f}x", f"<= 1.1x: {verdict(r_replay, 1.1)}"],
        [f"{label}: replay, CPU time", human(med("re", "cpu")), "`pickle.load`",
         human(med("load", "cpu")), f"{c_replay:.2f}x", ""],
        [f"{label}: replay, its `io.run_task` call", human(med("re", "call")), "`pickle.load`",
         human(med("load")), f"{med('re', 'call') / med('load'):.2f}x", ""],
        [f"{label}: `mmap=True` replay, the `io.run_task` call", human(med("mm", "call")),
         "", "", "", f"<= 10 ms: {verdict(med('mm', 'call'), 0.010)}"],
        [f"{label}: `mmap=True` replay, whole execution", human(med("mm")), "", "", "",
         "(lock, run record, the call)"],
    ]  # fmt: skip


def measure_size(make: str, imports: str) -> int:
    code = PRELUDE + imports + make + "\nprint(len(pickle.dumps(value, protocol=5)))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout)


if __name__ == "__main__":
    main()
