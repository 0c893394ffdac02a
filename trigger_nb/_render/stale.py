"""How every view words a stale task: why it is stale, what that means, how to run it again.

A task is stale in an execution that replayed it although its code or inputs changed since it
ran (``model.stale_reasons``; SPEC 3.5). The tree marks it (``TaskNode.stale``); the static HTML,
the text, the live and interactive trees and ``trigger-nb show`` word it with these. The hint
names what runs it again, in a notebook: nothing here (nor ``trigger-nb``) can run a task's code.
"""

from __future__ import annotations

from collections.abc import Iterable

# What runs a stale task again, in a notebook (set in code in the HTML views)
REFRESH_CALL = "refresh=True"
REFRESH_CELL = "%%trigger_job ... --refresh-stale"


def stale_meaning(count: int = 1) -> str:
    """``replayed although its code or inputs changed since it ran`` (for ``count`` tasks)."""
    its, it = ("its", "it") if count == 1 else ("their", "they")
    return f"replayed although {its} code or inputs changed since {it} ran"


def stale_hint(count: int = 1) -> str:
    """How to run ``count`` stale tasks again."""
    them = "it" if count == 1 else "them"
    return (
        f"to run {them} again: {REFRESH_CALL} on the run_task call, or re-run the cell with "
        f"{REFRESH_CELL}"
    )


def stale_summary(count: int) -> str:
    """A run's note under its header: ``2 stale tasks: replayed although ...; to run ...``."""
    tasks = "task" if count == 1 else "tasks"
    return f"{count} stale {tasks}: {stale_meaning(count)}; {stale_hint(count)}"


def stale_text(reasons: Iterable[str]) -> str:
    """``stale: closure value 'threshold' changed; helper 'clean' changed``."""
    return "stale: " + "; ".join(reasons)
