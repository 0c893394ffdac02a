"""The public API is pinned, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import trigger_nb


def test_public_names() -> None:
    assert len(set(trigger_nb.__all__)) == len(trigger_nb.__all__)
    assert all(hasattr(trigger_nb, name) for name in trigger_nb.__all__)
    for name in (
        "TriggerClient", "event_trigger", "RetryOptions", "RetryAt", "SKIP_RETRYING", "retry",
        "Integration", "JobRun", "DiskStore", "MemoryStore", "FakeClock", "send_event",
        "default_client", "list_runs", "load_run", "load_ipython_extension",
        "InvalidCacheKeyError", "DuplicateCacheKeyError", "InvalidPayloadError", "TaskError",
        "TaskTimeoutError", "TaskOutputError", "CacheReadError", "StoreError",
    ):  # fmt: skip
        assert name in trigger_nb.__all__ and hasattr(trigger_nb, name)
    assert trigger_nb.retry.standard_backoff.limit == 8


def test_errors_subclass_the_matching_builtins() -> None:
    assert issubclass(trigger_nb.InvalidCacheKeyError, TypeError)
    assert issubclass(trigger_nb.InvalidPayloadError, ValueError)
    assert issubclass(trigger_nb.TaskTimeoutError, TimeoutError)
    assert issubclass(trigger_nb.StoreError, OSError)
    from trigger_nb.errors import ControlFlow, RunSuspended

    assert not issubclass(RunSuspended, Exception) and issubclass(RunSuspended, ControlFlow)


def test_import_does_not_load_ipython_or_ipywidgets() -> None:
    code = (
        "import sys, trigger_nb; "
        "print(sorted(m for m in ('IPython', 'ipywidgets', 'ipykernel') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


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
