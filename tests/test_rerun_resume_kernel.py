"""A re-run that ends WAITING resumes by itself in a real kernel, as a cell's own run does:
``run.rerun(...)`` in a cell, ``%%trigger_job --rerun-from`` and "Re-run from here" (issue 15).

No fake time in a kernel: the waits are 1 s and the cells sleep past them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_notebooks
from test_notebooks import Kernel, effects, texts

import trigger_nb

pytestmark = pytest.mark.slow
kernel, store = test_notebooks.kernel, test_notebooks.store  # its fixtures: a kernel, its store

# Each execution of "before" makes a new wait (a wait run again would be due at once: its time
# was set when it first ran), so a re-run from "before" ends WAITING.
CELL = """%%trigger_job napper --quiet{flags}
n = io.run_task("before", lambda: effect("before") and effects.read_text().count("before"))
io.wait(f"nap-{{n}}", 1)
io.run_task("after", lambda: effect("after"))
"woke up"
"""


def _first_run_resumed(kernel: Kernel, tmp_path: Path, store: Path) -> trigger_nb.JobRun:
    kernel.ok(CELL.format(flags=""))
    kernel.ok("await asyncio.sleep(1.8)")  # the cell's own run resumes by itself
    assert effects(tmp_path) == ["before", "after"]
    (run,) = trigger_nb.list_runs("napper", store=str(store))
    assert run.status == "SUCCESS"
    return run


def test_run_rerun_in_a_cell_ending_waiting_resumes_by_itself(
    kernel: Kernel, tmp_path: Path, store: Path
) -> None:
    run = _first_run_resumed(kernel, tmp_path, store)
    messages = kernel.ok(
        "import trigger_nb\n"
        f"again = trigger_nb.default_client().load_run({run.id!r})\n"
        "again.rerun(from_task='before').status.value"
    )
    assert texts(messages, "execute_result") == ["'WAITING'"]
    assert any("resumes by itself" in t for t in texts(messages, "display_data"))
    assert effects(tmp_path) == ["before", "after", "before"]
    kernel.ok("await asyncio.sleep(1.8)")
    assert effects(tmp_path) == ["before", "after", "before", "after"]
    assert run.reload().status == "SUCCESS" and run.executions == 4


def test_rerun_from_flag_and_the_trees_button_ending_waiting_resume_by_themselves(
    kernel: Kernel, tmp_path: Path, store: Path
) -> None:
    run = _first_run_resumed(kernel, tmp_path, store)
    kernel.ok(CELL.format(flags=" --rerun-from before"))
    assert effects(tmp_path) == ["before", "after", "before"]
    kernel.ok("await asyncio.sleep(1.8)")
    assert effects(tmp_path) == ["before", "after", "before", "after"]
    assert run.reload().status == "SUCCESS" and run.executions == 4

    # "Re-run from here" on a finished run's tree: the same view follows the resumed execution
    kernel.ok(
        "import trigger_nb\nfrom trigger_nb._widgets.live import LiveRunView\n"
        f"shown = trigger_nb.default_client().load_run({run.id!r})\n"
        "view = LiveRunView(title='napper')\n"
        "view.finish(shown)\n"
        "view.rerun_from(shown.task('before').id)\n"
        "assert 'WAITING' in view._final[0], view._final[1]"
    )
    assert effects(tmp_path)[4:] == ["before"]
    messages = kernel.ok("await asyncio.sleep(1.8)\nview._final[1].splitlines()[0]")
    assert effects(tmp_path)[4:] == ["before", "after"]
    assert run.reload().status == "SUCCESS" and run.executions == 6
    (head,) = texts(messages, "execute_result")
    assert "SUCCESS" in head  # the view's page shows the resumed execution's end
