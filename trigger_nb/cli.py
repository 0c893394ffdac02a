"""``trigger-nb``: look at the runs in a store and clean up, without opening a notebook.

Commands: ``runs``, ``show``, ``logs``, ``clear``, ``export``, ``prune``; ``--dir`` (before or after
the command) or ``$TRIGGER_NB_DIR`` picks the store. Exit codes: 0 ok, 1 not found (also: the
store or a file could not be read or written, or a ``clear`` confirmation was declined), 2 usage.
Errors are one line on stderr, never a traceback.

Startup stays light: this module never imports IPython or ipywidgets, and ``export --format html``
imports only the kernel-free ``render_html`` from the widget module.
"""

from __future__ import annotations

import argparse
import contextlib
import decimal
import json
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path, PurePath
from typing import Any, NoReturn

from trigger_nb.clock import SYSTEM_CLOCK, Clock
from trigger_nb.errors import NotFoundError, TriggerNbError
from trigger_nb.model import LogRecord, RunRecord, RunStatus, TaskRecord, redact_value, to_plain
from trigger_nb.run import JobRun, TaskView
from trigger_nb.store import DIR_ENV_VAR, DiskStore, Store, default_directory

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2
SHORT_ID_CHARS = 12  # "run_" + 8 hex digits, lengthened until unique in the store
NOTE_CHARS = 60
LOG_LEVELS = ("debug", "info", "warn", "error")
_STORE_FILE = "cache.db"  # what diskcache writes in every store directory


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (0 or more)")
    return value


def _build_parser() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--dir",
        default=argparse.SUPPRESS,
        help=f"the store directory (default: ${DIR_ENV_VAR} or ./.trigger_nb)",
    )
    parser = _Parser(
        prog="trigger-nb",
        parents=[common],
        description="Explore and clean up the runs trigger_nb recorded.",
        epilog="RUN_ID: a run id or a unique prefix of one ('run_' may be left off); show, logs "
        "and export also take a job id for that job's newest run.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=summary, description=summary)

    runs = command("runs", "list runs, newest first")
    runs.add_argument("--job", help="only runs of this job id")
    runs.add_argument(
        "--status", type=str.upper, choices=[s.value for s in RunStatus], help="only this status"
    )
    runs.add_argument("--limit", type=_count, metavar="N", help="at most N runs")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")

    show = command("show", "show a run's task tree, or one task")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--task", metavar="KEY", help="one task (cache key, name or id): details")
    show.add_argument("--output", action="store_true", help="print the output (JSON or repr)")
    show.add_argument("--json", action="store_true", help="print JSON")

    logs = command("logs", "print a run's logs")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument(
        "--level", type=str.lower, choices=[*LOG_LEVELS, "warning"], help="this level and above"
    )
    logs.add_argument("--json", action="store_true", help="print JSON")

    clear = command("clear", "delete runs: all, a job's, or one")
    clear.add_argument("job", nargs="?", metavar="JOB", help="only this job's runs")
    clear.add_argument("--run", metavar="RUN_ID", help="only this run")
    clear.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    export = command("export", "write a run as JSON or as static HTML")
    export.add_argument("run_id", metavar="RUN_ID")
    export.add_argument("--format", choices=("json", "html"), default="json")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")

    prune = command("prune", "delete runs not active for DAYS days")
    prune.add_argument("--older-than", type=_days, required=True, metavar="DAYS", dest="days")
    prune.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    handlers = (_cmd_runs, _cmd_show, _cmd_logs, _cmd_clear, _cmd_export, _cmd_prune)
    for cmd, handler in zip((runs, show, logs, clear, export, prune), handlers, strict=True):
        cmd.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run the command line; returns the exit code (``clock`` decides "now" for ``prune``)."""
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or a usage error (2), already printed
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    store: Store | None = None
    try:
        store = _open_store(getattr(args, "dir", None))
        code: int = args.handler(args, store, clock or SYSTEM_CLOCK)
        sys.stdout.flush()  # a closed pipe must fail here, where it is handled, not at exit
        return code
    except (TriggerNbError, OSError) as error:
        if isinstance(error, BrokenPipeError):  # `trigger-nb logs X | head`: not an error
            _silence_stdout()
            return EXIT_OK
        return _fail(str(error), EXIT_NOT_FOUND)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    finally:
        if store is not None:
            store.close()


def _fail(message: str, code: int) -> int:
    print(f"trigger-nb: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _open_store(directory: str | None) -> Store:
    """The store to read; a missing one is an error (listing must not create an empty store)."""
    where = Path(directory or default_directory()).resolve()
    if directory:
        hint = "check --dir"
    elif os.environ.get(DIR_ENV_VAR):
        hint = f"check ${DIR_ENV_VAR}"
    else:
        hint = f"run from your notebook's directory, or pass --dir DIR or set ${DIR_ENV_VAR}"
    if not where.is_dir():
        raise NotFoundError(f"no trigger_nb store at {where}: the directory does not exist; {hint}")
    if not (where / _STORE_FILE).is_file():
        raise NotFoundError(f"{where} is not a trigger_nb store (no {_STORE_FILE}): {hint}")
    return DiskStore(where)


def _load_run(store: Store, reference: str) -> JobRun:
    """The run with this id or unique id prefix, else the newest run of the job with this id."""
    try:
        return JobRun(store, store.find_run(reference))
    except NotFoundError:
        newest = next((r for r in store.list_runs() if r.job_id == reference), None)
        if newest is None:
            raise
        return JobRun(store, newest)


def _cmd_runs(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    records = store.list_runs()
    short = _short_ids([r.id for r in records])  # over the whole store, so `show` accepts them
    chosen = [
        r
        for r in records
        if (args.job is None or r.job_id == args.job)
        and (args.status is None or r.status == args.status)
    ][: args.limit]
    if args.json:
        _print_json([_run_summary(r) for r in chosen])
        return EXIT_OK
    if not chosen:
        filters = "".join(
            f" {name}={value!r}"
            for name, value in (("job", args.job), ("status", args.status))
            if value is not None
        )
        print(f"No runs{' with' + filters if filters else ''} in {store.location}.")
        return EXIT_OK
    header = ("JOB", "RUN", "STATUS", "STARTED", "DURATION", "EXECS", "TASKS", "REPLAYED")
    rows = [
        (
            r.job_id,
            short[r.id],
            r.status.value,
            _local(r.created_at),
            _human(r.duration_seconds),
            str(r.executions),
            str(r.task_count),
            str(_replayed(r)),
        )
        for r in chosen
    ]
    print(_table(header, rows, right=(5, 6, 7)))
    return EXIT_OK


def _cmd_show(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    run = _load_run(store, args.run_id)
    task = _find_task(run, args.task) if args.task else None
    if args.output:
        _print_output(run, task, as_json=args.json)
    elif args.json:
        _print_json(_task_json(task, logs=True) if task else _run_json(run))
    else:
        print(_task_details(run, task) if task else _run_outline(run, clock))
    return EXIT_OK


def _cmd_logs(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    run = _load_run(store, args.run_id)
    level = "warn" if args.level == "warning" else args.level
    logs = _at_or_above(run.logs, level)
    if args.json:
        _print_json([log.model_dump(mode="json") for log in logs])
    elif not logs:
        print(f"No logs{f' at level {level} or above' if level else ''} in run {run.id}.")
    else:
        names = {view.record.id: view.record.name for view in run.all_tasks}
        print(_log_lines(logs, names))
    return EXIT_OK


def _at_or_above(logs: list[LogRecord], level: str | None) -> list[LogRecord]:
    """The logs at ``level`` or above (debug < info < warn < error); all when ``level`` is None."""
    if level is None:
        return list(logs)
    floor = LOG_LEVELS.index(level)
    # A level we do not know (written by a newer version) is shown rather than hidden.
    return [log for log in logs if log.level not in LOG_LEVELS[:floor]]


def _cmd_clear(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    if args.run:
        target = store.find_run(args.run)
        if args.job and target.job_id != args.job:
            raise NotFoundError(
                f"run {target.id} is a run of job {target.job_id!r}, not {args.job!r}"
            )
        chosen, what = [target], f"run {target.id} (job {target.job_id!r})"
    else:
        chosen = [r for r in store.list_runs() if args.job is None or r.job_id == args.job]
        what = _plural(len(chosen), "run") + (f" of job {args.job!r}" if args.job else "")
        if not chosen and args.job:
            raise NotFoundError(
                f"no runs of job {args.job!r} in {store.location}: nothing to clear"
            )
        if not chosen:
            print(f"No runs in {store.location}: nothing to clear.")
            return EXIT_OK
    if not args.yes and sys.stdin is not None and sys.stdin.isatty():
        print(f"Delete {what} from {store.location}? [y/N] ", end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("Nothing deleted.", file=sys.stderr)
            return EXIT_NOT_FOUND
    for record in chosen:
        store.delete_run(record.id)
    print(f"Deleted {what}.")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    run = _load_run(store, args.run_id)
    if args.format == "html":
        from trigger_nb.widget import render_html

        text = _html_page(run, render_html(run))
    else:
        text = json.dumps(_run_json(run), indent=2, ensure_ascii=False, default=str)
    if args.output in (None, "-"):
        sys.stdout.write(text + "\n")
    else:
        try:
            Path(args.output).write_text(text + "\n", encoding="utf-8")
        except OSError as error:
            raise OSError(f"cannot write {args.output}: {error.strerror or error}") from error
        print(f"Wrote run {run.id} as {args.format} to {args.output}.", file=sys.stderr)
    return EXIT_OK


def _cmd_prune(args: argparse.Namespace, store: Store, clock: Clock) -> int:
    when = f"not active for {args.days:g} days"
    try:
        cutoff = clock.now() - timedelta(days=args.days)
        when += f" (since {_local(cutoff)})"
    except OverflowError:  # more days than a datetime holds: nothing is that old
        cutoff = datetime.min.replace(tzinfo=timezone.utc)
    pruned = store.prune(cutoff, dry_run=args.dry_run)
    verb = "Would delete" if args.dry_run else "Deleted"
    print(f"{verb} {_plural(len(pruned), 'run')} {when}{':' if pruned else '.'}")
    for run_id in pruned:
        print(f"  {run_id}")
    return EXIT_OK


# --- runs and tasks as text -------------------------------------------------------------------


def _run_outline(run: JobRun, clock: Clock) -> str:
    r = run.record
    status = r.status.value
    if r.status is RunStatus.WAITING and r.wait_until is not None:
        left = (r.wait_until - clock.now()).total_seconds()
        status += f" until {_local(r.wait_until)}" + (f" (in {_human(left)})" if left > 0 else "")
    last = r.execution_history[-1] if r.execution_history else None
    executions = str(r.executions)
    if last is not None:
        saved = f", saved {_human(last.time_saved_seconds)}" if last.time_saved_seconds else ""
        executions += (
            f" (last: {last.executed} executed, {last.replayed} replayed, {last.failed} failed"
            f"{saved})"
        )
    fields = [
        ("job", f"{r.job_id} ({r.job_name} v{r.job_version})"),
        ("status", status),
        ("started", _local(r.created_at)),
        ("duration", _human(r.duration_seconds)),
        ("executions", executions),
        ("payload", _clip(json.dumps(r.event.payload, default=str), 2 * NOTE_CHARS)),
    ]
    if r.output_type is not None:
        fields.append(("output", f"{r.output_type}: {r.output_preview}"))
    if r.error is not None:
        fields.append(("error", r.error.summary()))
    lines = [f"Run {r.id}", *_fields(fields), ""]
    rows = []

    def walk(views: list[TaskView], depth: int) -> None:
        for view in views:
            t = view.record
            rows.append(
                (
                    "  " * depth + _label(t),
                    t.status.value,
                    _human(t.duration_seconds),
                    str(len(t.attempts)),
                    _clip(_note(t), NOTE_CHARS),
                )
            )
            walk(view.children, depth + 1)

    walk(run.tasks, 0)
    if rows:
        lines.append(_table(("TASK", "STATUS", "DURATION", "ATTEMPTS", ""), rows, right=(3,)))
    else:
        lines.append("No tasks.")
    return "\n".join(lines)


def _label(t: TaskRecord) -> str:
    key = _key_text(t.cache_key)
    # The key is shown only where the name hides it ("parallel [fan]", not "item 0 [0]").
    hidden = key not in t.name and str(t.cache_key) not in t.name
    return f"{t.name} [{key}]" if hidden else t.name


def _note(t: TaskRecord) -> str:
    if t.error is not None:
        return t.error.summary()
    if t.wait_until is not None and t.status.value == "WAITING":
        return f"until {_local(t.wait_until)}"
    if t.output_preview is not None and t.kind != "wait":
        return f"= {t.output_preview}"
    return ""


def _task_details(run: JobRun, view: TaskView) -> str:
    t = view.record
    parent = next((v for v in run.all_tasks if v.record.id == t.parent_id), None)
    kids = [v.record for v in run.all_tasks if v.record.parent_id == t.id]
    fields = [
        ("key", _key_text(t.cache_key)),
        ("id", t.id),
        ("idempotency", t.idempotency_key),
        ("kind", t.kind),
        ("parent", _label(parent.record) if parent else "-"),
        ("children", ", ".join(_label(k) for k in kids) or "-"),
        ("started", _local(t.started_at or t.created_at)),
        ("completed", _local(t.completed_at)),
        ("duration", _human(t.duration_seconds)),
        (
            "executions",
            f"first ran in {t.first_execution}, completed in {t.completed_execution or '-'}",
        ),
    ]
    if t.description:
        fields.append(("description", t.description))
    if t.params is not None:
        fields.append(("params", json.dumps(t.params, default=str)))
    for prop in [*t.properties, *t.output_properties]:
        fields.append((str(prop.get("label")), f"{prop.get('text')} {prop.get('url') or ''}"))
    if t.output_type is not None:
        size = f", {t.output_size} bytes" if t.output_size is not None else ""
        fields.append(("output", f"{t.output_type}{size}: {t.output_preview}"))
    if t.wait_until is not None:
        fields.append(("resumes", _local(t.wait_until)))
    if t.error is not None:
        fields.append(("error", t.error.summary()))
    lines = [f"Task {t.name} [{t.status.value}] in run {run.id}", *_fields(fields), ""]
    lines.append(f"Attempts ({len(t.attempts)})")
    for a in t.attempts:
        error = a.error.summary() if a.error else ""
        started = _local(a.started_at)
        lines.append(
            f"  #{a.number}  execution {a.execution}  {started}  {a.status.value}  {error}"
        )
    names = {t.id: t.name}
    lines += ["", f"Logs ({len(view.logs)})"]
    if view.logs:
        lines.append(_indent(_log_lines(view.logs, names)))
    if t.error is not None and t.error.traceback:
        lines += ["", "Traceback of the last error", _indent(t.error.traceback.rstrip())]
    return "\n".join(line.rstrip() for line in lines)


def _log_lines(logs: list[LogRecord], names: dict[str, str]) -> str:
    rows = [
        (
            _local(log.time),
            f"#{log.execution}",
            log.level.upper(),
            names.get(log.task_id, log.task_id) if log.task_id else "(run)",
            log.message
            + "".join(f"  {k}={json.dumps(v, default=str)}" for k, v in log.data.items()),
        )
        for log in logs
    ]
    return _table(None, rows) if rows else ""


def _find_task(run: JobRun, wanted: str) -> TaskView:
    views = run.all_tasks
    found = [
        v for v in views if wanted in (v.record.id, v.record.name, _key_text(v.record.cache_key))
    ]
    found = found or [v for v in views if v.record.id.startswith(wanted)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFoundError(
            f"run {run.id} has no task {wanted!r}: `trigger-nb show {run.id}` lists its tasks"
        )
    options = ", ".join(f"{_label(v.record)} (id {v.record.id[:10]})" for v in found[:5])
    raise NotFoundError(f"task {wanted!r} is ambiguous in run {run.id}: give the id of {options}")


def _print_output(run: JobRun, task: TaskView | None, *, as_json: bool) -> None:
    if task is not None:
        if not task.record.is_completed:
            raise NotFoundError(
                f"task {task.record.name!r} has no output: it is {task.record.status}"
            )
        value = task.output
        if task.record.redact:  # redacted paths stay masked in every view, this one too
            value = redact_value(to_plain(value), task.record.redact)
    else:
        if run.status is not RunStatus.SUCCESS:
            raise NotFoundError(f"run {run.id} has no output: it is {run.status}")
        value = run.output
    try:
        text = json.dumps(to_plain(value), indent=2, ensure_ascii=False, default=_scalar)
    except (TypeError, ValueError):  # sets, DataFrames, bytes...: their repr says more
        text = json.dumps(repr(value)) if as_json else repr(value)
    print(text)


def _scalar(value: object) -> str:
    """JSON for the scalars JSON lacks (times, UUIDs, decimals, paths); others are not JSON."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


# --- JSON ---------------------------------------------------------------------------------------


def _run_summary(r: RunRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "job_id": r.job_id,
        "job_name": r.job_name,
        "job_version": r.job_version,
        "status": r.status.value,
        "started_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "completed_at": r.completed_at.isoformat() if r.completed_at else None,
        "wait_until": r.wait_until.isoformat() if r.wait_until else None,
        "duration_seconds": r.duration_seconds,
        "executions": r.executions,
        "tasks": r.task_count,
        "replayed": _replayed(r),
        "output_preview": r.output_preview,
        "error": r.error.summary() if r.error else None,
    }


def _run_json(run: JobRun) -> dict[str, Any]:
    data: dict[str, Any] = run.record.model_dump(mode="json")
    data.update(executions=run.executions, duration_seconds=run.record.duration_seconds)
    data["tasks"] = [_task_json(view) for view in run.tasks]
    data["logs"] = [log.model_dump(mode="json") for log in run.logs]
    return data


def _task_json(view: TaskView, *, logs: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = view.record.model_dump(mode="json")
    if logs:
        data["logs"] = [log.model_dump(mode="json") for log in view.logs]
    data["children"] = [_task_json(child, logs=logs) for child in view.children]
    return data


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _html_page(run: JobRun, body: str) -> str:
    import html

    title = html.escape(f"{run.record.job_name} · {run.id} · {run.status.value}")
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
        f"<body>\n{body}\n</body></html>"
    )


# --- small formatting helpers -------------------------------------------------------------------


def _short_ids(ids: list[str]) -> dict[str, str]:
    """Each run id cut to the shortest prefix (at least ``SHORT_ID_CHARS``) no other id shares.

    In sorted order an id shares its longest prefix with a neighbour, so this is O(n log n).
    """
    ordered = sorted(set(ids))
    short = {}
    for i, run_id in enumerate(ordered):
        neighbours = ordered[max(i - 1, 0) : i] + ordered[i + 1 : i + 2]
        shared = max((_shared_prefix(run_id, o) for o in neighbours), default=0)
        size = max(shared + 1, SHORT_ID_CHARS) if run_id.startswith("run_") else len(run_id)
        short[run_id] = run_id[:size]
    return short


def _shared_prefix(a: str, b: str) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def _replayed(r: RunRecord) -> int:
    return sum(e.replayed for e in r.execution_history)


def _key_text(cache_key: Any) -> str:
    return cache_key if isinstance(cache_key, str) else json.dumps(cache_key, default=str)


def _local(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _human(seconds: float | None) -> str:
    """120 ms, 4.2 s, 3m 05s, 2h 04m, 3d 04h."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole >= 86400:
        return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"
    if whole >= 3600:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 60}m {whole % 60:02d}s"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _clip(text: str, size: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 3] + "..."


def _fields(pairs: list[tuple[str, str]]) -> list[str]:
    width = max(len(name) for name, _ in pairs)
    return [f"  {name.ljust(width)}  {value}".rstrip() for name, value in pairs]


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _table(
    header: Sequence[str] | None, rows: Sequence[Sequence[str]], right: tuple[int, ...] = ()
) -> str:
    lines = [header, *rows] if header else list(rows)
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = []
    for line in lines:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        text.append("  ".join(cells).rstrip())
    return "\n".join(text)
