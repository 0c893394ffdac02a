"""Big outputs as *framed* files: written once, streamed, read back at disk speed or mapped.

An output holding big buffers (numpy arrays, the numpy-backed columns of a DataFrame, Arrow
tables: anything pickle protocol 5 can hand out of band) is pickled with those buffers left
out (``Pickled``): the pickle stream itself stays small, and every buffer is written straight
from the object's memory to the file, without a copy in between and without pickling twice::

    MAGIC  <pickle stream>  (pad to 64)  <buffer 0>  (pad)  <buffer 1> ...  <trailer JSON>
    <trailer length u64> <trailer crc32 u32> END

The trailer lists where each part is, its length and its CRC-32, computed while the part is
written (on another thread, so checking costs no extra pass). Reading checks the trailer, the
file size and, as it reads, every part's CRC: a damaged file is a ``CacheReadError``, never a
wrong value. With ``mmap=True`` the buffers are mapped read-only instead of read: the trailer,
the sizes and the pickle stream are checked at once; the buffers' CRCs only on demand
(``verify``), since checking them would read every page the mapping is there to avoid reading.
Buffers start on 64-byte boundaries, so mapped arrays are aligned as numpy likes them.
"""

from __future__ import annotations

import io
import json
import mmap as mmap_module
import os
import pickle
import queue
import struct
import threading
import zlib
from pathlib import Path
from typing import IO, Any, NamedTuple

from trigger_nb._core.codec import Stored, Unpickled
from trigger_nb._store.backend import Backend
from trigger_nb._store.sealed import Label, seal, unreadable, unseal

MAGIC = b"TNBFRM1\n"
END = b"TNBEND1\n"
_TAIL = struct.Struct("<QI")  # trailer length, trailer crc32
ALIGN = 64
CHUNK = 16 * 1024 * 1024  # written and checked a chunk at a time
# Below this many bytes of buffers an output is pickled the ordinary way: a framed file costs
# a file of its own, worth it only for big values.
FRAMED_MIN_BYTES = 1024 * 1024
# Below this a part is checked on the calling thread: a thread hand-off costs more.
_THREADED_MIN_BYTES = 32 * 1024 * 1024


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
    buffers: list[pickle.PickleBuffer] = []
    stream = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    if not buffers:
        return stream
    if sum(memoryview(b).nbytes for b in buffers) < FRAMED_MIN_BYTES:
        return pickle.dumps(value, protocol=5)  # small: in band, one blob
    return Pickled(stream, buffers)


def write_framed(file: IO[bytes], pickled: Pickled) -> int:
    """Write ``pickled`` to ``file`` (positioned at 0); returns the bytes written."""
    parts: list[list[int]] = []
    file.write(MAGIC)
    position, crc = _write_checked(file, len(MAGIC), memoryview(pickled.stream))
    parts.append([len(MAGIC), len(pickled.stream), crc, 0])
    for buffer in pickled.buffers:
        view = buffer.raw()  # contiguous bytes of the buffer, no copy
        position = _pad(file, position)
        start = position
        position, crc = _write_checked(file, position, view)
        parts.append([start, view.nbytes, crc, int(memoryview(buffer).readonly)])
    trailer = json.dumps({"v": 1, "parts": parts}).encode("ascii")
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
    parts = _trailer(file, size, what)
    (stream_at, stream_length, stream_crc, _), buffers_at = parts[0], parts[1:]
    file.seek(stream_at)
    stream = file.read(stream_length)
    if len(stream) != stream_length or zlib.crc32(stream) != stream_crc:
        raise unreadable(what, "its stored output is damaged (checksum mismatch)")
    if mapped:
        if held is not None:
            whole = memoryview(held)
        else:
            whole = memoryview(mmap_module.mmap(file.fileno(), 0, access=mmap_module.ACCESS_READ))
        return Unpickled(stream, [whole[at : at + length] for at, length, _, _ in buffers_at])
    buffers: list[Any] = []
    for at, length, crc, _ in buffers_at:
        target = _allocate(length)
        file.seek(at)
        if _read_checked(file, memoryview(target)) != crc:
            raise unreadable(what, "its stored output is damaged (checksum mismatch)")
        buffers.append(target)
    return Unpickled(stream, buffers)


def _allocate(length: int) -> bytearray | mmap_module.mmap:
    """Writable memory for a buffer about to be read in. A big one is anonymous mapped
    memory: ``bytearray`` zero-fills it first, which cost as much as reading the file (the
    pages are touched once, by the read, as ``pickle.load``'s own buffer is)."""
    if length < FRAMED_MIN_BYTES:
        return bytearray(length)
    return mmap_module.mmap(-1, length)


def verify_framed(file: IO[bytes], size: int, what: Label) -> None:
    """Check every part of a framed file against its CRC (what ``mapped`` reads skip)."""
    for at, length, crc, _ in _trailer(file, size, what):
        file.seek(at)
        checksum, left = 0, length
        while left > 0:
            chunk = file.read(min(CHUNK, left))
            if not chunk:
                break
            checksum, left = zlib.crc32(chunk, checksum), left - len(chunk)
        if left or checksum != crc:
            raise unreadable(what, "its stored output is damaged (checksum mismatch)")


def _trailer(file: IO[bytes], size: int, what: Label) -> list[list[int]]:
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
        raise unreadable(what, "its stored output is damaged (checksum mismatch)")
    parts: list[list[int]] = json.loads(trailer)["parts"]
    limit = size - tail - length
    if not parts or any(at + n > limit for at, n, _, _ in parts):
        raise unreadable(what, "its stored output is truncated or damaged (bad part sizes)")
    return parts


def _pad(file: IO[bytes], position: int) -> int:
    gap = -position % ALIGN
    if gap:
        file.write(b"\0" * gap)
    return position + gap


def _write_checked(file: IO[bytes], position: int, view: memoryview) -> tuple[int, int]:
    """Write ``view`` in chunks, its CRC-32 computed as it goes (on a helper thread for big
    ones: writing and checking then overlap); returns the new position and the CRC."""
    length = view.nbytes
    if length < _THREADED_MIN_BYTES:
        file.write(view)
        return position + length, zlib.crc32(view)
    with _Checksum() as checksum:
        for start in range(0, length, CHUNK):
            chunk = view[start : start + CHUNK]
            file.write(chunk)
            checksum.add(chunk)
    return position + length, checksum.value


def _read_checked(file: IO[bytes], target: memoryview) -> int:
    """Fill ``target`` from ``file``; its CRC-32, computed while the next chunk is read."""
    length = target.nbytes
    if length < _THREADED_MIN_BYTES:
        got = file.readinto(target)  # type: ignore[attr-defined]
        return zlib.crc32(target) if got == length else -1
    with _Checksum() as checksum:
        for start in range(0, length, CHUNK):
            chunk = target[start : start + CHUNK]
            if file.readinto(chunk) != chunk.nbytes:  # type: ignore[attr-defined]
                return -1
            checksum.add(chunk)
    return checksum.value


class _Checksum:
    """CRC-32 of chunks handed over one by one, computed on a thread of its own (zlib releases
    the GIL): the caller writes or reads the next chunk meanwhile."""

    def __init__(self) -> None:
        self.value = 0
        self._chunks: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="trigger_nb-crc", daemon=True)

    def __enter__(self) -> _Checksum:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._chunks.put(None)
        self._thread.join()

    def add(self, chunk: memoryview) -> None:
        self._chunks.put(chunk)

    def _run(self) -> None:
        crc, take = 0, self._chunks.get
        while (chunk := take()) is not None:
            crc = zlib.crc32(chunk, crc)
        self.value = crc


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
