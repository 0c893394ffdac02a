"""``%%trigger_job``, ``%trigger_runs`` and ``%trigger_cache``: trigger_nb inside Jupyter.

``%load_ext trigger_nb`` imports this module and calls ``load_ipython_extension``: it registers
the magics (plain functions: IPython is imported only then) and the interactive task tree as how
every ``JobRun`` displays (``_widgets.display``). Decisions where the spec is silent:

- The run id comes from (job id, version, payload) like ``job.trigger``: re-executing the cell
  resumes the same run and replays its completed tasks. ``--new-run`` starts a fresh run,
  ``--refresh`` runs every task of this execution again.
- ``--on-code-change POLICY`` is the job's ``on_code_change`` (``define_job``): the job is
  defined again on every execution of the cell, so dropping the flag goes back to the client's
  policy. ``--refresh-stale`` applies to that execution only; a resume timer's later execution
  of a waiting run does not carry it.
- ``--refresh-task TASK`` (repeatable) and ``--rerun-from TASK`` mark tasks of the run to run
  again before it executes (``cell.mark_tasks``); they do nothing on a run that does not exist
  yet, so a notebook may keep them. The tree's "Re-run from here" executes the run in the kernel
  from the comm message of the click, the cell's live view following it.
- ``payload``, ``io`` and ``ctx`` exist only while the body runs (see ``body``).
- A run suspended by ``io.wait`` shows a "waits until" line; in a live kernel a timer on the
  kernel's asyncio loop resumes it when due and writes its outcome into that line of the cell
  that started it (prints made meanwhile go there too). Re-executing the cell cancels the timer
  and resumes at once.
- Errors from the body are raised as themselves (the cell fails, ``Run All`` stops), with
  trigger_nb's own frames cut from the traceback. Bad magic arguments, and a body that does not
  compile, are IPython ``UsageError`` s: a short message, no traceback, nothing run.
- Ctrl-C / Kernel → Interrupt marks the running task INTERRUPTED and the run CANCELED;
  re-executing the cell continues.
- While the job runs, the front end sees the kernel busy, live tree or not (``status``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from trigger_nb._client.client import default_client
from trigger_nb._client.job import Job
from trigger_nb._client.run import JobRun
from trigger_nb._core.model import RunStatus, TaskStatus
from trigger_nb._jupyter.args import JobArgs, parse_cache_line, parse_job_line, parse_runs_line
from trigger_nb._jupyter.body import trim_traceback
from trigger_nb._jupyter.capture import install as install_capture
from trigger_nb._jupyter.cell import (
    define_job,
    evaluate,
    mark_tasks,
    parse,
    resolve_run_id,
    usage_error,
)
from trigger_nb._jupyter.resume import Resumer
from trigger_nb._jupyter.status import busy_while_running
from trigger_nb._store.store import describe_store
from trigger_nb._widgets.display import register
from trigger_nb._widgets.explorer import runs_explorer
from trigger_nb._widgets.live import LiveRunView
from trigger_nb._widgets.output import display
from trigger_nb.errors import NotFoundError, RunConflictError


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext trigger_nb``: the magics, and the run page (with actions) for displayed runs."""
    from IPython.core.magic import no_var_expand, output_can_be_silenced

    magics = TriggerMagics(ipython)
    # --payload {"id": uid} must reach the magic unexpanded; a trailing ";" silences the output.
    trigger_job = no_var_expand(output_can_be_silenced(_magic(magics.trigger_job)))
    ipython.register_magic_function(trigger_job, "cell", "trigger_job")
    ipython.register_magic_function(_magic(magics.trigger_runs), "line", "trigger_runs")
    ipython.register_magic_function(_magic(magics.trigger_cache), "line", "trigger_cache")
    register(ipython)
    install_capture(ipython)


def _magic(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` as a function of its own: IPython marks magics by setting attributes on them,
    which a bound method does not take."""

    @functools.wraps(method)
    def magic(*args: Any) -> Any:
        return method(*args)

    return magic


def _short_interrupt(run: JobRun) -> KeyboardInterrupt:
    interrupted = [t.record.name for t in run.all_tasks if t.status is TaskStatus.INTERRUPTED]
    where = f"; task {interrupted[-1]!r} was interrupted" if interrupted else ""
    text = (
        f"run {run.id} canceled{where}. Re-run this cell to continue: "
        "completed tasks are replayed, not repeated."
    )
    error = KeyboardInterrupt(text)
    error._render_traceback_ = lambda: [f"KeyboardInterrupt: {text}"]  # type: ignore[attr-defined]
    return error


def _finish(view: LiveRunView | None, run: JobRun) -> None:
    if view is not None:
        view.finish(run)


class TriggerMagics:
    """The magics of one shell, with its resume timers."""

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        self._resumer = Resumer(shell)

    # --- %%trigger_job -----------------------------------------------------------------------

    def trigger_job(self, line: str, cell: str) -> Any:
        """Run the cell body as a job run; re-running the cell replays its completed tasks.

        ``%%trigger_job JOB_ID [--name N] [--version V] [--payload EXPR] [--schema EXPR]
        [--integrations EXPR] [--event NAME] [--run-id ID] [--new-run] [--refresh] [--quiet]
        [--on-code-change POLICY] [--refresh-stale] [--refresh-task TASK]... [--rerun-from TASK]``

        The body sees ``payload`` (validated by ``--schema``), ``io`` and ``ctx``; its last
        expression is the run's output. ``--payload``, ``--schema`` and ``--integrations`` are
        Python expressions in the notebook's namespace. ``--event`` without ``--payload`` only
        registers the job: ``trigger_nb.send_event(NAME, payload)`` runs it. ``--new-run``
        starts a fresh run, ``--refresh`` re-runs every task, ``--quiet`` hides the live tree.

        A completed task whose code or inputs changed since it ran (its lambda, a helper it
        calls, a global or closure value it reads, an integration's arguments) is *stale*;
        ``--on-code-change POLICY`` says what its replay does: ``warn`` (the default: replay
        it and say so in one line), ``rerun`` (run it again), ``ignore`` (replay silently) or
        ``error`` (raise ``StaleTaskError``). A task's own ``io.run_task(...,
        on_code_change=)`` wins over the flag, the flag over the client's policy.
        ``--refresh-stale`` runs the stale tasks again in this execution only.

        ``--refresh-task TASK`` (repeatable) runs TASK and its subtasks again instead of
        replaying them; ``--rerun-from TASK`` runs TASK and every task that started after it
        in the last execution again. TASK is named as ``trigger-nb show`` prints it (its key,
        name or id); their earlier outputs stay in each task's history.
        """
        args: JobArgs = parse(parse_job_line, line)
        payload = evaluate(self._shell, "--payload", args.payload)
        job = define_job(self._shell, args, line, cell)
        if args.event is not None and args.payload is None:
            print(
                f"job {job.id!r} listens for event {args.event!r}: "
                f"trigger_nb.send_event({args.event!r}, payload) runs it"
            )
            return None
        run_id = resolve_run_id(job, args, payload)
        mark_tasks(job, args, run_id)  # --refresh-task, --rerun-from
        self._resumer.cancel(run_id)  # re-executing the cell resumes the run now
        with busy_while_running(self._shell):  # the live tree must not make the kernel look idle
            return self._start(job, args, payload, run_id)

    def _start(self, job: Job, args: JobArgs, payload: Any, run_id: str) -> Any:
        title = f"{job.name} · {run_id}"
        view = None if args.quiet else LiveRunView(title=title, clock=job.client.clock)
        if view is not None:
            display(view)  # the view updates its own output, static HTML included, on finish
        try:
            with self._resumer.running():
                run = job.trigger(
                    payload,
                    run_id=run_id,
                    # --run-id X --new-run: a fresh run under X, replacing the one there
                    new_run=args.new_run and args.run_id is not None,
                    event_name=args.event,
                    listeners=[view.listener] if view is not None else [],
                    refresh=args.refresh,
                    refresh_stale=args.refresh_stale,
                    replay_output=args.replay_output,
                )
        except RunConflictError as error:  # nothing ran: a one-line message, not a traceback
            if view is not None:
                view.finish(None)
            raise usage_error(f"%%trigger_job --run-id: {error}") from None
        except KeyboardInterrupt:
            try:
                canceled = job.client.load_run(run_id)
            except NotFoundError:  # interrupted before the run was even recorded
                raise KeyboardInterrupt(f"run {run_id} was not started") from None
            _finish(view, canceled)
            raise _short_interrupt(canceled) from None
        _finish(view, run)
        if run.status is RunStatus.WAITING:
            self._resumer.schedule(job, run, view)
            return None
        if run.status is not RunStatus.SUCCESS:
            raise self._user_error(run)
        return run.output

    def _user_error(self, run: JobRun) -> BaseException:
        error = run.exception
        if error is None:
            summary = run.error.summary() if run.error else run.status.value
            return RuntimeError(f"run {run.id} ended {run.status.value}: {summary}")
        trim_traceback(error)
        stb = self._shell.InteractiveTB.structured_traceback(
            type(error), error, error.__traceback__, tb_offset=0
        )
        with contextlib.suppress(AttributeError, TypeError):  # exceptions without a __dict__
            error._render_traceback_ = lambda: stb  # type: ignore[attr-defined]
        return error

    # --- %trigger_runs and %trigger_cache ----------------------------------------------------

    def trigger_runs(self, line: str) -> Any:
        """``%trigger_runs [JOB_ID]``: the past runs in the notebook's store, newest first."""
        return runs_explorer(None, parse(parse_runs_line, line))

    def trigger_cache(self, line: str) -> None:
        """``%trigger_cache info|clear JOB_ID [--run RUN_ID]``."""
        args = parse(parse_cache_line, line)
        store = default_client().store
        runs = [
            r
            for r in store.list_runs()
            if r.job_id == args.job_id and (args.run_id is None or r.id.startswith(args.run_id))
        ]
        if args.run_id is not None and not runs:
            raise usage_error(
                f"%trigger_cache: job {args.job_id!r} has no run {args.run_id!r}; "
                f"list them with %trigger_runs {args.job_id}"
            )
        if args.action == "info":
            tasks = sum(r.task_count for r in runs)
            print(f"store: {describe_store(store)}")
            print(f"job {args.job_id!r}: {len(runs)} run(s), {tasks} task(s) in {store.location}")
            for r in runs:
                print(f"  {r.id}  {r.status.value:<8} {r.task_count} task(s), {r.executions} exec")
            return
        for r in runs:
            self._resumer.cancel(r.id)
            store.remove_run(r.id)  # a run executing elsewhere finishes first
        print(f"cleared {len(runs)} run(s) of job {args.job_id!r}: their tasks will run again")
