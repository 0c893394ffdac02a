"""A ``%%trigger_job`` cell as a job: its expression flags evaluated in the notebook's
namespace, its body compiled into the run function, its payload validated and its run id found.

Every problem here is an IPython ``UsageError``: one line (no traceback) naming the flag and the
fix, and nothing runs.
"""

from __future__ import annotations

import typing
from typing import Any

from trigger_nb._client.client import default_client
from trigger_nb._client.job import DEFAULT_VERSION, Job
from trigger_nb._client.run import JobRun
from trigger_nb._client.task_ref import find_task, refresh_selection, rerun_selection
from trigger_nb._core.trigger import EventTrigger, event_trigger
from trigger_nb._jupyter.args import JobArgs, MagicArgumentError
from trigger_nb._jupyter.body import compile_body, make_run_function
from trigger_nb.errors import (
    InvalidOptionError,
    InvalidPayloadError,
    NotFoundError,
    TriggerNbError,
)


def usage_error(message: str) -> Exception:
    """IPython's error for a bad magic line: shown as one line, without a traceback."""
    from IPython.core.error import UsageError

    return UsageError(message)


def parse(parser: Any, line: str) -> Any:
    try:
        return parser(line)
    except MagicArgumentError as error:
        raise usage_error(str(error)) from None


def _check_schema(schema: Any) -> None:
    from pydantic import TypeAdapter

    if not (isinstance(schema, type) or typing.get_origin(schema) is not None):
        raise usage_error(
            f"%%trigger_job --schema: {schema!r} ({type(schema).__name__}) is not a model; "
            "give a pydantic model class or a type such as dict[str, int]"
        )
    try:
        TypeAdapter(schema)
    except Exception as error:
        raise usage_error(
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


def evaluate(shell: Any, flag: str, source: str | None) -> Any:
    """The value of an expression flag (None when not given)."""
    if source is None:
        return None
    try:
        return eval(compile(source, f"<{flag}>", "eval"), shell.user_ns)
    except Exception as error:
        problem = f"{type(error).__name__}: {error}".replace("\n", " ")
        hint = _how(flag, error, source)
        raise usage_error(f"%%trigger_job {flag} {source}: {problem}. {hint}") from None


def define_job(shell: Any, args: JobArgs, line: str, cell: str) -> Job:
    """The job the cell defines (defined again each time the cell runs: its body may change)."""
    schema = evaluate(shell, "--schema", args.schema)
    if args.schema is not None:
        _check_schema(schema)
    integrations = evaluate(shell, "--integrations", args.integrations)
    if args.integrations is not None and not (
        isinstance(integrations, dict) and all(isinstance(k, str) for k in integrations)
    ):
        raise usage_error(
            f"%%trigger_job --integrations: {args.integrations} is a "
            f"{type(integrations).__name__}; give a dict of name -> integration, "
            'e.g. {"mail": mail}'
        )
    # Cache the whole cell so tracebacks read "Cell In[n], line L" with the cell's numbering.
    filename = shell.compile.cache(f"%%trigger_job {line}\n{cell}", shell.execution_count)
    try:
        body = compile_body(cell, filename, first_line=2)
    except SyntaxError as error:
        # Raised as is, IPython would show the extension's frames above the caret.
        stb = shell.SyntaxTB.structured_traceback(type(error), error, [])
        text = shell.SyntaxTB.stb2text(stb).strip("\n")
        raise usage_error(f"%%trigger_job: the cell body does not compile:\n{text}") from None
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
            run=make_run_function(body, shell.user_ns),
            on_code_change=args.on_code_change,  # None: the client's policy
        )
    except TriggerNbError as error:
        raise usage_error(f"%%trigger_job: {error}") from None


def resolve_run_id(job: Job, args: JobArgs, payload: Any) -> str:
    """The run the cell triggers: its payload validated, ``--run-id``/``--new-run`` applied."""
    try:
        _, payload_json = job.validate(payload)
    except InvalidPayloadError as error:
        raise usage_error(f"%%trigger_job --payload: {error}") from None
    try:
        return job.resolve_run_id(payload_json, run_id=args.run_id, new_run=args.new_run)
    except InvalidOptionError as error:
        raise usage_error(f"%%trigger_job --run-id: {error}") from None


def mark_tasks(job: Job, args: JobArgs, run_id: str) -> None:
    """``--refresh-task TASK`` (each) and ``--rerun-from TASK``: mark those tasks of the run
    the cell executes to run again in this execution (SPEC 3.7), before it starts.

    TASK is named as ``trigger-nb show`` prints it: an id, the cache key (``fetch``,
    ``'["page", 2]'``) or a name. A run that does not exist yet has nothing cached: the flags
    then do nothing, so a notebook keeping them runs on a fresh store too. With ``--new-run``
    or ``--refresh`` every task runs anyway. An unknown TASK is a one-line usage error naming
    the closest tasks, and nothing runs.
    """
    if (not args.refresh_tasks and args.rerun_from is None) or args.new_run or args.refresh:
        return
    store = job.client.store
    record = store.load_run(run_id)
    if record is None:
        return
    run = JobRun(store, record, client=job.client)
    records = [view.record for view in run.all_tasks]
    chosen: list[str] = []
    flag = "--refresh-task"
    try:
        for text in args.refresh_tasks:
            chosen += refresh_selection(records, find_task(records, run.id, text))
        if args.rerun_from is not None:
            flag = "--rerun-from"
            task = find_task(records, run.id, args.rerun_from)
            chosen += rerun_selection(records, task, record.latest_execution)
    except NotFoundError as error:
        raise usage_error(f"%%trigger_job {flag}: {error}") from None
    store.mark_refresh(run.id, dict.fromkeys(chosen), job.client.clock.now().isoformat())
