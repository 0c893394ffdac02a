"""What the run view costs a ``%%trigger_job`` cell, measured in a real Jupyter kernel.

Run: ``.venv/bin/python bench/bench_view.py [--browser]`` (``TRIGGER_NB_BENCH_REPEATS`` sets the
repeats). ``--browser``: also, in JupyterLab + Chromium, how long keys typed into another cell
take to appear while a live 1,000 x 5 ms run draws its view (the issue's limit: 0.5 s).

A kernel (nbclient, so every display and widget message is serialized and sent over ZeroMQ)
runs the magic through ``ip.run_cell_magic`` in a timed loop, ``--quiet`` (no view) and with the
view interleaved, and prints the medians and their ratio. The issue's limits (issue 15, part 5):

- replay of a 1,000-task run (10 parents x 100 children) with the view <= 2x ``--quiet``;
- first run of 1,000 trivial tasks <= 1.3x;
- first run of 1,000 tasks of 5 ms each <= 1.05x.

The view's time is all of it: the live widget, its redraws, and at the end the run's page
(``_render.document``: JSON of every task, a static tree of 50 rows, a text outline) and the
hidden widget linking it to the kernel. Where it goes is printed too (``page`` and ``text``
rows, in the kernel).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench import REPEATS, table  # noqa: E402

KERNEL_CELL = r"""
import gc, statistics, sys, tempfile, time
sys.path.insert(0, {here!r})
from _bench import human, table, verdict
import trigger_nb

ip = get_ipython()
ip.run_line_magic("load_ext", "trigger_nb")
REPEATS = {repeats}
NESTED = (
    "for group in range(10):\n"
    "    io.run_task(['group', group], lambda group=group: [\n"
    "        io.run_task(['item', group, i], lambda i=i: i) for i in range(100)])\n"
)
SLOW = (
    "import time\n"
    "for i in range(1000):\n"
    "    io.run_task(['slow', i], lambda: time.sleep(0.005))\n"
)

def magic(line, body):
    gc.collect()  # one measure's garbage is not collected on the next one's clock
    began, cpu = time.perf_counter(), time.process_time()
    ip.run_cell_magic("trigger_job", line, body)
    return time.perf_counter() - began, time.process_time() - cpu

def pair(line_quiet, line_view, body, repeats):
    quiet, view = [], []
    for _ in range(repeats):
        quiet.append(magic(line_quiet, body))
        view.append(magic(line_view, body))
    m = statistics.median
    return [m(t[0] for t in quiet), m(t[0] for t in view),
            m(t[1] for t in quiet), m(t[1] for t in view)]

rows = []
# Each replays a run of its own (as re-executing one cell does): a quiet execution of the
# view's run in between would be one the view did not see, and it would read the run back.
magic("replay", NESTED)  # the runs every replay replays; warms imports and SQLite
magic("replay-quiet --quiet", NESTED)
for label, job, flags, body, limit, repeats in [
    ("replay, 1,010 tasks", "replay", "", NESTED, 2.0, max(REPEATS, 15)),
    ("first run, 1,010 trivial tasks", "first", "--new-run", NESTED, 1.3, max(REPEATS, 15)),
    ("first run, 1,000 tasks x 5 ms", "slow", "--new-run", SLOW, 1.05, 3),
]:
    quiet_job = job + "-quiet" if job == "replay" else job
    quiet, view, quiet_cpu, view_cpu = pair(
        f"{{quiet_job}} --quiet {{flags}}", f"{{job}} {{flags}}", body, repeats)
    ratio, cpu_ratio = view / quiet, view_cpu / quiet_cpu
    rows.append([label, human(quiet), human(view), f"{{ratio:.2f}}",
                 f"<= {{limit}}: {{verdict(ratio, limit)}}", f"{{cpu_ratio:.2f}}", repeats])
print(table(["in a kernel (nbclient)", "--quiet", "with the view", "ratio", "limit",
             "CPU ratio", "repeats"], rows))

# where the view's time goes at the end of the replay: the page and the text outline
from trigger_nb._render.document import document_from
from trigger_nb._render.text import text_from
from trigger_nb._render.tree import build_tree, group_logs
from trigger_nb._render.html import NOTEBOOK_MAX_ROWS
client = trigger_nb.default_client()
(record,) = [r for r in client.store.list_runs() if r.job_id == "replay"]
run = client.load_run(record.id)
data = run.run_data()
nodes = build_tree(data.tasks, data.record.latest_execution)
logs = group_logs(data.logs)
def best(fn, n=15):
    times = []
    for _ in range(n):
        began = time.perf_counter(); fn(); times.append(time.perf_counter() - began)
    return statistics.median(times)
page = document_from(data.record, nodes, logs, now=data.now)
print()
print(table(["the finished view of 1,010 tasks", "median"], [
    ["tree (build_tree)",
     human(best(lambda: build_tree(data.tasks, data.record.latest_execution)))],
    ["page (document_from: JSON + 50-row static tree), warm",
     human(best(lambda: document_from(data.record, nodes, logs, now=data.now)))],
    ["text outline (50 rows)",
     human(best(lambda: text_from(data.record, nodes, now=data.now, max_rows=NOTEBOOK_MAX_ROWS)))],
    ["page size", f"{{len(page.encode()) / 1024:,.0f}} KiB"],
]))
"""


def in_kernel(repeats: int) -> str:
    import tempfile

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(KERNEL_CELL.format(here=str(HERE), repeats=repeats))]
    with tempfile.TemporaryDirectory() as tmp:
        client = NotebookClient(
            nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": tmp}}
        )
        client.execute(cwd=tmp)
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    return "\n".join(line for line in text.splitlines() if line.startswith("|") or not line)


TYPING_CELLS = [
    "%load_ext trigger_nb",
    "%%trigger_job typing\nimport time\n"
    "for i in range(1000):\n    io.run_task(['slow', i], lambda: time.sleep(0.005))\n",
    "",
]
# Times from each key press in a cell's editor to the character on screen, in the page itself.
TYPING_JS = """
async (text) => {
  const editor = document.querySelectorAll('.jp-CodeCell .cm-content')[2];
  editor.focus();
  const lags = [];
  for (const ch of text) {
    const began = performance.now();
    document.execCommand('insertText', false, ch);
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    if (!editor.textContent.endsWith(ch)) return null;
    lags.push(performance.now() - began);
    await new Promise((done) => setTimeout(done, 50));
  }
  return lags;
}
"""


def typing_in_browser() -> str:
    """Keys typed into another cell while a live 1,000 x 5 ms run draws its view: the time
    each takes to appear (two animation frames after the key: it is on screen)."""
    sys.path.insert(0, str(HERE.parent))
    import tempfile

    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import _start_server
    from tests.browser.lab import (
        CHROMIUM,
        CHROMIUM_ARGS,
        run_all_cells,
        wait_for_execution,
        wait_for_kernel_idle,
        write_notebook,
    )

    with tempfile.TemporaryDirectory() as tmp:
        server = _start_server(Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                path = write_notebook(server, "typing", TYPING_CELLS)
                page.goto(server.lab_url(path))
                wait_for_kernel_idle(page)
                run_all_cells(page)
                page.locator(".tnb-live .tnb-task").first.wait_for(timeout=60_000)
                lags = page.evaluate(TYPING_JS, "x = 12345 + 678")
                live = page.locator(".tnb-live .tnb-task").count() > 0
                wait_for_execution(page, 2, timeout=120)
                browser.close()
        finally:
            server.stop()
    if not lags:
        return "typing: a key did not appear"
    lags.sort()
    return table(
        ["typing in another cell during a live 1,000 x 5 ms run", "value"],
        [
            ["keys typed", str(len(lags))],
            ["median time to appear", f"{lags[len(lags) // 2]:.0f} ms"],
            ["slowest", f"{lags[-1]:.0f} ms (limit 500 ms)"],
            ["the run was still live after typing", "yes" if live else "no"],
        ],
    )


def main() -> None:
    print("### The view under a `%%trigger_job` cell, in a kernel (issue 15)")
    print()
    print(
        "`bench/bench_view.py`: nbclient runs one cell that calls `ip.run_cell_magic` in a timed"
        " loop, `--quiet` and with the view interleaved (each replays a run of its own); wall"
        " and CPU (`time.process_time`, every thread of the kernel) medians. The view's time is"
        " all of it: the live widget and its redraws, then the run page and its message."
    )
    print()
    print(in_kernel(REPEATS).strip())
    print()
    if "--browser" in sys.argv:
        print(typing_in_browser())
        print()


if __name__ == "__main__":
    main()
