"""Resuming a run that ``io.wait`` suspended, by itself, in a live kernel.

When a ``%%trigger_job`` cell ends with the run WAITING, a timer on the kernel's asyncio loop
triggers the run again when the wait is due. Its outcome goes to the cell that started it: an
``ipywidgets.Output`` there (widget updates reach a live frontend from anywhere), whose display
also carries the outcome as plain text/HTML, for saved notebooks and nbclient. The timer runs
in an empty ``contextvars.Context`` so ipykernel attributes its messages to the request being
handled now, not to the long-finished cell (whose request nobody listens to any more).

A resumed execution that fails, or a resume that cannot run, must not pass silently: the cell
shows a red banner (the error, its trimmed traceback, how to go on), and the same news goes to
``sys.stderr`` at once, for a user who is elsewhere in the notebook (see ``Failure.alert``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import html
import io as io_module
import sys
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from trigger_nb._client.client import TriggerClient, default_client
from trigger_nb._client.run import finished_run
from trigger_nb._core.model import RunStatus
from trigger_nb._engine.events import as_observer
from trigger_nb._jupyter.body import trim_traceback
from trigger_nb._render.format import format_utc_time
from trigger_nb._render.tree import COLORS
from trigger_nb._widgets.output import display
from trigger_nb.errors import NotFoundError, TriggerNbError

if TYPE_CHECKING:
    from trigger_nb._client.job import Job
    from trigger_nb._client.run import JobRun
    from trigger_nb._widgets.live import LiveRunView

# A resume that falls due while another run executes (inside nest-asyncio's nested loop) waits
# this long and tries again, so two runs never interleave on the kernel's one thread.
BUSY_RETRY_SECONDS = 0.5
FAILED_COLOR = COLORS["FAILURE"]
FAILED_ADVICE = (
    "Fix the code, then re-run {cell}: completed tasks are replayed, the failed task runs again."
)
RESUME_ADVICE = (
    "Fix the cause, then re-run {cell} to resume the run: completed tasks are replayed, "
    "not repeated."
)


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
            self._handle = display(bundle, raw=True, metadata=metadata, display_id=True)
        else:
            self._handle.update(bundle, raw=True, metadata=metadata)


class Resumer:
    """The kernel's resume timers, one per waiting run started from a cell."""

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._busy = 0
        self._last_cell: Any = None  # the request of the cell executed last (see Failure.alert)
        shell.events.register("pre_run_cell", self._cell_started)
        # run.rerun()/run.resume() ending WAITING (in a cell, or "Re-run from here" in a tree)
        # sets a timer too, as a %%trigger_job cell's own execution does
        default_client().on_waiting = self.rerun_waiting

    def _cell_started(self, info: Any) -> None:
        kernel = getattr(self._shell, "kernel", None)
        if kernel is not None and hasattr(kernel, "get_parent"):
            self._last_cell = kernel.get_parent("shell")

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
        run: JobRun,
        view: LiveRunView | None,
        output: ResumeOutput | None = None,
    ) -> None:
        due = run.wait_until
        if due is None:
            return
        when = format_utc_time(due)
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
        self._set_timer(loop, delay, job, run.id, view, output)

    def rerun_waiting(self, run: JobRun, listeners: tuple[Any, ...]) -> None:
        """``TriggerClient.on_waiting``: a run re-executed by its handle ended WAITING. The
        live view among ``listeners`` (the tree whose "Re-run from here" started it) follows
        the resumed execution, as it followed this one."""
        from trigger_nb._widgets.live import LiveRunView

        client = run._client
        if client is None or not isinstance(client, TriggerClient):
            return
        try:
            job = client.get_job(run.record.job_id)
        except NotFoundError:  # rerun() checked it; a job removed meanwhile cannot resume
            return
        owners = (getattr(listener, "__self__", None) for listener in listeners)
        view = next((owner for owner in owners if isinstance(owner, LiveRunView)), None)
        self.schedule(job, run, view)

    def _set_timer(self, loop: asyncio.AbstractEventLoop, delay: float, *args: Any) -> None:
        run_id = args[1]
        self.cancel(run_id)  # one timer per run: a re-run while one waits replaces it
        self._timers[run_id] = loop.call_later(
            delay, self._resume, *args, context=contextvars.Context()
        )

    def _resume(
        self,
        job: Job,
        run_id: str,
        view: LiveRunView | None,
        output: ResumeOutput,
    ) -> None:
        self._timers.pop(run_id, None)
        if self._busy:
            loop = asyncio.get_running_loop()
            self._set_timer(loop, BUSY_RETRY_SECONDS, job, run_id, view, output)
            return
        printed = io_module.StringIO()
        try:
            current = job.client.store.load_run(run_id)
            if current is None:
                raise NotFoundError(f"run {run_id} no longer exists (cleared?)")
            if current.status is RunStatus.CANCELED:  # run.cancel() meanwhile
                canceled = f"run {run_id} was canceled; re-run its cell to go on"
                output.show({"text/plain": canceled}, {})
                return
            with self.running(), contextlib.redirect_stdout(printed):
                # The run's stored payload, not the notebook's variable: that may have changed
                # since the cell ran, and the run is identified by what it was started with.
                observers = [as_observer(view.listener)] if view is not None else []
                outcome = job.client.execute_again(
                    current, observers=observers, replay_output=False
                )
                run = finished_run(outcome, job.client)
        except (Exception, KeyboardInterrupt) as error:  # nobody to raise to: show it
            failure = Failure(job.id, run_id, "could not resume by itself", error, RESUME_ADVICE)
            _show(output, failure.bundle(), printed.getvalue())
            failure.alert(self._last_cell)
            return
        if view is not None:
            view.finish(run)
        if run.status is RunStatus.WAITING:
            self.schedule(job, run, view, output)
            return
        if run.status is RunStatus.FAILURE:
            failure = Failure(job.id, run_id, "failed after resuming by itself", run, FAILED_ADVICE)
            _show(output, failure.bundle(), printed.getvalue())
            failure.alert(self._last_cell)
            return
        _show(output, self._outcome(run), printed.getvalue())

    def _outcome(self, run: JobRun) -> tuple[dict[str, Any], dict[str, Any]]:
        if run.status is RunStatus.SUCCESS and run.output is not None:
            data, metadata = self._shell.display_formatter.format(run.output)
            return dict(data), dict(metadata)
        return {"text/plain": f"run {run.id}: {run.status.value}"}, {}


def _show(output: ResumeOutput, bundle: tuple[dict[str, Any], dict[str, Any]], text: str) -> None:
    """Show ``bundle`` in the starting cell, below what the resumed execution printed."""
    data, metadata = bundle
    if text:
        data["text/plain"] = text + data.get("text/plain", "")
        if "text/html" in data:
            data["text/html"] = f"<pre>{html.escape(text)}</pre>{data['text/html']}"
    output.show(data, metadata)


class Failure:
    """A resumed run that failed (``cause`` is the run) or a resume that raised (the error)."""

    def __init__(
        self, job_id: str, run_id: str, what: str, cause: JobRun | BaseException, advice: str
    ) -> None:
        self.job_id, self.advice = job_id, advice
        error = cause if isinstance(cause, BaseException) else cause.exception
        if error is not None:
            summary = f"{type(error).__name__}: {error}"
            self.details = "".join(traceback.format_exception(trim_traceback(error))).rstrip()
            if cause is error and isinstance(error, TriggerNbError):
                self.details = ""  # trigger_nb's own errors say what to fix; its frames would not
        else:  # the run failed in another process: only its stored error is known
            assert not isinstance(cause, BaseException)
            summary = cause.error.summary() if cause.error else cause.status.value
            self.details = cause.error.traceback.rstrip() if cause.error else ""
        self.headline = f"\u2717 run {run_id} {what}: {summary}"

    def bundle(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The banner for the starting cell, as text and as a red-bordered block."""
        advice = self.advice.format(cell="this cell")
        text = "\n".join(part for part in (self.headline, self.details, advice) if part)
        details = f'<pre style="{_PRE_STYLE}">{html.escape(self.details)}</pre>'
        block = (
            f'<div class="tnb-resume-failed" style="{_BLOCK_STYLE}">'
            f'<div style="color:{FAILED_COLOR};font-weight:600">{html.escape(self.headline)}</div>'
            f"{details if self.details else ''}<div>{html.escape(advice)}</div></div>"
        )
        return {"text/plain": text, "text/html": block}, {}

    def alert(self, last_cell: Any) -> None:
        """Tell the user now, wherever they are: one message on the kernel's stderr, under
        ``last_cell`` (the request of the cell executed last, when known).

        Measured with jupyter_client and JupyterLab 4: the timer fires when no cell may be
        executing, and ipykernel's stderr then gives the stream the header of the last request
        it handled, whatever it was. JupyterLab shows a stream of a finished execute request in
        that cell, in red, but drops one of any other request (a completion, a widget message:
        there are many). So the stream is given the request of the cell executed last: the one
        the user is at, or the one executing now. The banner in the starting cell stays.
        """
        where = f"The %%trigger_job {self.job_id} cell that started it shows the details."
        advice = self.advice.format(cell="that cell")
        stream: Any = sys.stderr
        set_parent = getattr(stream, "set_thread_parent", None)  # ipykernel's OutStream
        token = set_parent(last_cell) if set_parent is not None and last_cell else None
        try:
            print(f"{self.headline}\n  {where} {advice}", file=stream, flush=True)
        finally:
            if token is not None:
                stream.reset_thread_parent(token)


_BLOCK_STYLE = (
    f"border:1px solid {FAILED_COLOR};border-left:4px solid {FAILED_COLOR};border-radius:4px;"
    "padding:6px 10px;margin:4px 0"
)
_PRE_STYLE = "white-space:pre-wrap;margin:6px 0;font-size:12px"
