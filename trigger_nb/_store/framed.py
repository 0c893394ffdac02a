"""Big outputs as *framed* files: written once, streamed, read back at disk speed or mapped.

An output holding big buffers (numpy arrays, the numpy-backed columns of a DataFrame, Arrow
tables: anything pickle protocol 5 can hand out of band, numpy's datetimes too: see
array_pickler.py) is pickled with those buffers left out (``Pickled``): the pickle stream
itself stays small, and every buffer is written straight from the object's memory to the
file, without a copy in between and without pickling twice::

    MAGIC  <pickle stream>  (pad to 64)  <buffer 0>  (pad)  <buffer 1> ...  <trailer JSON>
    <trailer length u64> <trailer crc32 u32> END

The trailer lists where each part is, its length and its digest. Format 2 (written now):
XXH3-64 (``xxhash``), computed a chunk at a time as the chunk is written or read, while it is
in the CPU cache: ~10 GB/s from memory, faster from cache, so checking costs a few percent of
the I/O on one core (CRC-32, format 1's digest, ran at ~3 GB/s: a third more than writing the
data, and a second thread hid it only when a core was free). Format 1 files (CRC-32) are still
read and verified; a newer format than this version knows is a ``CacheReadError`` that says to
upgrade.

Reading checks the trailer, the file size and, as it reads, every part's digest: a damaged
file is a ``CacheReadError``, never a wrong value. With ``mmap=True`` the buffers are mapped
read-only instead of read: the trailer, the sizes and the pickle stream are checked at once;
the buffers' digests only on demand (``verify``), since checking them would read every page
the mapping is there to avoid reading. Buffers start on 64-byte boundaries, so mapped arrays
are aligned as numpy likes them.
"""

from __future__ import annotations

import io
import json
import mmap as mmap_module
import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

from trigger_nb._core.codec import Stored, Unpickled
from trigger_nb._store.array_pickler import dumps_out_of_band
from trigger_nb._store.backend import Backend
from trigger_nb._store.sealed import Label, seal, unreadable, unseal

MAGIC = b"TNBFRM1\n"
END = b"TNBEND1\n"
_TAIL = struct.Struct("<QI")  # trailer length, trailer crc32
ALIGN = 64
VERSION = 2  # the trailer's "v": 1 = CRC-32 digests, 2 = XXH3-64 digests
# Written, read and hashed a chunk at a time: the chunk is hashed while it is in the CPU's L2
# cache (just after the write or the read copied it), so the data crosses memory once, and
# the hash costs a few percent of the copy; the loop's 4,096 turns per GiB cost ~10 ms.
# Measured against a helper thread hashing 8 MiB chunks behind the I/O: the same wall time on an
# idle machine, ~10% more CPU time (hashing from memory, not cache), and slower on a loaded one.
CHUNK = 256 * 1024
# Below this many bytes of buffers an output is pickled the ordinary way: a framed file costs
# a file of its own, worth it only for big values.
FRAMED_MIN_BYTES = 1024 * 1024
_DAMAGED = "its stored output is damaged (checksum mismatch)"
_PRIVATE = getattr(mmap_module, "MAP_PRIVATE", None)
if _PRIVATE is not None:
    _PRIVATE |= mmap_module.MAP_ANONYMOUS | getattr(mmap_module, "MAP_POPULATE", 0)


class Pickled(NamedTuple):
    """An output pickled with its big buffers out of band."""

    stream: bytes
    buffers: list[pickle.PickleBuffer]

    @property
    def size(self) -> int:
        return len(self.stream) + sum(memoryview(b).nbytes for b in self.buffers)


def stored_size(data: bytes | Pickled) -> int:
    """How many bytes an output takes as stored (its buffers included)."""
    return data.size if isinstance(data, Pickled) else len(data)


def pickle_out_of_band(value: object) -> Pickled | bytes:
    """``value`` pickled (protocol 5): a ``Pickled`` when it holds at least
    ``FRAMED_MIN_BYTES`` of buffers, else the ordinary bytes (with those buffers in band)."""
    stream, buffers = dumps_out_of_band(value)
    if not buffers:
        return stream
    if sum(memoryview(b).nbytes for b in buffers) < FRAMED_MIN_BYTES:
        return pickle.dumps(value, protocol=5)  # small: in band, one blob
    return Pickled(stream, buffers)


class _Hasher(Protocol):
    def update(self, data: Any, /) -> object: ...
    def intdigest(self) -> int: ...


def _hasher(version: int) -> _Hasher:
    """A part's digest, fed a chunk at a time: XXH3-64 (format 2) or CRC-32 (format 1)."""
    if version == 1:
        return _Crc32()
    import xxhash  # imported here: `import trigger_nb` stays light

    return xxhash.xxh3_64()


class _Crc32:
    __slots__ = ("crc",)

    def __init__(self) -> None:
        self.crc = 0

    def update(self, data: Any, /) -> None:
        self.crc = zlib.crc32(data, self.crc)

    def intdigest(self) -> int:
        return self.crc


def write_framed(file: IO[bytes], pickled: Pickled) -> int:
    """Write ``pickled`` to ``file`` (positioned at 0); returns the bytes written."""
    file.write(MAGIC)
    views = [memoryview(pickled.stream)]
    views += [buffer.raw() for buffer in pickled.buffers]  # contiguous bytes, no copy
    readonly = [0] + [int(memoryview(buffer).readonly) for buffer in pickled.buffers]
    parts: list[list[int]] = []
    position = len(MAGIC)
    for view, flag in zip(views, readonly, strict=True):
        if parts:  # buffers start aligned, the stream right after MAGIC
            position = _pad(file, position)
        parts.append([position, view.nbytes, _write_hashed(file, view), flag])
        position += view.nbytes
    trailer = json.dumps({"v": VERSION, "parts": parts}).encode("ascii")
    file.write(trailer)
    file.write(_TAIL.pack(len(trailer), zlib.crc32(trailer)))
    file.write(END)
    return position + len(trailer) + _TAIL.size + len(END)


def is_framed(head: bytes | memoryview) -> bool:
    return bytes(head[: len(MAGIC)]) == MAGIC


def read_framed(
    file: IO[bytes], size: int, what: Label, *, mapped: bool = False, held: bytes | None = None
) -> Unpickled:
    """The parts of a framed file of ``size`` bytes, checked; CacheReadError naming ``what``
    if it is damaged. ``mapped``: buffers mapped read-only (``file`` must be a real file, or
    ``held`` the bytes it reads from: then read-only views of those)."""
    version, parts = _trailer(file, size, what)
    (stream_at, stream_length, stream_digest, _), buffers_at = parts[0], parts[1:]
    file.seek(stream_at)
    stream = file.read(stream_length)
    if len(stream) != stream_length or _digest(version, stream) != stream_digest:
        raise unreadable(what, _DAMAGED)
    if mapped:
        if held is not None:
            whole = memoryview(held)
        else:
            whole = memoryview(mmap_module.mmap(file.fileno(), 0, access=mmap_module.ACCESS_READ))
        return Unpickled(stream, [whole[at : at + length] for at, length, _, _ in buffers_at])
    buffers: list[Any] = []
    for at, length, digest, _ in buffers_at:
        target = _allocate(length)
        file.seek(at)
        if _read_hashed(file, memoryview(target), version) != digest:
            raise unreadable(what, _DAMAGED)
        buffers.append(target)
    return Unpickled(stream, buffers)


def _allocate(length: int) -> bytearray | mmap_module.mmap:
    """Writable memory for a buffer about to be read in. A big one is private anonymous mapped
    memory, its pages faulted in at once (``MAP_POPULATE``: ~10% less CPU than one fault per
    page as the read touches them, which is what ``pickle.load``'s ``malloc``'d buffer costs).
    ``bytearray`` zero-fills it first, which cost as much as reading the file; a shared mapping
    (``mmap``'s default) ~15% more to fault in (its pages are shared memory)."""
    if length < FRAMED_MIN_BYTES:
        return bytearray(length)
    if _PRIVATE is None:  # Windows: no flags
        return mmap_module.mmap(-1, length)
    return mmap_module.mmap(-1, length, flags=_PRIVATE)


def verify_framed(file: IO[bytes], size: int, what: Label) -> None:
    """Check every part of a framed file against its digest (what ``mapped`` reads skip)."""
    version, parts = _trailer(file, size, what)
    for at, length, expected, _ in parts:
        file.seek(at)
        digest, left = _hasher(version), length
        while left > 0:
            chunk = file.read(min(CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
        if left or digest.intdigest() != expected:
            raise unreadable(what, _DAMAGED)


def _trailer(file: IO[bytes], size: int, what: Label) -> tuple[int, list[list[int]]]:
    """The format version and the parts the trailer lists, checked against the file's size."""
    tail = _TAIL.size + len(END)
    if size < len(MAGIC) + tail:
        raise unreadable(what, f"its stored output is truncated ({size} bytes)")
    file.seek(size - tail)
    end = file.read(tail)
    if len(end) != tail or end[_TAIL.size :] != END:
        raise unreadable(what, "its stored output is truncated or damaged (no trailer)")
    length, crc = _TAIL.unpack(end[: _TAIL.size])
    if length > size - tail - len(MAGIC):
        raise unreadable(what, "its stored output is damaged (bad trailer)")
    file.seek(size - tail - length)
    trailer = file.read(length)
    if zlib.crc32(trailer) != crc:
        raise unreadable(what, _DAMAGED)
    found = json.loads(trailer)
    version = found.get("v")
    if version not in (1, VERSION):
        raise unreadable(
            what,
            f"its stored output is in framed format {version!r}, newer than this trigger_nb "
            f"reads ({VERSION}): upgrade trigger_nb (pip install -U trigger-nb) to read it",
        )
    parts: list[list[int]] = found["parts"]
    limit = size - tail - length
    if not parts or any(at + n > limit for at, n, _, _ in parts):
        raise unreadable(what, "its stored output is truncated or damaged (bad part sizes)")
    return version, parts


def _digest(version: int, data: bytes | memoryview) -> int:
    digest = _hasher(version)
    digest.update(data)
    return digest.intdigest()


def _pad(file: IO[bytes], position: int) -> int:
    gap = -position % ALIGN
    if gap:
        file.write(b"\0" * gap)
    return position + gap


def _write_hashed(file: IO[bytes], view: memoryview) -> int:
    """Write ``view`` a chunk at a time, hashing each chunk just after writing it; returns the
    digest. In that order the write's copy (the kernel's, at memory speed) brings the chunk
    into the cache and the hash reads it from there (~50 GB/s); hashing first made the hash pay
    for reading memory (~11 GB/s) and the copy gained less than that: 120 MB of a DataFrame's
    columns cost 3 ms more CPU than unhashed writes instead of 6-10 ms."""
    digest = _hasher(VERSION)
    update, write = digest.update, file.write
    for start in range(0, view.nbytes, CHUNK):
        chunk = view[start : start + CHUNK]
        write(chunk)
        update(chunk)
    return digest.intdigest()


def _read_hashed(file: IO[bytes], target: memoryview, version: int) -> int:
    """Fill ``target`` from ``file`` a chunk at a time, hashing each chunk just read (still in
    the cache); its digest, or -1 if the file ends first."""
    digest = _hasher(version)
    update, readinto = digest.update, file.readinto  # type: ignore[attr-defined]
    for start in range(0, target.nbytes, CHUNK):
        chunk = target[start : start + CHUNK]
        if readinto(chunk) != chunk.nbytes:
            return -1
        update(chunk)
    return digest.intdigest()


def read_stored(backend: Backend, key: str, what: Label, *, mapped: bool = False) -> Stored | None:
    """The stored output under ``key`` (None if there is none): a framed file's parts, checked
    (``mapped``: its buffers mapped), or a sealed blob's payload, checked."""
    try:
        source = backend.file_of(key)
        if source is None:
            return None
        if isinstance(source, Path):
            with open(source, "rb") as file:
                if is_framed(file.read(len(MAGIC))):
                    return read_framed(file, os.fstat(file.fileno()).st_size, what, mapped=mapped)
                file.seek(0)
                source = file.read()
        if isinstance(source, str):
            raise unreadable(what, "the stored output is text, not bytes")
        if is_framed(source):
            held = source if mapped else None
            return read_framed(io.BytesIO(source), len(source), what, mapped=mapped, held=held)
        return unseal(source, what)[0]
    except OSError as error:
        raise unreadable(what, f"the stored output file cannot be read ({error})") from error


def verify_stored(backend: Backend, key: str, what: Label) -> None:
    """Check every byte stored under ``key`` against its checksums; CacheReadError if not."""
    source = backend.file_of(key)
    if isinstance(source, Path):
        with open(source, "rb") as file:
            if is_framed(file.read(len(MAGIC))):
                verify_framed(file, os.fstat(file.fileno()).st_size, what)
                return
    if read_stored(backend, key, what) is None:
        raise unreadable(what, "its stored output is missing")


def save_stored(backend: Backend, key: str, data: bytes | Pickled, duration: float = 0.0) -> None:
    """Store an output under ``key`` on its own: framed when it has big buffers, else sealed."""
    if isinstance(data, Pickled):
        backend.put_file(key, lambda file: write_framed(file, data))
    else:
        backend.write([(key, seal(data, duration))])
