"""The ``trigger-nb`` commands: each takes the parsed arguments, the open store and the clock,
prints its result and returns the exit code.

Failures are raised (``NotFoundError``, ``OSError``) for ``main`` to turn into one line on
stderr; the text comes from ``render``, the JSON and HTML from ``export``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from trigger_nb._cli.export import (
    html_page,
    json_text,
    logs_json,
    output_text,
    run_json,
    run_summary_json,
    stale_json,
    task_json_of,
)
from trigger_nb._cli.render import (
    NONE,
    log_lines,
    plural,
    run_outline,
    runs_table,
    stale_tasks,
    task_details,
)
from trigger_nb._client.comparison import compare_runs
from trigger_nb._client.run import JobRun, TaskView
from trigger_nb._client.task_ref import find_task as find_task_record
from trigger_nb._client.task_ref import refresh_selection, rerun_selection
from trigger_nb._core.clock import Clock
from trigger_nb._core.model import LogRecord, RunRecord, RunStatus
from trigger_nb._core.preview import redact_value, to_plain
from trigger_nb._core.status import EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, LOG_LEVELS
from trigger_nb._render.data import RunData
from trigger_nb._render.format import format_time, short_run_ids
from trigger_nb._render.keys import task_label
from trigger_nb._store.store import Store
from trigger_nb.errors import CacheReadError, NotFoundError, TriggerNbError

Command = Callable[[argparse.Namespace, Store, Clock], int]


class UsageError(TriggerNbError):
    """The command cannot go ahead as given (``cli.main`` exits with ``exit_code``)."""

    exit_code = EXIT_USAGE


def run_runs(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    records = store.list_runs()
    short = short_run_ids(r.id for r in records)  # over the whole store, so `show` accepts them
    chosen = [
        r for r in _of_job(records, args.job) if args.status is None or r.status == args.status
    ][: args.limit]
    if args.json:
        print(json_text([run_summary_json(r) for r in chosen]))
    elif chosen:
        print(runs_table(chosen, short))
    else:
        filters = "".join(
            f" {name}={value!r}"
            for name, value in (("job", args.job), ("status", args.status))
            if value is not None
        )
        print(f"No runs{' with' + filters if filters else ''} in {store.location}.")
    return EXIT_OK


def run_show(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    if args.stale and (args.task or args.output):
        raise UsageError(
            "trigger-nb show --stale lists the stale tasks of a run: leave out "
            f"{'--task' if args.task else '--output'} (or --stale)"
        )
    run = load_run(store, args.run_id)
    if args.stale:
        data = run_data(run, clock)
        print(json_text(stale_json(data)) if args.json else stale_tasks(data))
        return EXIT_OK
    if (args.stdout or args.stderr) and not args.task:
        flag = "--stdout" if args.stdout else "--stderr"
        raise UsageError(f"trigger-nb show {flag} prints one task's output: add --task KEY")
    task = find_task(run, args.task) if args.task else None
    if task is not None and (args.stdout or args.stderr):
        _print_captured(task, stdout=args.stdout, stderr=args.stderr, as_json=args.json)
        return EXIT_OK
    if args.output:
        print(output_text(_output_of(run, task), as_json=args.json))
        return EXIT_OK
    data = run_data(run, clock)
    if args.json:
        print(json_text(task_json_of(data, task.record.id) if task else run_json(data)))
    else:
        print(task_details(data, task.record.id) if task else run_outline(data))
    return EXIT_OK


def run_logs(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    run = load_run(store, args.run_id)
    level = "warn" if args.level == "warning" else args.level
    logs = _at_or_above(run.logs, level)
    if args.json:
        print(json_text(logs_json(logs)))
    elif not logs:
        print(f"No logs{f' at level {level} or above' if level else ''} in run {run.id}.")
    else:
        print(log_lines(logs, {view.record.id: task_label(view.record) for view in run.all_tasks}))
    return EXIT_OK


def run_clear(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    if args.run:
        target = store.find_run(args.run)
        if args.job and target.job_id != args.job:
            raise NotFoundError(
                f"run {target.id} is a run of job {target.job_id!r}, not {args.job!r}"
            )
        chosen, what = [target], f"run {target.id} (job {target.job_id!r})"
    else:
        chosen = _of_job(store.list_runs(), args.job)
        what = plural(len(chosen), "run") + (f" of job {args.job!r}" if args.job else "")
        if not chosen and args.job:
            raise NotFoundError(
                f"no runs of job {args.job!r} in {store.location}: nothing to clear"
            )
        if not chosen:
            print(f"No runs in {store.location}: nothing to clear.")
            return EXIT_OK
    if not confirmed(args, f"Delete {what} from {store.location}?"):
        return EXIT_NOT_FOUND
    for record in chosen:
        store.remove_run(record.id)  # a run executing in another process stops first
    print(f"Deleted {what}.")
    return EXIT_OK


def confirmed(args: argparse.Namespace, question: str) -> bool:
    """True if deleting may go ahead: ``--yes``, or "y" typed at the terminal.

    Without a terminal to ask on (a script, a pipe, /dev/null), deleting needs ``--yes``: an
    unanswerable question must never count as consent (SPEC 5). That is a usage error."""
    if args.yes:
        return True
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise UsageError(
            f"trigger-nb {args.command} deletes runs and standard input is not a terminal to "
            "confirm on: add --yes to delete without asking"
        )
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    if stdin.readline().strip().lower() in ("y", "yes"):
        return True
    print("Nothing deleted.", file=sys.stderr)
    return False


def run_cancel(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    run = JobRun(store, store.find_run(args.run_id))
    before = run.status
    after = run.cancel().status
    if after is before:
        print(f"Run {run.id} is {after.value}: nothing to cancel.")
    elif after is RunStatus.CANCELED:
        print(f"Canceled run {run.id} (it was {before.value}): it will not resume by itself.")
    else:
        print(f"Asked run {run.id} to stop: it stops before its next task.")
    return EXIT_OK


def run_export(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    run = load_run(store, args.run_id)
    data = run_data(run, clock)
    text = html_page(data) if args.format == "html" else json_text(run_json(data))
    if args.output in (None, "-"):
        sys.stdout.write(text + "\n")
    else:
        try:
            Path(args.output).write_text(text + "\n", encoding="utf-8")
        except OSError as error:
            raise OSError(f"cannot write {args.output}: {error.strerror or error}") from error
        print(f"Wrote run {run.id} as {args.format} to {args.output}.", file=sys.stderr)
    return EXIT_OK


def run_prune(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    when = f"not active for {args.days:g} days"
    try:
        cutoff = clock.now() - timedelta(days=args.days)
        when += f" (since {format_time(cutoff, NONE)})"
    except OverflowError:  # more days than a datetime holds: nothing is that old
        cutoff = datetime.min.replace(tzinfo=timezone.utc)
    if not args.dry_run and not args.yes:  # asks only when there is something to delete
        due = store.prune(cutoff, dry_run=True)
        if due and not confirmed(args, f"Delete {plural(len(due), 'run')} {when}?"):
            return EXIT_NOT_FOUND
    pruned = store.prune(cutoff, dry_run=args.dry_run)
    verb = "Would delete" if args.dry_run else "Deleted"
    print(f"{verb} {plural(len(pruned), 'run')} {when}{':' if pruned else '.'}")
    for run_id in pruned:
        print(f"  {run_id}")
    return EXIT_OK


def run_verify(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    """Read every byte of a run's stored task outputs and check it against its checksums
    (a replay with ``mmap=True`` maps big outputs without reading them: this is the full
    check). Exit 1 if one is damaged, naming each."""
    run = load_run(store, args.run_id)
    checked, damaged = 0, []
    for task in run.all_tasks:
        if not task.record.is_completed:
            continue
        checked += 1
        try:
            store.verify_output(run.id, task.record.id)
        except CacheReadError as error:
            damaged.append(f"task {task_label(task.record)!r}: {error.reason}")
    if damaged:
        for line in damaged:
            print(f"trigger-nb: damaged: {line}", file=sys.stderr)
        print(f"{checked} output(s) checked, {len(damaged)} damaged")
        return EXIT_NOT_FOUND
    print(f"{checked} output{'' if checked == 1 else 's'} checked, intact")
    return EXIT_OK


def run_refresh(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    """Mark a task, its subtasks (and the parents that reach them) -- with ``--and-later``
    every task that started after it too -- to run again on the run's next execution.

    It runs no code (the command line cannot: the job is defined in a notebook or script) and
    deletes nothing: each earlier output moves to its task's history when the task runs again.
    So it asks no confirmation; the next execution is where the side effects repeat."""
    run = load_run(store, args.run_id)
    records = [view.record for view in run.all_tasks]
    task = find_task_record(records, run.id, args.task)
    if args.and_later:
        chosen = rerun_selection(records, task, run.record.latest_execution)
    else:
        chosen = refresh_selection(records, task)
    store.mark_refresh(run.id, chosen, clock.now().isoformat())
    by_id = {r.id: r for r in records}
    names = ", ".join(task_label(by_id[task_id]) for task_id in chosen)
    print(
        f"Marked {plural(len(chosen), 'task')} of run {run.id} to run again on its next "
        f"execution: {names}. Re-run its cell (or run.resume()) where job {run.job_id!r} is "
        "defined; the earlier outputs stay in each task's history."
    )
    return EXIT_OK


def run_diff(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    """What differs between two runs' tasks (``client.compare``), as a table, JSON or HTML."""
    a, b = load_run(store, args.run_a), load_run(store, args.run_b)
    comparison = compare_runs(
        store,
        a.id,
        [view.record for view in a.all_tasks],
        store,
        b.id,
        [view.record for view in b.all_tasks],
    )
    form = "json" if args.json else args.format
    if form == "json":
        print(json_text(comparison.to_json()))
    elif form == "html":
        print(comparison._repr_html_())
    else:
        print(comparison)
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "runs": run_runs,
    "show": run_show,
    "logs": run_logs,
    "clear": run_clear,
    "cancel": run_cancel,
    "export": run_export,
    "prune": run_prune,
    "verify": run_verify,
    "refresh": run_refresh,
    "diff": run_diff,
}


def load_run(store: Store, reference: str) -> JobRun:
    """The run with this id or unique id prefix, else the newest run of the job with this id."""
    try:
        return JobRun(store, store.find_run(reference))
    except NotFoundError:
        newest = next((r for r in store.list_runs() if r.job_id == reference), None)
        if newest is None:
            raise
        return JobRun(store, newest)


def run_data(run: JobRun, clock: Clock) -> RunData:
    """What the command prints of ``run``: read from the store once, "now" by its clock."""
    return run.run_data(clock.now())


def find_task(run: JobRun, wanted: str) -> TaskView:
    """The task ``wanted`` names (``_client.task_ref.find_task``: an id, the key as every view
    prints it, a name, an id prefix); ``TaskNotFoundError`` naming the closest ones."""
    views = run.all_tasks
    record = find_task_record([view.record for view in views], run.id, wanted)
    return next(view for view in views if view.record.id == record.id)


def _of_job(records: list[RunRecord], job: str | None) -> list[RunRecord]:
    return [r for r in records if job is None or r.job_id == job]


def _at_or_above(logs: list[LogRecord], level: str | None) -> list[LogRecord]:
    """The logs at ``level`` or above (debug < info < warn < error); all when ``level`` is None."""
    if level is None:
        return list(logs)
    floor = LOG_LEVELS.index(level)
    # A level we do not know (written by a newer version) is shown rather than hidden.
    return [log for log in logs if log.level not in LOG_LEVELS[:floor]]


def _print_captured(task: TaskView, *, stdout: bool, stderr: bool, as_json: bool) -> None:
    """What the task's last attempt printed, as it printed it (stdout to stdout, stderr to
    stderr), or as JSON with its displays."""
    if as_json:
        shown = {"stdout": task.stdout, "stderr": task.stderr, "displays": task.displays}
        print(json_text({k: v for k, v in shown.items() if k != "stderr" or stderr}))
        return
    if stdout:
        sys.stdout.write(task.stdout)
    if stderr:
        sys.stderr.write(task.stderr)


def _output_of(run: JobRun, task: TaskView | None) -> object:
    """The task's output (redacted paths masked), else the run's; NotFoundError if it has none."""
    if task is None:
        if run.status is not RunStatus.SUCCESS:
            raise NotFoundError(f"run {run.id} has no output: it is {run.status}")
        return run.output
    if not task.record.is_completed:
        label = task_label(task.record)
        raise NotFoundError(f"task {label!r} has no output: it is {task.record.status}")
    if task.record.redact:  # redacted paths stay masked in every view, this one too
        return redact_value(to_plain(task.output), task.record.redact)
    return task.output
