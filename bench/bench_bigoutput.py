"""Big outputs (issue 16): a 1 GiB numpy array and a ~100 MB DataFrame stored by a task, against
``pickle.dump`` / ``pickle.load`` (protocol 5) to a plain file.

Run: ``.venv/bin/python bench/bench_bigoutput.py`` (``TRIGGER_NB_BENCH_BIG_MB`` sets the array's
size, default 1024). Every number is measured in a fresh process (``python -c``), the value
built before the clock starts; first runs and baselines alternate, medians of ``REPEATS``:

- first run: one ``job.trigger()`` whose task returns the value (it is streamed to its file)
  vs ``pickle.dump(value, file, protocol=5)``; peak extra memory (``ru_maxrss`` minus the
  resident size once the value exists) as a share of the value.
- the task reads the value from a global: with fingerprints on, the value would be hashed too
  (bench_fingerprint.py measures that: ~130 ms per GiB), so they are off here
  (``on_code_change="ignore"``) to measure the output's own path.
- replay: ``job.trigger()`` again (the task's value read back, every part checked) vs
  ``pickle.load``; ``mmap=True`` replay (buffers mapped read-only: size, trailer and pickle
  stream checked, buffers on demand with ``trigger-nb verify``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import REPEATS, human, median, table, verdict

ARRAY_MB = int(os.environ.get("TRIGGER_NB_BENCH_BIG_MB", "1024"))

MAKE = {
    f"numpy {ARRAY_MB:,} MiB": f"value = np.random.default_rng(0).random({ARRAY_MB} * 2**20 // 8)",
    "DataFrame ~100 MB": (
        "n = 2_500_000\n"
        "value = pd.DataFrame({'f': np.random.default_rng(0).random(n), 'i': np.arange(n),"
        " 'g': np.arange(n) % 10, 't': pd.date_range('2024', periods=n, freq='s'),"
        " 'x': np.random.default_rng(1).random(n), 'y': np.random.default_rng(2).random(n)})"
    ),
}

PRELUDE = """
import pickle, resource, sys, time
import numpy as np, pandas as pd
from trigger_nb import TriggerClient
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
"""

OURS = """
client = TriggerClient("bench", store=sys.argv[1], on_code_change="ignore")
job = client.define_job("big")
MAP = sys.argv[2] == "mmap"
def run(payload, io, ctx):
    io.run_task("big", lambda: VALUE(), mmap=MAP)
job.run(run)
"""

SCRIPTS = {
    "dump": "{make}\nbase = rss()\nbegan = time.perf_counter()\n"
    "with open(sys.argv[1], 'wb') as f: pickle.dump(value, f, protocol=5)\n",
    "load": "base = rss()\nbegan = time.perf_counter()\n"
    "with open(sys.argv[1], 'rb') as f: value = pickle.load(f)\n",
    "first": "{make}\nVALUE = lambda: value\n" + OURS + "base = rss()\n"
    "began = time.perf_counter()\nrun = job.trigger()\nassert run.executions[-1].executed == 1\n",
    "replay": "VALUE = lambda: None\n" + OURS + "base = rss()\n"
    "began = time.perf_counter()\nrun = job.trigger()\nassert run.executions[-1].replayed == 1\n",
}
END = (
    "print(time.perf_counter() - began, "
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base)\n"
)


def measure(kind: str, make: str, *args: str) -> tuple[float, int]:
    code = PRELUDE + SCRIPTS[kind].format(make=make) + END
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    seconds, peak = done.stdout.split()
    return float(seconds), int(peak)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="trigger-nb-bench-") as tmp:
        for label, make in MAKE.items():
            size = measure_size(make)
            dumps, loads, firsts, replays, mapped, peaks = [], [], [], [], [], []
            for repeat in range(REPEATS):
                plain = str(Path(tmp, "plain.pkl"))
                store = str(Path(tmp, f"store-{label[:5]}-{repeat}"))
                dumps.append(measure("dump", make, plain)[0])
                first, peak = measure("first", make, store, "read")
                firsts.append(first)
                peaks.append(peak)
                loads.append(measure("load", make, plain)[0])
                replays.append(measure("replay", make, store, "read")[0])
                mapped.append(measure("replay", make, store, "mmap")[0])
            r_first = median(firsts) / median(dumps)
            r_replay = median(replays) / median(loads)
            rows += [
                [f"{label}: first run", human(median(firsts)), "`pickle.dump`",
                 human(median(dumps)), f"{r_first:.2f}x", f"<= 1.3x: {verdict(r_first, 1.3)}"],
                [f"{label}: replay", human(median(replays)), "`pickle.load`",
                 human(median(loads)), f"{r_replay:.2f}x", f"<= 1.1x: {verdict(r_replay, 1.1)}"],
                [f"{label}: replay, `mmap=True`", human(median(mapped)), "", "", "",
                 "whole execution (lock, run record, map)"],
                [f"{label}: first run, peak extra memory", f"{median(peaks) / 2**20:,.0f} MiB",
                 "the value", f"{size / 2**20:,.0f} MiB", f"{median(peaks) / size:.0%}",
                 f"<= 10%: {verdict(median(peaks) / size, 0.10)}"],
            ]  # fmt: skip
    print(f"### Big outputs (fresh process per measure, median of {REPEATS} repeats)\n")
    print(table(["measure", "trigger_nb", "baseline", "baseline time", "ratio", "target"], rows))
    print(
        "\nA replay's time is the whole execution (run lock, run record, reading and checking "
        "the output), as the user waits for it. Reading checks every part's CRC-32 on a "
        "second thread while the next chunk is read; a mapped replay checks the trailer, "
        "the sizes and the pickle stream, not the buffers (`trigger-nb verify RUN` does).\n"
    )


def measure_size(make: str) -> int:
    code = PRELUDE + make + "\nimport pickle\nprint(len(pickle.dumps(value, protocol=5)))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout)


if __name__ == "__main__":
    main()
