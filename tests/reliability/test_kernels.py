"""Two Jupyter kernels, two notebooks in one directory, different jobs at the same time.

Both notebooks use the default store (``./.trigger_nb`` next to them) and the same cache keys; they
meet at a barrier so their runs really overlap. Neither may see, replay or damage the other's tasks.
"""

from __future__ import annotations

import asyncio
import collections
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from trigger_nb import DiskStore, TaskStatus

pytestmark = pytest.mark.slow

TASKS = 60

SETUP = """
import time
from pathlib import Path
import trigger_nb

NAME, OTHER, TASKS = {name!r}, {other!r}, {tasks}
Path(f"ready-{{NAME}}").touch()
deadline = time.monotonic() + 90
while not Path(f"ready-{{OTHER}}").exists():  # a barrier: both runs start together
    assert time.monotonic() < deadline, "the other kernel never came"
    time.sleep(0.01)

client = trigger_nb.default_client()
job = client.define_job(f"job-{{NAME}}")

@job.run
def run(payload, io, ctx):
    results = []
    with open(f"effects-{{NAME}}.txt", "a") as log:
        for i in range(TASKS):
            def effect(i=i):
                log.write(f"{{i}}\\n")
                log.flush()
                time.sleep(0.01)
                return f"{{NAME}}-{{i}}"
            results.append(io.run_task(["step", i], effect))
    return results
"""
FIRST = """
first = job.trigger()
h = first.execution_history[-1]
print(first.status, h.executed, h.replayed)
"""
SECOND = """
second = job.trigger()
h = second.execution_history[-1]
assert second.output == first.output == [f"{NAME}-{i}" for i in range(TASKS)]
print(second.status, h.executed, h.replayed)
"""


def notebook(name: str, other: str) -> Any:
    cells = [SETUP.format(name=name, other=other, tasks=TASKS), FIRST, SECOND]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


async def execute_both(notebooks: list[Any], workdir: Path) -> None:
    clients = [
        NotebookClient(
            nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(workdir)}}
        )
        for nb in notebooks
    ]
    await asyncio.gather(*(client.async_execute() for client in clients))


def printed(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream").strip()


def test_two_kernels_run_different_jobs_in_one_directory_without_interference(
    run_loop: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRIGGER_NB_DIR", raising=False)  # both kernels: ./.trigger_nb
    notebooks = [notebook("a", "b"), notebook("b", "a")]

    run_loop(execute_both(notebooks, tmp_path))

    for nb in notebooks:
        assert printed(nb.cells[1]) == f"SUCCESS {TASKS} 0"
        assert printed(nb.cells[2]) == f"SUCCESS 0 {TASKS}", "the second execution replays all"
    for name in "ab":
        counts = collections.Counter((tmp_path / f"effects-{name}.txt").read_text().split())
        assert counts == {str(i): 1 for i in range(TASKS)}, f"job-{name}'s side effects"

    store = DiskStore(tmp_path / ".trigger_nb")
    runs = {run.job_id: run for run in store.list_runs()}
    assert sorted(runs) == ["job-a", "job-b"]
    a, b = runs["job-a"], runs["job-b"]
    first_a, first_b = a.execution_history[0], b.execution_history[0]
    assert first_a.finished_at is not None and first_b.finished_at is not None
    assert first_a.started_at < first_b.finished_at, "the first executions overlapped"
    assert first_b.started_at < first_a.finished_at, "the first executions overlapped"
    for name, run in (("a", a), ("b", b)):
        snapshot = store.load_snapshot(run.id)
        tasks = snapshot.tasks()
        assert len(tasks) == TASKS and all(t.status is TaskStatus.COMPLETED for t in tasks)
        outputs = sorted(pickle.loads(store.read_output(run.id, t.id)) for t in tasks)
        assert outputs == sorted(f"{name}-{i}" for i in range(TASKS))
    store.close()
