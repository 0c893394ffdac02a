"""Memory held by the replay of a big run: 100,000 small tasks, against raw ``Cache.get``.

Run: ``.venv/bin/python bench/bench_replay_memory.py`` (``TRIGGER_NB_BENCH_MEMORY_TASKS``
overrides the task count). Every measure runs in a fresh process, so nothing one leaves behind
counts against another:

- raw: open a diskcache holding the same outputs under N string keys, ``get`` each into a list;
- replay: ``job.trigger()`` of the completed run, whose run function keeps each task's result
  in a list too (what the raw loop keeps).

"Held" is the growth of the peak resident set from just before the loop or the replay (store
open, modules imported) to its end: what the replay itself needs, not the interpreter's and
imports' fixed cost, which differs between the two (pydantic alone is ~20 MiB). Both totals are
shown as well. Target (issue 16): held <= 2x the raw get loop's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import REPEATS, median, table, verdict

TASKS = int(os.environ.get("TRIGGER_NB_BENCH_MEMORY_TASKS", "100000"))

# Each task's output: a small record, as a data pipeline keeps per item (~130 bytes pickled).
_SETUP = """
import os, sys, json
def output(i):
    return {"id": i, "name": f"user-{i}", "email": f"user-{i}@example.com", "score": i * 0.5}
# The kernel's high-water mark of this process, reset first (getrusage's maxrss would keep the
# resident set of the process this one was forked from).
open("/proc/self/clear_refs", "w").write("5")
def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
def current_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
"""

_WRITE = (
    _SETUP
    + """
import diskcache
from trigger_nb import DiskStore, TriggerClient
root, n = sys.argv[1], int(sys.argv[2])
cache = diskcache.Cache(root + "/raw", eviction_policy="none")
for i in range(n):
    cache.set(f"task-{i}", output(i))
cache.close()
client = TriggerClient("bench", store=DiskStore(root + "/store"))
job = client.define_job("bench-replay-memory")
@job.run
def run(payload, io, ctx):
    return len([io.run_task(f"task-{i}", lambda i=i: output(i)) for i in range(n)])
assert job.trigger().status == "SUCCESS"
"""
)

_RAW = (
    _SETUP
    + """
import diskcache
root, n = sys.argv[1], int(sys.argv[2])
cache = diskcache.Cache(root + "/raw", eviction_policy="none")
cache.get("task-0")
before = current_mib()
values = [cache.get(f"task-{i}") for i in range(n)]
assert values[-1] == output(n - 1)
print(json.dumps({"before": before, "peak": rss_mib()}))
"""
)

_REPLAY = (
    _SETUP
    + """
from trigger_nb import DiskStore, TriggerClient
root, n = sys.argv[1], int(sys.argv[2])
client = TriggerClient("bench", store=DiskStore(root + "/store"))
job = client.define_job("bench-replay-memory")
values = []
@job.run
def run(payload, io, ctx):
    values[:] = [io.run_task(f"task-{i}", lambda i=i: output(i)) for i in range(n)]
    return len(values)
client.store.load_run(job.run_id_for(None))  # the store opened, its modules imported
before = current_mib()
run = job.trigger()
assert run.status == "SUCCESS" and run.execution_history[-1].replayed == n
assert values[-1] == output(n - 1)
print(json.dumps({"before": before, "peak": rss_mib()}))
"""
)


def _measure(script: str, root: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", script, str(root), str(TASKS)],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="trigger-nb-bench-") as tmp:
        root = Path(tmp)
        subprocess.run([sys.executable, "-c", _WRITE, str(root), str(TASKS)], check=True)
        raws, replays = [], []
        for _ in range(REPEATS):
            raws.append(_measure(_RAW, root))
            replays.append(_measure(_REPLAY, root))
    held_raw = median([m["peak"] - m["before"] for m in raws])
    held_ours = median([m["peak"] - m["before"] for m in replays])
    total_raw, total_ours = median([m["peak"] for m in raws]), median([m["peak"] for m in replays])
    ratio = held_ours / held_raw
    rows = [
        ["held by the replay / the get loop", f"{held_ours:,.0f} MiB", f"{held_raw:,.0f} MiB",
         f"{ratio:.2f}x", f"<= 2.0x: {verdict(ratio, 2.0)}"],
        ["peak resident set of the process", f"{total_ours:,.0f} MiB", f"{total_raw:,.0f} MiB",
         f"{total_ours / total_raw:.2f}x", "imports included"],
    ]  # fmt: skip
    print(f"### Replay memory ({TASKS:,} small tasks, fresh process each, median of {REPEATS})\n")
    print(table(["measure", "replay", "raw `Cache.get` loop", "ratio", "target"], rows))


if __name__ == "__main__":
    main()
