"""How every view and the command line write times, durations, countdowns and run ids.

One formatter per thing shown: the tree, the static HTML, the text outline, the explorer, the
resume messages and ``trigger-nb`` all call these, so "2.50 s" or "resumes in 1m 02s" reads the
same everywhere. A view decides only what a missing value looks like (``missing``): the notebook
views write "—", the command line's ASCII tables "-". "Now" is always passed in: it comes from
the run's clock (a ``FakeClock`` in tests), never from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from trigger_nb._core.model import AttemptRecord, RunRecord

MISSING = "—"  # a time or duration not known (yet), in the notebook views
SHORT_ID_CHARS = 12  # "run_" + 8 hex digits
_OTHER_ID_CHARS = 8  # a run id given by the user (``run_id=...``), in a header


# --- moments --------------------------------------------------------------------------------


def format_time(moment: datetime | None, missing: str = MISSING) -> str:
    """Local wall-clock time of the kernel (or terminal), to the second."""
    if moment is None:
        return missing
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def format_time_of_day(moment: datetime) -> str:
    """Local time of day to the millisecond, e.g. 14:03:07.250: a log line within its run."""
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]


def format_utc_time(moment: datetime) -> str:
    """Time of day in UTC, e.g. 14:03:07 UTC: when a waiting run resumes."""
    return moment.strftime("%H:%M:%S UTC")


# --- durations ------------------------------------------------------------------------------


def format_duration(seconds: float | None, missing: str = MISSING) -> str:
    """12 ms, 2.50 s, 3m 05s, 2h 04m, 3d 04h: every view and the CLI write durations so."""
    if seconds is None:
        return missing
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def format_countdown(wait_until: datetime | None, now: datetime) -> str:
    """'resumes in 2h 59m 58s', or 'due: ...' once the time has passed."""
    if wait_until is None:
        return "waiting"
    left = (wait_until - now).total_seconds()
    if left <= 0:
        return "due: re-run the cell or call run.resume()"
    whole = int(left + 0.999)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
    return f"resumes in {text}"


def run_active_seconds(record: RunRecord, now: datetime) -> float:
    """The run's active time: its finished executions', plus the running one's so far."""
    active = record.active_seconds
    latest = record.latest_execution
    if latest is not None and latest.finished_at is None:
        active += max((now - latest.started_at).total_seconds(), 0.0)
    return active


def run_duration_text(record: RunRecord, now: datetime) -> str:
    """How long a run worked, e.g. "2.50 s", or "active 0.50 s over 3 executions, 2d 01h span"
    when it took several executions or its span is much longer than its active time: a run that
    waited two days did not work for two days."""
    active = run_active_seconds(record, now)
    running = record.latest_execution is not None and record.latest_execution.finished_at is None
    wall = (now - record.created_at).total_seconds() if running else record.wall_seconds
    wall = max(wall, active)
    count = record.executions
    if count > 1 or wall - active > max(active, 1.0):
        plural = "" if count == 1 else "s"
        return (
            f"active {format_duration(active)} over {count} execution{plural}, "
            f"{format_duration(wall)} span"
        )
    return format_duration(active)


def attempt_seconds(attempt: AttemptRecord) -> float | None:
    """An attempt's own time (None while it runs): not the task's, which spans its retries."""
    if attempt.finished_at is None:
        return None
    return max((attempt.finished_at - attempt.started_at).total_seconds(), 0.0)


# --- run ids --------------------------------------------------------------------------------


def short_run_id(run_id: str) -> str:
    """A run's id in a header or the explorer's list (the full id is its tooltip)."""
    return run_id[: SHORT_ID_CHARS if run_id.startswith("run_") else _OTHER_ID_CHARS]


def short_run_ids(ids: Iterable[str]) -> dict[str, str]:
    """Each generated run id cut to the shortest prefix (at least ``SHORT_ID_CHARS``) no other
    id shares, so it can be typed back (``trigger-nb show``); other ids stay whole.

    In sorted order an id shares its longest prefix with a neighbour, so this is O(n log n).
    """
    ordered = sorted(set(ids))
    short = {}
    for i, run_id in enumerate(ordered):
        neighbours = ordered[max(i - 1, 0) : i] + ordered[i + 1 : i + 2]
        shared = max((_shared_prefix(run_id, n) for n in neighbours), default=0)
        size = max(shared + 1, SHORT_ID_CHARS) if run_id.startswith("run_") else len(run_id)
        short[run_id] = run_id[:size]
    return short


def _shared_prefix(a: str, b: str) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))
