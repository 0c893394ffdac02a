"""Resuming a run that ``io.wait`` suspended, by itself, in a live kernel.

When a ``%%trigger_job`` cell ends with the run WAITING, a timer on the kernel's asyncio loop
triggers the run again when the wait is due. Its outcome goes to the cell that started it: an
``ipywidgets.Output`` there (widget updates reach a live frontend from anywhere), whose display
also carries the outcome as plain text/HTML, for saved notebooks and nbclient. The timer runs
in an empty ``contextvars.Context`` so ipykernel attributes its messages to the request being
handled now, not to the long-finished cell (whose request nobody listens to any more).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import html
import io as io_module
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from trigger_nb.magic_body import trim_traceback
from trigger_nb.model import RunStatus

if TYPE_CHECKING:
    from trigger_nb.job import Job
    from trigger_nb.run import JobRun
    from trigger_nb.widget import LiveRunView

# A resume that falls due while another run executes (inside nest-asyncio's nested loop) waits
# this long and tries again, so two runs never interleave on the kernel's one thread.
BUSY_RETRY_SECONDS = 0.5


def _display(obj: Any, **options: Any) -> Any:
    from IPython.display import display

    return display(obj, **options)  # type: ignore[no-untyped-call]


class ResumeOutput:
    """The place in the starting cell where the resumed run's outcome shows."""

    def __init__(self, shell: Any, text: str) -> None:
        import ipywidgets

        self._shell = shell
        self.widget = ipywidgets.Output()
        self.widget.add_class("trigger-nb-resume")
        self._handle: Any = None
        self.show({"text/plain": text}, {})

    def show(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.widget.outputs = ({"output_type": "display_data", "data": data, "metadata": metadata},)
        widget_data, _ = self._shell.display_formatter.format(self.widget)
        bundle = {**widget_data, **data}
        if self._handle is None:
            self._handle = _display(bundle, raw=True, metadata=metadata, display_id=True)
        else:
            self._handle.update(bundle, raw=True, metadata=metadata)


class Resumer:
    """The kernel's resume timers, one per waiting run started from a cell."""

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._busy = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Mark a run executing on the kernel thread (timers falling due meanwhile wait)."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1

    def cancel(self, run_id: str) -> None:
        timer = self._timers.pop(run_id, None)
        if timer is not None:
            timer.cancel()

    def schedule(
        self,
        job: Job,
        payload: Any,
        run: JobRun,
        view: LiveRunView | None,
        output: ResumeOutput | None = None,
    ) -> None:
        due = run.wait_until
        if due is None:
            return
        when = due.strftime("%H:%M:%S UTC")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a terminal IPython without a running loop: no timer to set
            print(f"run {run.id} waits until {when}: re-run this cell then to continue")
            return
        text = f"run {run.id} waits until {when}; it resumes by itself (or re-run this cell)"
        if output is None:
            output = ResumeOutput(self._shell, text)
        else:
            output.show({"text/plain": text}, {})
        delay = max((due - job.client.clock.now()).total_seconds(), 0.0)
        self._set_timer(loop, delay, job, payload, run.id, view, output)

    def _set_timer(self, loop: asyncio.AbstractEventLoop, delay: float, *args: Any) -> None:
        run_id = args[2]
        self._timers[run_id] = loop.call_later(
            delay, self._resume, *args, context=contextvars.Context()
        )

    def _resume(
        self,
        job: Job,
        payload: Any,
        run_id: str,
        view: LiveRunView | None,
        output: ResumeOutput,
    ) -> None:
        self._timers.pop(run_id, None)
        if self._busy:
            loop = asyncio.get_running_loop()
            self._set_timer(loop, BUSY_RETRY_SECONDS, job, payload, run_id, view, output)
            return
        current = job.client.store.load_run(run_id)
        if current is not None and current.status is RunStatus.CANCELED:  # run.cancel() meanwhile
            output.show({"text/plain": f"run {run_id} was canceled; re-run its cell to go on"}, {})
            return
        printed = io_module.StringIO()
        try:
            with self.running(), contextlib.redirect_stdout(printed):
                listeners = [view.listener] if view is not None else []
                run = job.trigger(payload, run_id=run_id, listeners=listeners)
        except (Exception, KeyboardInterrupt) as error:  # nobody to raise to: show it
            output.show({"text/plain": f"run {run_id}: resuming failed: {error!r}"}, {})
            return
        if view is not None:
            view.finish(run)
        if run.status is RunStatus.WAITING:
            self.schedule(job, payload, run, view, output)
            return
        data, metadata = self._outcome(run)
        text = printed.getvalue()
        if text:
            data["text/plain"] = text + data.get("text/plain", "")
            if "text/html" in data:
                data["text/html"] = f"<pre>{html.escape(text)}</pre>{data['text/html']}"
        output.show(data, metadata)

    def _outcome(self, run: JobRun) -> tuple[dict[str, Any], dict[str, Any]]:
        if run.status is RunStatus.SUCCESS and run.output is not None:
            data, metadata = self._shell.display_formatter.format(run.output)
            return dict(data), dict(metadata)
        if run.exception is not None:
            text = "".join(traceback.format_exception(trim_traceback(run.exception)))
            return {"text/plain": text}, {}
        return {"text/plain": f"run {run.id}: {run.status.value}"}, {}
