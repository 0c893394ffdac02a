"""Copy runs from one store to another (``trigger-nb copy --from STORE --to STORE``): a
notebook's local diskcache history onto the team's PostgreSQL store, or back.

Runs are copied as stored (the sealed bytes, checksums and all: nothing is unpickled), one run at
a time, each while holding it in both stores so no execution changes it meanwhile. A run's big
outputs go first, one write each (a file streamed to the other store's file: never whole in
memory), then its task entries, output captures and logs with its record last, in one write:
a run appears in the destination complete or not at all. A run the destination already has is
left alone (reported as skipped): copying never overwrites history.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from trigger_nb._store.backend import Backend, Lazy, Value
from trigger_nb._store.snapshot import load_value
from trigger_nb._store.store import Store


@dataclass
class CopyReport:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the destination


def copy_runs(
    source: Store,
    destination: Store,
    run_ids: Iterable[str] | None = None,
    *,
    progress: Callable[[str, bool], None] | None = None,
) -> CopyReport:
    """Copy ``run_ids`` (default: every run) from ``source`` to ``destination``; ``progress``
    is told each run id and whether it was copied."""
    report = CopyReport()
    wanted = [r.id for r in source.list_runs()] if run_ids is None else list(run_ids)
    for run_id in reversed(wanted):  # oldest first, so an interrupted copy keeps the old ones
        if destination.load_run_raw(run_id) is not None:
            report.skipped.append(run_id)
            copied = False
        else:
            with source.lock_run(run_id), destination.lock_run(run_id):
                copied = _copy_run(source, destination, run_id)
            (report.copied if copied else report.skipped).append(run_id)
        if progress is not None:
            progress(run_id, copied)
    return report


def _copy_run(source: Store, destination: Store, run_id: str) -> bool:
    read = source.backend
    record = read.get(f"r:{run_id}")
    if record is None or destination.load_run_raw(run_id) is not None:
        return False  # deleted meanwhile, or copied by someone else meanwhile
    for rest in read.scan(f"o:{run_id}:"):
        _copy_big(read, destination, f"o:{run_id}:{rest}")
    _copy_big(read, destination, f"ro:{run_id}")
    puts: list[tuple[str, Value]] = []
    for kind in ("t", "c", "l"):  # entries, what tasks printed, logs
        prefix = f"{kind}:{run_id}:"
        puts += [(prefix + rest, _value(v, run_id)) for rest, v in read.scan(prefix).items()]
    puts.append((f"r:{run_id}", record))
    destination.backend.write(puts)
    return True


def _copy_big(read: Backend, destination: Store, key: str) -> None:
    """One output, as stored: a file (a big output) streamed from file to file, never whole in
    memory; anything else as its value."""
    source = read.file_of(key)
    if source is None:
        return
    if isinstance(source, Path):
        path = source

        def write(file: IO[bytes]) -> None:
            with open(path, "rb") as original:
                shutil.copyfileobj(original, file, COPY_CHUNK_BYTES)

        destination.backend.put_file(key, write)
    else:
        destination.backend.write([(key, source)])


COPY_CHUNK_BYTES = 4 * 1024 * 1024


def _value(value: Value | Lazy, run_id: str) -> Value:
    return load_value(value, f"a stored value of run {run_id}")
