"""Sealed blobs: stored bytes that carry a checksum, so damage is detected instead of unpickled.

Two shapes, both checked with CRC-32 (it detects every flipped byte, truncation and burst of
garbage that disks and copies produce, at ~2.5 GB/s, four times blake2b's speed here; it is a
damage check, not a defence against someone forging the store)::

    output blob   <crc32 u32><duration f64><payload>
    task entry    <record crc32 u32><output crc32 u32><duration f64><record length u32>
                  <placement u8><record JSON><output?>

A *task entry* is one store value per task: its record and, when small, its output. Completing a
task is then one write of one value, and a replay reads one row and checks one checksum.
``placement`` says where the output is: none (the task is not COMPLETED), inline after the
record, or in an output blob of its own (big outputs: diskcache keeps them in files, read only
when replayed). The record and the inline output have a checksum each: a replay checks only the
output it returns, a view only the record it shows.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from trigger_nb.errors import CacheReadError

NO_OUTPUT, INLINE, SEPARATE = 0, 1, 2
# Outputs up to this size live in the task entry (read by the bulk read of a replay); bigger ones
# in a blob of their own, so loading a run's entries never loads megabytes it may not need.
INLINE_OUTPUT_BYTES = 8 * 1024

_BLOB = struct.Struct("<Id")
_ENTRY = struct.Struct("<IIdIB")
_ENTRY_SIZE = _ENTRY.size
_unpack_header = _ENTRY.unpack_from
_crc32 = zlib.crc32

Label = str | Callable[[], str]


class Entry(NamedTuple):
    """An unpacked task entry."""

    record_json: bytes  # checked against its checksum by ``checked_record``
    placement: int
    output: bytes | None  # the pickled output when inline, checked
    duration: float  # seconds the task took when it ran (the time a replay saves)
    record_crc: int

    def checked_record(self, what: Label) -> bytes:
        if _crc32(self.record_json) != self.record_crc:
            raise unreadable(what, "its stored record is damaged (checksum mismatch)")
        return self.record_json


def seal(data: bytes, duration_seconds: float) -> bytes:
    return _BLOB.pack(_crc32(data), duration_seconds) + data


def unseal(blob: object, what: Label) -> tuple[memoryview, float]:
    """The payload of a sealed blob (a view, not a copy: outputs can be big) and its duration."""
    if not isinstance(blob, bytes) or len(blob) < _BLOB.size:
        raise unreadable(what, f"the stored output is {_describe(blob)}")
    checksum, duration = _BLOB.unpack_from(blob)
    data = memoryview(blob)[_BLOB.size :]
    if _crc32(data) != checksum:
        raise unreadable(what, "the stored output is damaged (checksum mismatch)")
    return data, float(duration)


def pack_entry(record_json: bytes, placement: int, duration: float, output: bytes = b"") -> bytes:
    header = _ENTRY.pack(_crc32(record_json), _crc32(output), duration, len(record_json), placement)
    return header + record_json + output


def unpack_entry(blob: object, what: Label) -> Entry:
    """The parts of a task entry, its output checked; ``CacheReadError`` naming ``what`` if the
    entry is damaged."""
    if type(blob) is not bytes or len(blob) < _ENTRY_SIZE:
        raise unreadable(what, f"its stored entry is {_describe(blob)}")
    record_crc, output_crc, duration, record_length, placement = _ENTRY.unpack_from(blob)
    end = _ENTRY_SIZE + record_length
    output = blob[end:]
    if placement > SEPARATE or end > len(blob) or _crc32(output) != output_crc:
        raise unreadable(what, "its stored entry is damaged (checksum mismatch)")
    return Entry(
        blob[_ENTRY_SIZE:end], placement, output if placement == INLINE else None, duration,
        record_crc,
    )  # fmt: skip


def completed_output(blob: object) -> tuple[bytes | None, float] | None:
    """``(output, duration)`` if ``blob`` is an intact COMPLETED entry, else None (not completed,
    damaged, not an entry: ``unpack_entry`` says which). ``output`` is the checked inline output,
    or None when it lives in a blob of its own.

    The check every replay makes, kept lean: it neither copies nor checks the record.
    """
    if type(blob) is not bytes or len(blob) < _ENTRY_SIZE:
        return None
    _, output_crc, duration, record_length, placement = _unpack_header(blob)
    end = _ENTRY_SIZE + record_length
    if placement == INLINE:
        output = blob[end:]
        if end <= len(blob) and _crc32(output) == output_crc:
            return output, duration
    elif placement == SEPARATE and end == len(blob) and not output_crc:  # crc32(b"") == 0
        return None, duration
    return None


# A COMPLETED entry as a replay keeps it (``lean_reader``): its checked inline output (None:
# in a blob of its own), the seconds it took, and its fingerprint key (None: none stored;
# NOT_READ: not read, the execution compares none). ~300 bytes for a small task whose entry is
# ~700: replaying a run of 100,000 tasks holds what the replay needs, not the store (issue 16).
class NotRead:
    """The fingerprint key of a ``Completed`` read without it (``lean_reader(False)``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_READ"


NOT_READ = NotRead()
Completed = tuple[bytes | None, float, bytes | NotRead | None]
_Blob = TypeVar("_Blob")


def lean_reader(digests: bool) -> Callable[[_Blob], Completed | _Blob]:
    """What a replay needs of an entry, made for every entry of a run as an execution starts:
    it does in one pass what each task's replay did (``completed_output``, and
    ``stored_digest`` if ``digests``: the execution compares fingerprints), nothing more.

    The reader returns ``Completed`` for an intact COMPLETED entry (its output checked now,
    once), else the blob itself (not completed, damaged, not an entry: whoever asks reads the
    whole entry again and says which).
    """

    def lean_entry(blob: _Blob) -> Completed | _Blob:
        if not isinstance(blob, bytes) or len(blob) < _ENTRY_SIZE:
            return blob
        _, output_crc, duration, record_length, placement = _unpack_header(blob)
        end = _ENTRY_SIZE + record_length
        output: bytes | None = None
        if placement == INLINE:
            output = blob[end:]
            if end > len(blob) or _crc32(output) != output_crc:
                return blob
        elif placement != SEPARATE or end != len(blob) or output_crc:  # crc32(b"") == 0
            return blob
        if not digests:
            return output, duration, NOT_READ
        at = blob.rfind(_DIGEST_FIELD, _ENTRY_SIZE, end)  # stored_digest, inline
        return output, duration, None if at < 0 else blob[at + _DIGEST_FIELD_SIZE : end - 2]

    return lean_entry


_DIGEST_FIELD = b'"fingerprint":"'
_DIGEST_FIELD_SIZE = len(_DIGEST_FIELD)


def stored_digest(blob: object) -> bytes | None:
    """The fingerprint key an entry's record ends with (``TaskRecord.fingerprint`` is
    the record's last field), read without parsing the record: a replay compares it with the
    task's current code on every call. None if the record has none (or is not an entry)."""
    if type(blob) is not bytes or len(blob) < _ENTRY_SIZE:
        return None
    end = _ENTRY_SIZE + _unpack_header(blob)[3]
    at = blob.rfind(_DIGEST_FIELD, _ENTRY_SIZE, end)
    if at < 0:
        return None
    return blob[at + _DIGEST_FIELD_SIZE : end - 2]  # up to the closing '"}'


def label_text(what: Label) -> str:
    # A function is only called on failure: replays are hot and the label is rarely needed.
    return what() if callable(what) else what


def unreadable(what: Label, reason: str, *, task_id: str = "") -> CacheReadError:
    """The error for stored data that cannot be used: "<what>: <reason>". The reason is kept as
    data too (``CacheReadError.reason``), for callers that name the thing better themselves."""
    return CacheReadError(f"{label_text(what)}: {reason}", task_id=task_id, reason=reason)


_NO_KEY: object = object()


def refresh_hint(run_id: str, cache_key: object = _NO_KEY) -> str:
    """How to get past a task whose stored result cannot be used (``cache_key``: the task's key,
    when the caller knows it; the one wording of this advice, in every message that gives it)."""
    key = "..." if cache_key is _NO_KEY else f"{cache_key!r}, ..."
    return (
        f"run it again with run_task({key}, refresh=True), or clear the run with "
        f"`trigger-nb clear --run {run_id}`"
    )


def _describe(blob: object) -> str:
    if isinstance(blob, bytes):
        return f"truncated ({len(blob)} bytes)"
    return f"not readable (a {type(blob).__name__} where bytes belong)"
