"""The public API is pinned, and importing it stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import trigger_nb

# The public API, exactly (sorted as ruff's RUF022 keeps `__all__`): adding or removing a name
# is a decision, so it changes this list too.
PUBLIC_NAMES = [
    "IO",
    "SKIP_RETRYING",
    "CacheReadError",
    "Context",
    "DaskExecutor",
    "DiskStore",
    "DuplicateCacheKeyError",
    "EventTrigger",
    "FakeClock",
    "Integration",
    "InvalidCacheKeyError",
    "InvalidOptionError",
    "InvalidPayloadError",
    "Job",
    "JobDefinitionError",
    "JobRun",
    "Logger",
    "MemoryStore",
    "NotFoundError",
    "RetryAt",
    "RetryOptions",
    "RunBusyError",
    "RunConflictError",
    "RunStatus",
    "StaleTaskError",
    "Store",
    "StoreError",
    "StoreVersionError",
    "SystemClock",
    "TaskError",
    "TaskHandle",
    "TaskNotFoundError",
    "TaskOutputError",
    "TaskStatus",
    "TaskTimedOutError",
    "TaskTimeoutError",
    "TaskView",
    "TriggerClient",
    "TriggerNbError",
    "WorkerLostError",
    "__version__",
    "default_client",
    "event_trigger",
    "list_runs",
    "load_ipython_extension",
    "load_run",
    "retry",
    "send_event",
]
# What neither `import trigger_nb` nor `trigger-nb --help` may load (SPEC: start-up stays light).
HEAVY_MODULES = ("IPython", "ipykernel", "ipywidgets", "pydantic")


def test_public_names() -> None:
    assert trigger_nb.__all__ == PUBLIC_NAMES
    assert all(hasattr(trigger_nb, name) for name in trigger_nb.__all__)
    assert trigger_nb.retry.standard_backoff.limit == 8


def test_errors_subclass_the_matching_builtins() -> None:
    assert issubclass(trigger_nb.InvalidCacheKeyError, TypeError)
    assert issubclass(trigger_nb.InvalidPayloadError, ValueError)
    assert issubclass(trigger_nb.TaskTimeoutError, TimeoutError)
    assert issubclass(trigger_nb.StoreError, OSError)
    from trigger_nb.errors import ControlFlow, RunSuspended

    assert not issubclass(RunSuspended, Exception) and issubclass(RunSuspended, ControlFlow)


def _loaded_in_a_child(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; which of HEAVY_MODULES it left in ``sys.modules``."""
    report = f"\nimport sys\nprint(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code + report], capture_output=True, text=True, check=True
    )
    loaded: list[str] = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    return loaded


def test_import_loads_neither_ipython_nor_ipywidgets_nor_pydantic() -> None:
    assert _loaded_in_a_child("import trigger_nb") == []


# `--help` runs in the child's own process (not a second one), so its sys.modules can be read.
HELP = """
import contextlib, io, runpy, sys
sys.argv = ["trigger-nb", "--help"]
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
    {call}
assert "usage:" in out.getvalue(), out.getvalue()
"""


@pytest.mark.parametrize(
    "call",
    [
        "from trigger_nb._cli.main import main; main()",  # the console script's entry point
        "runpy.run_module('trigger_nb', run_name='__main__')",  # python -m trigger_nb
    ],
    ids=["trigger-nb", "python-m-trigger_nb"],
)
def test_cli_help_loads_neither_ipython_nor_ipywidgets_nor_pydantic(call: str) -> None:
    assert _loaded_in_a_child(HELP.format(call=call)) == []


def test_cli_help_runs_as_a_console_script_and_as_a_module() -> None:
    script = Path(sys.executable).with_name("trigger-nb")
    commands = [[sys.executable, "-m", "trigger_nb", "--help"]]
    if script.exists():  # installed with pip (scripts/test installs it)
        commands.append([str(script), "--help"])
    for argv in commands:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.startswith("usage: trigger-nb"), done


def test_default_client_is_shared(tmp_path: object) -> None:
    assert trigger_nb.default_client() is trigger_nb.default_client()
    job = trigger_nb.default_client().define_job(
        id="shared", trigger=trigger_nb.event_trigger("ping")
    )
    job.run(lambda payload, io, ctx: payload)
    (run,) = trigger_nb.send_event("ping", {"n": 1})
    assert run.output == {"n": 1}
    assert [r.id for r in trigger_nb.list_runs(job="shared")] == [run.id]
    assert trigger_nb.load_run(run.id).output == {"n": 1}
