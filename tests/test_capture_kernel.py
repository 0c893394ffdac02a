"""In a real kernel (nbclient): what tasks print, write to stderr, display (a DataFrame, an HTML
object) and plot (a figure left open, a figure shown with plt.show()) is in the cell's outputs
again, in the same order, after the kernel restarts and the cell replays, with no side effect
repeated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

pytestmark = pytest.mark.slow

SETUP = """%load_ext trigger_nb
import sys
import pandas as pd
import matplotlib.pyplot as plt
from IPython.display import HTML, display

def effect(name):
    with open("effects.log", "a") as file:
        file.write(name + "\\n")
"""

JOB = """%%trigger_job report FLAGS
print("cell starts")

def report():
    effect("report")
    print("report line 1")
    print("careful!", file=sys.stderr)
    display(pd.DataFrame({"revenue": [1, 2]}))
    display(HTML("<b>bold summary</b>"))
    return 1

io.run_task("report", report)
print("between")

def chart():
    effect("chart")
    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])  # left open: inline matplotlib would show it after the cell

io.run_task("chart", chart)

def shown():
    effect("shown")
    plt.plot([3, 2, 1])
    plt.show()
    print("after show")

io.run_task("shown", shown)
print("cell ends")
"""

WIDGET = "application/vnd.jupyter.widget-view+json"


def execute(tmp_path: Path, flags: str = "") -> list[Any]:
    """Run the notebook in a fresh kernel (a restart); the job cell's outputs."""
    cells = [SETUP, JOB.replace("FLAGS", flags)]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    return list(notebook.cells[1].outputs)


def shape(outputs: list[Any]) -> list[tuple[str, str]]:
    """What a reader sees, in order: stream text by stream, displays by their richest mime,
    without the run's tree (the first output) and the replayed captions."""
    seen: list[tuple[str, str]] = []
    for output in outputs:
        if output["output_type"] == "stream":
            seen.append((output["name"], output["text"]))
            continue
        data = output.get("data", {})
        if WIDGET in data or "tnb-run" in data.get("text/html", ""):
            continue
        if output.get("metadata", {}).get("trigger_nb", {}).get("caption"):
            continue
        for mime in ("image/png", "text/html", "text/plain"):
            if mime in data:
                seen.append((mime, data[mime] if mime != "image/png" else "png"))
                break
    # Stream outputs may be split differently by the kernel's flushes: join adjacent ones.
    joined: list[tuple[str, str]] = []
    for kind, text in seen:
        if joined and joined[-1][0] == kind and kind in ("stdout", "stderr"):
            joined[-1] = (kind, joined[-1][1] + text)
        else:
            joined.append((kind, text))
    return joined


def test_outputs_are_shown_again_in_order_after_a_restart(tmp_path: Path) -> None:
    first = execute(tmp_path)
    seen = shape(first)
    assert seen[:2] == [("stdout", "cell starts\nreport line 1\n"), ("stderr", "careful!\n")]
    assert [kind for kind, _ in seen[2:]] == [
        "text/html",  # the DataFrame's table
        "text/html",
        "stdout",
        "image/png",  # the figure left open, shown as the task ended
        "image/png",  # plt.show()
        "stdout",
    ], seen
    assert seen[3:5] == [("text/html", "<b>bold summary</b>"), ("stdout", "between\n")]
    assert seen[-1] == ("stdout", "after show\ncell ends\n")
    assert "revenue" in seen[2][1] and "<table" in seen[2][1]

    second = execute(tmp_path)  # a new kernel: everything replayed from the store
    assert shape(second) == seen
    effects = (tmp_path / "effects.log").read_text().split()
    assert effects == ["report", "chart", "shown"]  # no side effect repeated

    captions = [
        o["data"]["text/html"]
        for o in second
        if o.get("metadata", {}).get("trigger_nb", {}).get("caption")
    ]
    assert len(captions) == 3 and "replayed output of task 'report'" in captions[0]
    replayed = [o for o in second if o.get("metadata", {}).get("trigger_nb", {}).get("replayed")]
    assert len(replayed) == 4  # two displays and two figures, marked as replayed


def test_no_replay_output_leaves_the_cell_with_its_own_prints_only(tmp_path: Path) -> None:
    execute(tmp_path)
    quiet = shape(execute(tmp_path, "--no-replay-output"))
    assert quiet == [("stdout", "cell starts\nbetween\ncell ends\n")]


ORDER = """%load_ext trigger_nb
import sys
from IPython.display import HTML, display
for i in range(3):
    print("out", i)
    display(HTML(f"<i>shown {i}</i>"))
    print("err", i, file=sys.stderr)
    display(HTML(f"<b>again {i}</b>"))
display(HTML("<u>nothing printed before</u>"))
print("last")
"""


def test_what_was_printed_before_a_display_shows_before_it(tmp_path: Path) -> None:
    """The extension flushes stdout and stderr before a display only when they hold
    something (``capture._flush_pending_streams``): the order a reader sees stays the code's."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(ORDER)])
    nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    expected: list[tuple[str, str]] = []
    for i in range(3):
        expected += [("stdout", f"out {i}\n"), ("text/html", f"<i>shown {i}</i>")]
        expected += [("stderr", f"err {i}\n"), ("text/html", f"<b>again {i}</b>")]
    expected += [("text/html", "<u>nothing printed before</u>"), ("stdout", "last\n")]
    assert shape(list(notebook.cells[0].outputs)) == expected
