"""The OS file lock that holds a run across processes (trigger_nb/file_lock.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from trigger_nb._store.file_lock import file_lock


def test_a_waiter_on_a_removed_lock_file_locks_the_new_one(tmp_path: Path) -> None:
    """A waits on the lock file of a run being removed; the remover deletes the file and a
    newcomer locks a fresh one at the same path before A wakes up. A must then wait for the
    newcomer: holding the deleted file's lock would let both in at once."""
    path = tmp_path / "locks" / "run_a.lock"
    times: dict[str, float] = {}

    def waiter() -> None:
        with file_lock(path):
            times["waiter in"] = time.monotonic()

    with file_lock(path, remove=True):
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.2)  # the waiter is polling the lock of the file about to be deleted
    with file_lock(path):  # the newcomer: a new file at the same path
        time.sleep(0.3)
        times["newcomer out"] = time.monotonic()
    thread.join()
    assert times["waiter in"] >= times["newcomer out"]
