"""``trigger-nb``: look at the runs in a store and clean up, without opening a notebook.

Commands: ``runs``, ``show``, ``logs``, ``cancel``, ``clear``, ``export``, ``refresh``, ``diff``,
``prune``, ``copy``, ``verify``; ``--store URL|PATH`` or ``--dir PATH`` (before or after the
command), else ``$TRIGGER_NB_STORE`` or ``$TRIGGER_NB_DIR``, picks the store. Exit codes: 0 ok,
1 not found (also: the
store or a file could not be read or written, or a confirmation was declined), 2 usage (also:
``clear``/``prune`` without ``--yes`` and no terminal to ask on). Errors are one line on stderr,
never a traceback.

This module parses the command line, opens the store and turns failures into exit codes; the
commands are in ``commands``, their text in ``render``, their JSON and HTML in ``export``
(imports point that way). Every view of a run comes from ``_render``, as in the notebook; none of
these modules imports IPython, ipywidgets or trigger_nb's widgets, so startup stays light.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from trigger_nb._core.clock import SYSTEM_CLOCK, Clock
from trigger_nb._core.status import EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, LOG_LEVELS, RunStatus
from trigger_nb._store.backend import DIR_ENV_VAR, STORE_ENV_VAR, is_url
from trigger_nb.errors import NotFoundError, TriggerNbError

if TYPE_CHECKING:
    from trigger_nb._store.store import Store

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


def _directory(text: str) -> str:
    # An empty --dir (an unset shell variable, say) must not quietly mean the default store.
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "is empty: give a store directory, or leave --dir out for the default store"
        )
    return text


def _store_arg(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "is empty: give a postgresql:// URL or a store directory, or leave --store out for "
            "the default store"
        )
    return text


def _build_parser() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--dir",
        type=_directory,
        default=argparse.SUPPRESS,
        help=f"the store directory (default: ${DIR_ENV_VAR} or ./.trigger_nb)",
    )
    common.add_argument(
        "--store",
        type=_store_arg,
        default=argparse.SUPPRESS,
        metavar="URL|PATH",
        help=f"the store: a postgresql:// URL or a directory (default: ${STORE_ENV_VAR}, else "
        "the --dir default)",
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
        parsed = sub.add_parser(name, parents=[common], help=summary, description=summary)
        parsed.set_defaults(command=name)
        return parsed

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
    show.add_argument(
        "--stdout", action="store_true", help="print what the task printed (with --task)"
    )
    show.add_argument(
        "--stderr", action="store_true", help="print what the task wrote to stderr (with --task)"
    )
    show.add_argument(
        "--stale",
        action="store_true",
        help="only the stale tasks (replayed although their code or inputs changed), and why",
    )
    show.add_argument("--json", action="store_true", help="print JSON")

    logs = command("logs", "print a run's logs")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument(
        "--level", type=str.lower, choices=[*LOG_LEVELS, "warning"], help="this level and above"
    )
    logs.add_argument("--json", action="store_true", help="print JSON")

    cancel = command("cancel", "stop a run: a waiting one will not resume by itself")
    cancel.add_argument("run_id", metavar="RUN_ID")

    clear = command("clear", "delete runs: all, a job's, or one")
    clear.add_argument("job", nargs="?", metavar="JOB", help="only this job's runs")
    clear.add_argument("--run", metavar="RUN_ID", help="only this run")
    clear.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    export = command("export", "write a run as JSON or as static HTML")
    export.add_argument("run_id", metavar="RUN_ID")
    export.add_argument("--format", choices=("json", "html"), default="json")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")

    refresh = command(
        "refresh",
        "mark a task (and its subtasks) to run again on the run's next execution",
    )
    refresh.add_argument("run_id", metavar="RUN_ID")
    refresh.add_argument(
        "task", metavar="TASK", help="the task: its id, its key as `show` prints it, or its name"
    )
    refresh.add_argument(
        "--and-later",
        action="store_true",
        help="also every task that started after it in the latest execution",
    )

    diff = command("diff", "compare two runs: tasks added, removed, or changed")
    diff.add_argument("run_a", metavar="RUN_A")
    diff.add_argument("run_b", metavar="RUN_B")
    diff.add_argument("--format", choices=("text", "json", "html"), default="text")
    diff.add_argument("--json", action="store_true", help="the same as --format json")

    prune = command("prune", "delete runs not active for DAYS days")
    prune.add_argument("--older-than", type=_days, required=True, metavar="DAYS", dest="days")
    prune.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    prune.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    verify = command("verify", "read every stored output of a run and check its checksums")
    verify.add_argument("run_id", metavar="RUN_ID")

    copy = command("copy", "copy runs from one store to another (a directory or a URL)")
    copy.add_argument("--from", dest="source", type=_store_arg, required=True, metavar="STORE")
    copy.add_argument("--to", dest="destination", type=_store_arg, required=True, metavar="STORE")
    copy.add_argument("--job", help="only this job's runs")
    copy.add_argument("--run", metavar="RUN_ID", help="only this run")
    return parser


def main(argv: list[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run the command line; returns the exit code (``clock`` decides "now": ``prune``'s
    cutoff, how long a running run has worked, when a waiting one resumes)."""
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or a usage error (2), already printed
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    store: Store | None = None
    try:
        if args.command == "copy":  # two stores of its own, none of --store/--dir
            from trigger_nb._cli.copy import run_copy

            return run_copy(args, open_existing_store)
        if hasattr(args, "dir") and hasattr(args, "store"):
            return _fail("give either --store or --dir, not both", EXIT_USAGE)
        store = _open_store(args)
        # The commands (and pydantic under them) load only now: `--help` stays fast.
        from trigger_nb._cli.commands import COMMANDS

        code: int = COMMANDS[args.command](args, store, clock or SYSTEM_CLOCK)
        sys.stdout.flush()  # a closed pipe must fail here, where it is handled, not at exit
        return code
    except (TriggerNbError, OSError, ImportError) as error:
        if isinstance(error, BrokenPipeError):  # `trigger-nb logs X | head`: not an error
            _silence_stdout()
            return EXIT_OK
        # a command's own usage errors (commands.UsageError) carry exit code 2
        return _fail(str(error), getattr(error, "exit_code", EXIT_NOT_FOUND))
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


def _open_store(args: argparse.Namespace) -> Store:
    """The store to read; a missing one is an error (listing must not create an empty store)."""
    from trigger_nb._store.store import default_directory

    if hasattr(args, "store"):
        return open_existing_store(args.store, "check --store")
    if hasattr(args, "dir"):
        return open_existing_store(args.dir, "check --dir")
    if os.environ.get(STORE_ENV_VAR):
        return open_existing_store(os.environ[STORE_ENV_VAR], f"check ${STORE_ENV_VAR}")
    if os.environ.get(DIR_ENV_VAR):
        return open_existing_store(default_directory(), f"check ${DIR_ENV_VAR}")
    hint = f"run from your notebook's directory, or pass --dir DIR or set ${DIR_ENV_VAR}"
    return open_existing_store(default_directory(), hint)


def open_existing_store(given: str, hint: str) -> Store:
    """The store at a URL or directory that must already exist (``hint``: how to fix it)."""
    from trigger_nb._store.store import DiskStore, PostgresStore

    if is_url(given):
        return PostgresStore(given, create=False)
    where = Path(given).resolve()
    if not where.is_dir():
        raise NotFoundError(f"no trigger_nb store at {where}: the directory does not exist; {hint}")
    if not (where / _STORE_FILE).is_file():
        raise NotFoundError(f"{where} is not a trigger_nb store (no {_STORE_FILE}): {hint}")
    return DiskStore(where)
