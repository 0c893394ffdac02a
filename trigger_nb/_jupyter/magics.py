"""``%%trigger_job``, ``%trigger_runs`` and ``%trigger_cache``: trigger_nb inside Jupyter.

With its ``magic_*`` helpers, the only code importing IPython (``import trigger_nb`` never
does; ``%load_ext trigger_nb`` imports this). Decisions where the spec is silent:

- The run id comes from (job id, version, payload) like ``job.trigger``: re-executing the cell
  resumes the same run and replays its completed tasks. ``--new-run`` starts a fresh run,
  ``--refresh`` runs every task of this execution again.
- ``payload``, ``io`` and ``ctx`` exist only while the body runs (see ``magic_body``).
- A run suspended by ``io.wait`` shows a "waits until" line; in a live kernel a timer on the
  kernel's asyncio loop resumes it when due and writes its outcome into that line of the cell
  that started it (prints made meanwhile go there too). Re-executing the cell cancels the timer
  and resumes at once.
- Errors from the body are raised as themselves (the cell fails, ``Run All`` stops), with
  trigger_nb's own frames cut from the traceback. Bad magic arguments, and a body that does not
  compile, are IPython ``UsageError`` s: a short message, no traceback, nothing run.
- Ctrl-C / Kernel → Interrupt marks the running task INTERRUPTED and the run CANCELED;
  re-executing the cell continues.
- While the job runs, the front end sees the kernel busy, live tree or not (``magic_status``).
"""

from __future__ import annotations

import contextlib
import typing
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
    output_can_be_silenced,
)
from IPython.display import display

from trigger_nb._client.job import DEFAULT_VERSION, Job, default_client
from trigger_nb._client.run import JobRun
from trigger_nb._core.model import RunStatus, TaskStatus
from trigger_nb._core.trigger import EventTrigger, event_trigger
from trigger_nb._jupyter.args import (
    JobArgs,
    MagicArgumentError,
    parse_cache_line,
    parse_job_line,
    parse_runs_line,
)
from trigger_nb._jupyter.body import compile_body, make_run_function, trim_traceback
from trigger_nb._jupyter.resume import Resumer
from trigger_nb._jupyter.status import busy_while_running
from trigger_nb._widgets.live import LiveRunView
from trigger_nb.errors import (
    InvalidOptionError,
    InvalidPayloadError,
    NotFoundError,
    RunConflictError,
    TriggerNbError,
)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext trigger_nb``."""
    ipython.register_magics(TriggerMagics)


def _parse(parser: Any, line: str) -> Any:
    try:
        return parser(line)
    except MagicArgumentError as error:
        raise UsageError(str(error)) from None


def _check_schema(schema: Any) -> None:
    from pydantic import TypeAdapter

    if not (isinstance(schema, type) or typing.get_origin(schema) is not None):
        raise UsageError(
            f"%%trigger_job --schema: {schema!r} ({type(schema).__name__}) is not a model; "
            "give a pydantic model class or a type such as dict[str, int]"
        )
    try:
        TypeAdapter(schema)
    except Exception as error:
        raise UsageError(
            f"%%trigger_job --schema: {schema!r} cannot validate payloads "
            f"({type(error).__name__}); give a pydantic model class"
        ) from None


def _how(flag: str, error: Exception, source: str) -> str:
    """How an expression flag is read: users write ``--payload user1`` meaning the text."""
    name = getattr(error, "name", None) if isinstance(error, NameError) else None
    text = name if isinstance(name, str) else source
    return (
        f"{flag} is a Python expression evaluated in the notebook's namespace: JSON-looking "
        f'literals work ({{"id": 1}}), bare names are variables (quote text: {text!r})'
    )


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


def _display(obj: Any, **options: Any) -> Any:
    return display(obj, **options)  # type: ignore[no-untyped-call]


def _finish(view: LiveRunView | None, run: JobRun) -> None:
    if view is not None:
        view.finish(run)


@magics_class
class TriggerMagics(Magics):
    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._resumer = Resumer(shell)

    @property
    def _shell(self) -> Any:
        return self.shell

    # --- %%trigger_job -----------------------------------------------------------------------

    @no_var_expand  # --payload {"id": uid} must reach us unexpanded
    @output_can_be_silenced
    @cell_magic
    def trigger_job(self, line: str, cell: str) -> Any:
        """Run the cell body as a job run; re-running the cell replays its completed tasks.

        ``%%trigger_job JOB_ID [--name N] [--version V] [--payload EXPR] [--schema EXPR]
        [--integrations EXPR] [--event NAME] [--run-id ID] [--new-run] [--refresh] [--quiet]``

        The body sees ``payload`` (validated by ``--schema``), ``io`` and ``ctx``; its last
        expression is the run's output. ``--payload``, ``--schema`` and ``--integrations`` are
        Python expressions in the notebook's namespace. ``--event`` without ``--payload`` only
        registers the job: ``trigger_nb.send_event(NAME, payload)`` runs it. ``--new-run``
        starts a fresh run, ``--refresh`` re-runs every task, ``--quiet`` hides the live tree.
        """
        args: JobArgs = _parse(parse_job_line, line)
        payload = self._evaluate("--payload", args.payload)
        job = self._define(args, line, cell)
        if args.event is not None and args.payload is None:
            print(
                f"job {job.id!r} listens for event {args.event!r}: "
                f"trigger_nb.send_event({args.event!r}, payload) runs it"
            )
            return None
        run_id = self._run_id(job, args, payload)
        self._resumer.cancel(run_id)  # re-executing the cell resumes the run now
        with busy_while_running(self._shell):  # the live tree must not make the kernel look idle
            return self._start(job, args, payload, run_id)

    def _evaluate(self, flag: str, source: str | None) -> Any:
        if source is None:
            return None
        try:
            return eval(compile(source, f"<{flag}>", "eval"), self._shell.user_ns)
        except Exception as error:
            problem = f"{type(error).__name__}: {error}".replace("\n", " ")
            hint = _how(flag, error, source)
            raise UsageError(f"%%trigger_job {flag} {source}: {problem}. {hint}") from None

    def _define(self, args: JobArgs, line: str, cell: str) -> Job:
        schema = self._evaluate("--schema", args.schema)
        if args.schema is not None:
            _check_schema(schema)
        integrations = self._evaluate("--integrations", args.integrations)
        if args.integrations is not None and not (
            isinstance(integrations, dict) and all(isinstance(k, str) for k in integrations)
        ):
            raise UsageError(
                f"%%trigger_job --integrations: {args.integrations} is a "
                f"{type(integrations).__name__}; give a dict of name -> integration, "
                'e.g. {"mail": mail}'
            )
        # Cache the whole cell so tracebacks read "Cell In[n], line L" with the cell's numbering.
        filename = self._shell.compile.cache(
            f"%%trigger_job {line}\n{cell}", self._shell.execution_count
        )
        try:
            body = compile_body(cell, filename, first_line=2)
        except SyntaxError as error:
            # Raised as is, IPython would show the extension's frames above the caret.
            stb = self._shell.SyntaxTB.structured_traceback(type(error), error, [])
            text = self._shell.SyntaxTB.stb2text(stb).strip("\n")
            raise UsageError(f"%%trigger_job: the cell body does not compile:\n{text}") from None
        trigger: EventTrigger | None = None
        try:
            if args.event is not None:
                trigger = event_trigger(args.event, schema)
            elif schema is not None:
                trigger = EventTrigger(names=(), schema=schema)  # validation only, no event
            return default_client().define_job(
                args.job_id,
                name=args.name,
                version=args.version or DEFAULT_VERSION,
                trigger=trigger,
                integrations=integrations,
                run=make_run_function(body, self._shell.user_ns),
            )
        except TriggerNbError as error:
            raise UsageError(f"%%trigger_job: {error}") from None

    def _run_id(self, job: Job, args: JobArgs, payload: Any) -> str:
        try:
            _, payload_json = job.validate(payload)
        except InvalidPayloadError as error:
            raise UsageError(f"%%trigger_job --payload: {error}") from None
        try:
            return job.resolve_run_id(payload_json, run_id=args.run_id, new_run=args.new_run)
        except InvalidOptionError as error:
            raise UsageError(f"%%trigger_job --run-id: {error}") from None

    def _start(self, job: Job, args: JobArgs, payload: Any, run_id: str) -> Any:
        view = None if args.quiet else LiveRunView(title=f"{job.name} · {run_id}")
        if view is not None:
            _display(view)  # the view updates its own output, static HTML included, on finish
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
                )
        except RunConflictError as error:  # nothing ran: a one-line message, not a traceback
            if view is not None:
                view.finish(None)
            raise UsageError(f"%%trigger_job --run-id: {error}") from None
        except KeyboardInterrupt:
            try:
                canceled = job.client.load_run(run_id)
            except NotFoundError:  # interrupted before the run was even recorded
                raise KeyboardInterrupt(f"run {run_id} was not started") from None
            _finish(view, canceled)
            raise _short_interrupt(canceled) from None
        _finish(view, run)
        if run.status is RunStatus.WAITING:
            self._resumer.schedule(job, payload, run, view)
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

    @line_magic
    def trigger_runs(self, line: str) -> Any:
        """``%trigger_runs [JOB_ID]``: the past runs in the notebook's store, newest first."""
        from trigger_nb._widgets.live import runs_explorer

        return runs_explorer(None, _parse(parse_runs_line, line))

    @line_magic
    def trigger_cache(self, line: str) -> None:
        """``%trigger_cache info|clear JOB_ID [--run RUN_ID]``."""
        args = _parse(parse_cache_line, line)
        store = default_client().store
        runs = [
            r
            for r in store.list_runs()
            if r.job_id == args.job_id and (args.run_id is None or r.id.startswith(args.run_id))
        ]
        if args.run_id is not None and not runs:
            raise UsageError(
                f"%trigger_cache: job {args.job_id!r} has no run {args.run_id!r}; "
                f"list them with %trigger_runs {args.job_id}"
            )
        if args.action == "info":
            tasks = sum(r.task_count for r in runs)
            print(f"job {args.job_id!r}: {len(runs)} run(s), {tasks} task(s) in {store.location}")
            for r in runs:
                print(f"  {r.id}  {r.status.value:<8} {r.task_count} task(s), {r.executions} exec")
            return
        for r in runs:
            self._resumer.cancel(r.id)
            store.remove_run(r.id)  # a run executing elsewhere finishes first
        print(f"cleared {len(runs)} run(s) of job {args.job_id!r}: their tasks will run again")
