"""``python -m trigger_nb.demo``: the quickstart notebook, run twice in a real Jupyter kernel.

The first pass executes the notebook in a fresh kernel; the second executes it again in a new
kernel (what *Restart & Run All* does) on the same store, database and outbox. It prints what
ran, what was replayed and how many e-mails were sent, and exits 1 unless the second pass
replayed everything and the side effects happened exactly once. Everything goes into a fresh
temporary directory, so the demo can run again and again.

The notebook ships inside the package (``trigger_nb/_demo/quickstart.ipynb``, a copy of
``notebooks/quickstart.ipynb`` that a test keeps identical), so the demo runs from an installed
wheel too. Running notebooks needs nbclient and nbformat, which trigger_nb itself does not:
``pip install 'trigger-nb[demo]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import importlib.util
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CELL_TIMEOUT_SECONDS = 120
EXIT_MISSING_DEPENDENCY = 2
# What running a notebook needs beyond trigger_nb's own dependencies (the `demo` extra).
DEMO_REQUIREMENTS = ("nbclient", "nbformat")


def shipped_notebook() -> contextlib.AbstractContextManager[Path]:
    """The quickstart notebook inside the installed package (package data, not a module)."""
    return importlib.resources.as_file(
        importlib.resources.files("trigger_nb") / "_demo" / "quickstart.ipynb"
    )


def missing_requirements() -> list[str]:
    return [name for name in DEMO_REQUIREMENTS if importlib.util.find_spec(name) is None]


def execute_notebook(path: Path, workdir: Path, store: Path) -> tuple[Any, float]:
    """Execute ``path`` in a new kernel running in ``workdir`` on ``store``; (notebook, s)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_SECONDS,
        resources={"metadata": {"path": str(workdir)}},
    )
    began = time.monotonic()
    # The kernel's own log (e.g. its warning about unencrypted local TCP) goes to a file.
    with open(workdir / "kernel.log", "a") as kernel_log:
        client.execute(env={**os.environ, "TRIGGER_NB_DIR": str(store)}, stderr=kernel_log)
    return notebook, time.monotonic() - began


def final_output(notebook: Any) -> str:
    """The text the notebook's last code cell printed or returned."""
    cell = [c for c in notebook.cells if c.cell_type == "code"][-1]
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


def database_reads(workdir: Path) -> int:
    with sqlite3.connect(workdir / "users.db") as db:
        row = db.execute("SELECT value FROM counters WHERE name = 'database reads'").fetchone()
    return int(row[0])


def _counts(history: list[Any]) -> tuple[int, int]:
    return sum(e.executed for e in history), sum(e.replayed for e in history)


def run_demo(notebook_path: Path, workdir: Path) -> bool:
    """Both passes with a report on stdout; True when the replay held."""
    # The client, not `trigger_nb.list_runs`: the package root also holds the IPython extension,
    # and this module stays out of IPython's reach (pyproject.toml, [tool.importlinter]).
    from trigger_nb._client.client import TriggerClient

    store = workdir / "store"
    print(f"trigger_nb demo: {notebook_path.name}, executed twice in a real Jupyter kernel")
    print(f"working directory: {workdir}")
    first, first_seconds = execute_notebook(notebook_path, workdir, store)
    run = TriggerClient("demo", store=str(store)).list_runs("new-user")[0]
    after_first = len(run.execution_history)
    executed, replayed = _counts(run.execution_history)
    print(f"\npass 1, fresh kernel: {first_seconds:.1f} s, run {run.id} {run.status.value}")
    print(f"  executions: {after_first} (io.wait suspended the run; the kernel resumed it)")
    print(f"  tasks executed: {executed}, replayed: {replayed}")
    emails_after_first = len((workdir / "outbox.jsonl").read_text().splitlines())
    reads_after_first = database_reads(workdir)

    second, second_seconds = execute_notebook(notebook_path, workdir, store)
    run = run.reload()
    executed_again, replayed_again = _counts(run.execution_history[after_first:])
    print(f"\npass 2, kernel restarted and run all: {second_seconds:.1f} s, {run.status.value}")
    print(f"  tasks executed: {executed_again}, replayed: {replayed_again}")

    emails = [json.loads(line) for line in (workdir / "outbox.jsonl").read_text().splitlines()]
    reads = database_reads(workdir)
    same_output = final_output(first) == final_output(second)
    print("\nside effects, counted after both passes:")
    print(f"  e-mails sent: {len(emails)} (after pass 1: {emails_after_first})")
    print(f"  database reads: {reads} (after pass 1: {reads_after_first})")
    print(f"  final cell output identical on both passes: {'yes' if same_output else 'NO'}")
    held = (
        run.status.value == "SUCCESS"
        and executed_again == 0
        and len(emails) == emails_after_first == 1
        and reads == reads_after_first
        and same_output
    )
    print("\nOK: the second pass replayed every task; nothing ran twice." if held else "")
    if not held:
        print("FAILED: the replay did not hold (see the counts above)", file=sys.stderr)
    return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trigger_nb.demo", description=__doc__)
    parser.add_argument(
        "--notebook", type=Path, help="the notebook to run (default: the shipped quickstart)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args(argv)
    missing = missing_requirements()
    if missing:
        print(
            f"the demo runs a notebook in a Jupyter kernel, which needs {' and '.join(missing)}"
            " (not needed by trigger_nb itself): pip install 'trigger-nb[demo]'",
            file=sys.stderr,
        )
        return EXIT_MISSING_DEPENDENCY
    if args.notebook is not None and not args.notebook.exists():
        parser.error(f"notebook {args.notebook} not found")
    with contextlib.ExitStack() as stack:
        notebook = args.notebook or stack.enter_context(shipped_notebook())
        workdir = Path(tempfile.mkdtemp(prefix="trigger_nb_demo_"))
        try:
            return 0 if run_demo(Path(notebook).resolve(), workdir) else 1
        finally:
            if args.keep:
                print(f"kept {workdir}")
            else:
                import shutil

                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
