"""Keeping the kernel "busy" for the front end while a ``%%trigger_job`` cell runs its job.

Why this exists (measured in JupyterLab 4.6 with ipykernel 7, iopub recorded in the browser):
displaying the first widget of a kernel makes the ipywidgets manager send a
``create_subshell_request`` on the control channel. ipykernel answers control requests (and
requests on subshells) on other threads while a cell executes, each wrapped in busy/idle status
messages of its own. JupyterLab's status bar shows the last status message whatever request it
belongs to (it skips only the request types of jupyter_server's ``untracked_message_types``,
which do not include the subshell ones), so the cell's live tree turned the status to "Idle"
for the rest of the run, while ``--quiet`` (no widget) stayed "Busy".

The fix: while the cell runs, every idle published for another request is followed at once by
a busy for the cell's own request, so the last status a front end sees is the cell's. The idle
itself still goes out: a front end completes that request on it (JupyterLab resolves a request
on its reply *and* its idle), and holding it back would stall the widget manager.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _msg_id(message: Any) -> Any:
    return (message or {}).get("header", {}).get("msg_id")


@contextlib.contextmanager
def busy_while_running(shell: Any) -> Iterator[None]:
    """Within the block, restate "busy" for the executing cell after any other request's idle.

    A no-op outside an ipykernel kernel (a terminal IPython, an in-process shell in tests).
    """
    kernel: Any = getattr(shell, "kernel", None)
    # ipykernel's own hook point (private, the same since ipykernel 6): every status message of
    # every thread goes through it.
    publish = getattr(kernel, "_publish_status", None)
    cell = kernel.get_parent("shell") if publish is not None else None
    cell_id = _msg_id(cell)
    if publish is None or cell_id is None:
        yield
        return

    def publish_status(status: str, channel: str, parent: Any = None) -> None:
        publish(status, channel, parent)
        if status == "idle" and _msg_id(parent or kernel.get_parent(channel)) != cell_id:
            publish("busy", "shell", cell)  # sent by the same thread: it follows that idle

    replaced = vars(kernel).get("_publish_status")  # a block around this one, if any
    kernel._publish_status = publish_status
    try:
        yield
    finally:
        if replaced is None:
            del kernel._publish_status  # back to the class's method
        else:
            kernel._publish_status = replaced
