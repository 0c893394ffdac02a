"""A store's run-level keys: run records, run outputs, cancel requests, and the run lock.

Part of ``Store`` (see ``trigger_nb._store.store`` for the layout of every key); a run's tasks and
logs are ``trigger_nb._store.task_entries``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime

from pydantic import BaseModel

from trigger_nb._core.codec import Stored
from trigger_nb._core.model import RunRecord
from trigger_nb._core.storable import storable_data
from trigger_nb._store.backend import Backend, Value
from trigger_nb._store.framed import Pickled, read_stored, save_stored
from trigger_nb._store.sealed import seal
from trigger_nb._store.snapshot import load_value
from trigger_nb.errors import CacheReadError, NotFoundError, RunBusyError

# A run output stored as "the output of task T" (never a pickle: no pickle starts like this).
_OUTPUT_REF = b"TNBREF1\n"


class RunRecords:
    """Runs: their records, outputs and cancel requests, and the lock one execution holds."""

    backend: Backend
    _held: threading.local

    @property
    def location(self) -> str:
        return self.backend.location

    def load_run(self, run_id: str) -> RunRecord | None:
        raw = self.load_run_raw(run_id)
        return None if raw is None else parse_run(run_id, raw)

    def load_run_raw(self, run_id: str) -> Value | None:
        """A run record's stored text, unparsed (None if there is no such run): one key read.

        Every change to a run rewrites this text, so comparing it with the text last parsed
        tells a ``JobRun`` handle whether its run changed, without parsing it again."""
        return self.backend.get(f"r:{run_id}")

    def save_run(self, run: RunRecord) -> None:
        self.backend.write([(f"r:{run.id}", record_json(run))])

    def list_runs(self) -> list[RunRecord]:
        runs = []
        for value in self.backend.scan("r:").values():
            try:
                runs.append(RunRecord.model_validate_json(load_value(value, "a run record")))
            except (ValueError, CacheReadError):
                continue  # a damaged run record must not hide every other run
        return sorted(runs, key=lambda r: r.created_at, reverse=True)

    def find_run(self, prefix: str) -> RunRecord:
        """The run whose id is ``prefix`` or uniquely starts with it (``run_`` may be left off)."""
        exact = self.load_run(prefix)
        if exact is not None:
            return exact
        wanted = prefix if prefix.startswith("run_") else f"run_{prefix}"
        matches = [r for r in self.list_runs() if r.id.startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFoundError(f"no run matches {prefix!r} in {self.location}")
        ids = ", ".join(sorted(r.id for r in matches)[:5])
        raise NotFoundError(f"run id {prefix!r} is ambiguous ({ids}…): give more characters")

    def request_cancel(self, run_id: str) -> None:
        """Ask the process executing ``run_id`` to stop before its next task."""
        self.backend.write([(f"x:{run_id}", "cancel")])

    def is_cancel_requested(self, run_id: str) -> bool:
        return self.backend.get(f"x:{run_id}") is not None

    def clear_cancel(self, run_id: str) -> None:
        self.backend.delete(f"x:{run_id}")

    def remove_run(self, run_id: str) -> None:
        """Delete a run and everything it recorded, once it is not executing anywhere (a run
        executing in another process is deleted when it stops, not from under it: deleting
        mid-execution would leave what it records afterwards as a partial run)."""
        with self.lock_run(run_id, remove=True):
            self.delete_run(run_id)

    def delete_run(self, run_id: str) -> None:
        """Delete a run's records now (``remove_run`` waits for it to stop executing first)."""
        self.backend.write(
            [],
            deletes=[f"r:{run_id}", f"ro:{run_id}", f"x:{run_id}"],
            # tasks, big outputs, output captures, logs, refresh marks, superseded outputs
            prefixes=[f"{kind}:{run_id}:" for kind in "toclfh"],
        )

    def prune(self, older_than: datetime, *, dry_run: bool = False) -> list[str]:
        """Delete every run last active before ``older_than``; return their ids (oldest first).

        A run's last activity is its ``completed_at``, else its ``updated_at``; a WAITING run stays
        active until its resume time, so a long ``io.wait`` is never pruned before it is due.
        """
        stale = [r for r in self.list_runs() if last_active(r) < older_than]
        stale.sort(key=last_active)
        if not dry_run:
            for record in stale:
                self.remove_run(record.id)  # a run executing elsewhere finishes first
        return [r.id for r in stale]

    def save_run_output(self, run_id: str, data: bytes | Pickled) -> None:
        save_stored(self.backend, f"ro:{run_id}", data)

    def save_run_output_ref(self, run_id: str, task_id: str) -> None:
        """The run's output is the output of its task ``task_id`` (a big one): stored once."""
        self.backend.write([(f"ro:{run_id}", seal(_OUTPUT_REF + task_id.encode("ascii"), 0.0))])

    def read_run_output(self, run_id: str) -> Stored | None:
        what = f"run {run_id}"
        found = read_stored(self.backend, f"ro:{run_id}", what)
        if isinstance(found, (bytes, memoryview)) and bytes(found[:8]) == _OUTPUT_REF:
            task_id = bytes(found[8:]).decode("ascii")
            # Store mixes TaskEntries in: the task's output, read as any view reads it
            return self.read_output(run_id, task_id)  # type: ignore[attr-defined,no-any-return]
        return found

    @contextlib.contextmanager
    def lock_run(self, run_id: str, *, remove: bool = False) -> Iterator[None]:
        """Hold the run for one execution: a second process (or thread) waits here.

        ``remove``: the run is being deleted; its lock goes with it."""
        held: set[str] = self._held.__dict__.setdefault("runs", set())
        if run_id in held:
            # Waiting on a lock this very thread holds would hang the kernel forever.
            raise RunBusyError(
                f"run {run_id} is already executing in this thread: a run cannot trigger or "
                "resume itself; use job.trigger(..., new_run=True) or another payload"
            )
        with self.backend.lock(run_id, remove=remove):
            held.add(run_id)
            try:
                yield
            finally:
                held.discard(run_id)


def parse_run(run_id: str, raw: Value) -> RunRecord:
    """A run record from its stored text (``Store.load_run_raw``); CacheReadError if damaged."""
    try:
        return RunRecord.model_validate_json(raw)
    except ValueError as error:
        raise CacheReadError(f"run {run_id}: its stored record is unreadable") from error


def last_active(record: RunRecord) -> datetime:
    """When a run last did (or, for a pending wait, will do) something: the age ``prune`` uses."""
    moment = record.completed_at or record.updated_at
    if record.wait_until is not None and record.completed_at is None:
        moment = max(moment, record.wait_until)
    return moment


def record_json(record: BaseModel, *, compact: bool = False) -> bytes:
    """A record as UTF-8 JSON. The engine escapes every text it stores (``storable_text``);
    should a text it missed hold what UTF-8 cannot (a lone surrogate), the whole record is
    escaped here rather than failing, so a run can always be recorded."""
    serializer = record.__pydantic_serializer__
    try:
        return serializer.to_json(record, exclude_unset=compact)
    except ValueError:  # PydanticSerializationError: UnicodeEncodeError inside
        fields = storable_data(serializer.to_python(record, mode="json"))
        repaired = type(record).model_validate(fields)
        return serializer.to_json(repaired, exclude_unset=compact)
