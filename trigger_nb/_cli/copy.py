"""``trigger-nb copy --from STORE --to STORE [--job J] [--run RUN_ID]``: move a notebook's runs
between stores (a directory and a ``postgresql://`` URL, either way; see ``_store.copy``).

The source must exist; the destination is created if it does not. Runs the destination already
has are skipped, never overwritten.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from trigger_nb._cli.render import plural
from trigger_nb._core.status import EXIT_OK, EXIT_USAGE
from trigger_nb._store.copy import copy_runs
from trigger_nb._store.store import Store, open_store
from trigger_nb.errors import NotFoundError, TriggerNbError


class CopyUsageError(TriggerNbError):
    exit_code = EXIT_USAGE


def run_copy(args: argparse.Namespace, open_existing: Callable[[str, str], Store]) -> int:
    source = open_existing(args.source, "check --from")
    try:
        destination = open_store(args.destination)
        try:
            if destination.location == source.location:
                raise CopyUsageError(
                    f"--from and --to are the same store ({source.location}): nothing to copy"
                )
            records = source.list_runs()
            if args.run:
                records = [source.find_run(args.run)]
            if args.job:
                records = [r for r in records if r.job_id == args.job]
                if not records:
                    raise NotFoundError(f"no runs of job {args.job!r} in {source.location}")
            report = copy_runs(source, destination, [r.id for r in records])
        finally:
            destination.close()
    finally:
        source.close()
    copied = plural(len(report.copied), "run")
    print(f"Copied {copied} from {source.location} to {destination.location}.")
    if report.skipped:
        print(f"Skipped {plural(len(report.skipped), 'run')} already there (never overwritten).")
    return EXIT_OK
