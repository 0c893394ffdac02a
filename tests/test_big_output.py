"""Big outputs (arrays, DataFrames): streamed to a framed file of their own, read back exactly,
mapped read-only with ``mmap=True``, damage detected, crash-safe, memory bounded."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
import weakref
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from trigger_nb import CacheReadError, DiskStore, Store, TriggerClient
from trigger_nb._cli.main import main as cli
from trigger_nb._store.framed import CHUNK, END, FRAMED_MIN_BYTES, MAGIC

N = 300_000  # rows: every value below holds more than FRAMED_MIN_BYTES of buffers


def _frames() -> dict[str, Any]:
    index = pd.MultiIndex.from_arrays([np.arange(N) % 7, np.arange(N)], names=["group", "row"])
    return {
        "every dtype": pd.DataFrame(
            {
                "float": np.linspace(0, 1, N),
                "int": np.arange(N, dtype=np.int64),
                "bool": np.arange(N) % 2 == 0,
                "str": [f"s{i % 100}" for i in range(N)],
                "category": pd.Categorical(["a", "b", "c"] * (N // 3)),
                "utc": pd.date_range("2024-01-01", periods=N, freq="s", tz="UTC"),
                "paris": pd.date_range("2024-01-01", periods=N, freq="s", tz="Europe/Paris"),
                "delta": pd.to_timedelta(np.arange(N), unit="s"),
                "nullable": pd.array(np.arange(N), dtype="Int64"),
            }
        ),
        "multiindex": pd.DataFrame({"value": np.arange(N, dtype=np.float32)}, index=index),
        "series": pd.Series(np.arange(N, dtype=np.int32), name="s"),
    }


def _arrays() -> dict[str, Any]:
    base = np.arange(N * 4, dtype=np.float64).reshape(N, 4)
    return {
        "C order": base,
        "F order": np.asfortranarray(base),
        "non-contiguous view": base[::2, 1:3],
        "object dtype": np.array([{"i": i} for i in range(20_000)] * 10, dtype=object),
        "0-d": np.array(3.5),
        "structured": np.array(
            [(i, float(i)) for i in range(N)], dtype=[("id", "i8"), ("score", "f8")]
        ),
        # numpy pickles datetimes in band (they export no buffer): stored out of band here
        "datetime64": np.arange(N).astype("M8[s]"),
        "timedelta64 F order": np.asfortranarray(np.arange(N * 2).astype("m8[ms]").reshape(N, 2)),
        "datetime64 0-d": np.array(np.datetime64("2024-02-29T12:00", "ns")),
        "datetime64 view": np.arange(N * 2).astype("M8[D]")[::2],
        "structured with a datetime": np.array(
            [(i, i) for i in range(N)], dtype=[("at", "M8[us]"), ("n", "i4")]
        ),
        "nested containers": {"a": base, "pair": (base[:, 0].copy(), [base * 2])},
    }


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, (pd.DataFrame, pd.Series)):
        return bool(left.equals(right)) and type(left) is type(right)
    if isinstance(left, np.ndarray):
        return (
            type(right) is np.ndarray
            and left.dtype == right.dtype
            and left.shape == right.shape
            and bool(np.all(left == right))
        )
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)):
        return type(left) is type(right) and all(map(_equal, left, right))
    return bool(left == right)


def _big_store(store: Store, run_id: str) -> list[bytes]:
    """The first bytes of every big output file of the run."""
    heads = []
    for key in [k for k in store.backend.scan(f"o:{run_id}:")]:
        source = store.backend.file_of(f"o:{run_id}:{key}")
        if isinstance(source, Path):
            with open(source, "rb") as file:
                heads.append(file.read(len(MAGIC)))
        elif isinstance(source, bytes):
            heads.append(source[: len(MAGIC)])
    return heads


def test_arrays_and_frames_round_trip_exactly(any_store: Store) -> None:
    values = {**_arrays(), **_frames()}
    store = any_store
    client = TriggerClient("big", store=store, on_code_change="ignore")  # `calls` grows
    job = client.define_job("round-trip")
    calls: list[str] = []

    @job.run
    def body(payload: Any, io: Any, ctx: Any) -> dict[str, Any]:
        return {
            name: io.run_task(name, lambda v=value, n=name: calls.append(n) or v)
            for name, value in values.items()
        }

    first = job.trigger()
    assert first.status == "SUCCESS", first.error
    replayed = job.trigger().output
    assert len(calls) == len(values)  # replayed, not run again
    for name, value in values.items():
        assert _equal(value, first.output[name]), name
        assert _equal(value, replayed[name]), name
    for name in ("F order", "timedelta64 F order"):
        assert first.output[name].flags.f_contiguous and replayed[name].flags.f_contiguous
    heads = _big_store(store, first.id)
    # Framed: those with buffers numpy and pandas hand out of band, datetimes too (not the
    # non-contiguous views, the object array or the 0-d ones: pickled in band, as pickle does).
    assert heads.count(MAGIC) == 10


def test_a_numpy_array_is_handed_back_as_is_and_replayed_as_an_equal_writable_copy(
    client: TriggerClient,
) -> None:
    array = np.ones(FRAMED_MIN_BYTES // 8 + 1)
    job = client.define_job("as-is")
    job.run(lambda payload, io, ctx: io.run_task("a", lambda: array))
    assert job.trigger().output is array  # exact round trip by construction: no reload
    again = job.trigger().output
    assert again is not array and _equal(array, again) and again.flags.writeable


def test_mmap_returns_read_only_mapped_arrays_on_every_execution(client: TriggerClient) -> None:
    job = client.define_job("mapped")
    frame = pd.DataFrame({"x": np.arange(N, dtype=np.float64), "y": np.arange(N)})

    @job.run
    def body(payload: Any, io: Any, ctx: Any) -> Any:
        array = io.run_task("array", lambda: np.arange(N, dtype=np.float64), mmap=True)
        table = io.run_task("frame", lambda: frame, mmap=True)
        return array, table

    for _ in range(2):  # the first execution and a replay alike
        array, table = job.trigger().output
        assert type(array) is np.ndarray and not array.flags.writeable
        assert _equal(array, np.arange(N, dtype=np.float64))
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0
        assert table.equals(frame)


def test_mmap_must_be_a_bool(client: TriggerClient) -> None:
    job = client.define_job("bad-mmap")
    job.run(lambda payload, io, ctx: io.run_task("a", lambda: 1, mmap="yes"))
    run = job.trigger()
    assert run.status == "FAILURE" and "mmap='yes' is invalid" in run.error.message


def _damage(store: Store, run_id: str, how: str) -> None:
    (key,) = store.backend.scan(f"o:{run_id}:")
    path = store.backend.file_of(f"o:{run_id}:{key}")
    assert isinstance(path, Path)
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:  # one flipped byte in the middle of the array's buffer
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "flipped byte"])
def test_a_damaged_big_output_is_a_cache_read_error_and_nothing_reruns(
    client: TriggerClient, how: str
) -> None:
    calls: list[int] = []
    job = client.define_job(f"damaged-{how.replace(' ', '-')}")
    job.run(
        lambda payload, io, ctx: io.run_task(
            "big", lambda: calls.append(1) or np.arange(N * 2, dtype=np.float64)
        )
    )
    run = job.trigger()
    _damage(client.store, run.id, how)
    again = job.trigger()
    assert again.status == "FAILURE" and calls == [1]
    assert again.error.type.endswith("CacheReadError")
    assert "damaged" in again.error.message or "truncated" in again.error.message
    assert "refresh=True" in again.error.message
    with pytest.raises(CacheReadError):
        _ = run.task("big").output


def test_verify_checks_every_byte_of_mapped_outputs(
    client: TriggerClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = client.define_job("verify")
    job.run(lambda payload, io, ctx: io.run_task("big", lambda: np.arange(N * 2.0), mmap=True))
    run = job.trigger()
    store = str(tmp_path / "store")
    assert cli(["--dir", store, "verify", run.id]) == 0
    assert "1 output checked, intact" in capsys.readouterr().out
    _damage(client.store, run.id, "flipped byte")
    # A mapped read checks the trailer, sizes and pickle stream, not every page ...
    mapped = job.trigger().output
    assert mapped.shape == (N * 2,)
    # ... verify reads every byte.
    assert cli(["--dir", store, "verify", run.id]) == 1
    assert "damaged" in capsys.readouterr().err


CRASHER = """
import sys, numpy as np
from trigger_nb import TriggerClient
client = TriggerClient("crash", store=sys.argv[1])
job = client.define_job("big-write")
value = np.ones(1024 ** 3 // 8)  # 1 GiB
job.run(lambda payload, io, ctx: io.run_task("big", lambda: value))
print("writing", flush=True)
job.trigger()
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.leaves_running
def test_sigkill_during_a_1_gib_write_never_leaves_it_completed_with_a_short_file(
    tmp_path: Path,
) -> None:
    store_dir = tmp_path / "store"
    for delay in (0.3, 0.9):
        process = subprocess.Popen(
            [sys.executable, "-c", CRASHER, str(store_dir)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None and process.stdout.readline() == "writing\n"
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
        store = DiskStore(store_dir)
        client = TriggerClient("crash", store=store)
        for run in client.list_runs():
            for task in run.all_tasks:
                if task.status == "COMPLETED":  # the write had finished: the output is whole
                    assert task.output.nbytes == 1024**3
        store.close()


PEAK = """
import sys, numpy as np
from trigger_nb import TriggerClient
# The peak is the kernel's high-water mark of this process, reset first: getrusage's maxrss
# keeps the RSS of the test process this one was forked from (1 GiB after a test that read a
# big output), which made the test fail or pass with what ran before it.
open("/proc/self/clear_refs", "w").write("5")
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
def high_water_mark():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
client = TriggerClient("peak", store=sys.argv[1])
job = client.define_job("peak")
job.run(lambda payload, io, ctx: io.run_task("big", lambda: np.ones(64 * 1024 ** 2)))
base = rss()
if sys.argv[2] == "write":
    value = np.ones(64 * 1024 ** 2)  # 512 MiB
    base = rss()
    job.run(lambda payload, io, ctx: io.run_task("big", lambda: value))
job.trigger()
print(base, high_water_mark())
"""


@pytest.mark.slow
def test_writing_and_reading_a_big_array_needs_little_more_than_the_array(tmp_path: Path) -> None:
    size = 512 * 1024**2
    for phase in ("write", "read"):
        done = subprocess.run(
            [sys.executable, "-c", PEAK, str(tmp_path / "store"), phase],
            capture_output=True,
            text=True,
            check=True,
        )
        base, peak = map(int, done.stdout.split())
        # write: the array exists before; streaming it adds far less than a copy (measured:
        # a few MiB). read: the array is read into memory once. Loosely (allocator slack, a
        # loaded machine: +0.56x was seen once in a full run): within three quarters of a
        # copy, so a regression to a second copy (+1x) still fails.
        held = size if phase == "read" else 0
        assert peak - base <= held + size * 3 // 4, (phase, base, peak)


def test_arrow_tables_are_framed_and_mapped(client: TriggerClient) -> None:
    """pyarrow is in the ``test`` extra: this runs wherever the suite runs."""
    pyarrow = pytest.importorskip("pyarrow")
    table = pyarrow.table({"x": np.arange(N), "s": [str(i) for i in range(N)]})
    job = client.define_job("arrow")

    @job.run
    def body(payload: Any, io: Any, ctx: Any) -> Any:
        return io.run_task("t", lambda: table), io.run_task("m", lambda: table, mmap=True)

    first = job.trigger()
    assert _big_store(client.store, first.id) == [MAGIC, MAGIC]  # buffers out of band
    for read, mapped in (first.output, job.trigger().output):
        assert read.equals(table) and mapped.equals(table)


def test_mmap_on_every_store(any_store: Store) -> None:
    client = TriggerClient("mapped", store=any_store)
    job = client.define_job("mapped-anywhere")
    job.run(lambda payload, io, ctx: io.run_task("a", lambda: np.arange(N * 1.0), mmap=True))
    for _ in range(2):
        array = job.trigger().output
        assert _equal(array, np.arange(N * 1.0))
        # Mapped where the store keeps files (disk, PostgreSQL's local spool), views of the
        # stored bytes in memory: read-only on every store.
        assert not array.flags.writeable


def test_a_run_returning_a_big_task_output_stores_it_once(client: TriggerClient) -> None:
    array = np.arange(N * 2.0)
    job = client.define_job("returns-it")
    job.run(lambda payload, io, ctx: io.run_task("load", lambda: array))
    first = job.trigger()
    files = [
        client.store.backend.file_of(key)
        for key in (f"o:{first.id}:{first.task('load').id}", f"ro:{first.id}")
    ]
    assert isinstance(files[0], Path) and not isinstance(files[1], Path)  # a reference
    for run in (first, job.trigger()):  # executed, then replayed: the same reference
        reread = client.load_run(run.id)  # a fresh handle reads the output from the store
        assert _equal(array, reread.output)
        assert reread.record.output_size == run.task("load").output_size


def test_a_refreshed_big_output_stays_readable_in_the_tasks_history(any_store: Store) -> None:
    client = TriggerClient("history", store=any_store, on_code_change="ignore")
    job = client.define_job("refreshed")
    versions = iter([np.arange(N * 2.0), np.arange(N * 2.0) + 1])
    job.run(lambda payload, io, ctx: io.run_task("big", lambda: next(versions)))
    run = job.trigger()
    run.refresh_task("big")
    again = run.resume()
    task = again.task("big")
    assert _equal(task.output, np.arange(N * 2.0) + 1)
    first, second = task.history
    assert first.superseded and _equal(first.output, np.arange(N * 2.0))
    assert _equal(second.output, np.arange(N * 2.0) + 1)


def _framed_file(store: Store, run_id: str) -> Path:
    (key,) = store.backend.scan(f"o:{run_id}:")
    path = store.backend.file_of(f"o:{run_id}:{key}")
    assert isinstance(path, Path)
    return path


def _trailer(data: bytes) -> dict[str, Any]:
    length = int.from_bytes(data[-len(END) - 12 : -len(END) - 4], "little")
    found: dict[str, Any] = json.loads(data[-len(END) - 12 - length : -len(END) - 12])
    return found


def _with_trailer(data: bytes, trailer: dict[str, Any]) -> bytes:
    """``data`` (a framed file) with ``trailer`` in place of its own, checksummed."""
    old = len(data) - len(END) - 12 - int.from_bytes(data[-len(END) - 12 : -len(END) - 4], "little")
    text = json.dumps(trailer).encode()
    tail = len(text).to_bytes(8, "little") + zlib.crc32(text).to_bytes(4, "little")
    return data[:old] + text + tail + END


def test_a_dataframe_with_datetimes_is_streamed_whole_out_of_band(client: TriggerClient) -> None:
    frame = _frames()["every dtype"].drop(columns=["str", "category"])  # no Python objects
    frame.index = pd.date_range("2020-01-01", periods=N, freq="min", name="at")
    job = client.define_job("datetimes")
    job.run(lambda payload, io, ctx: io.run_task("frame", lambda: frame))
    run = job.trigger()
    parts = _trailer(_framed_file(client.store, run.id).read_bytes())["parts"]
    stream_length = parts[0][1]
    # Every column and the index went to the file as buffers: the pickle stream holds their
    # metadata only, not N datetimes (N * 8 bytes) copied in band.
    assert stream_length < 8 * 1024 < N
    assert _equal(frame, job.trigger().output)


def test_mapped_datetimes_are_read_only_views_of_the_file(client: TriggerClient) -> None:
    stamps = np.arange(N).astype("M8[ns]")
    frame = pd.DataFrame({"at": pd.date_range("2024-01-01", periods=N, freq="s", tz="UTC")})
    job = client.define_job("mapped-datetimes")

    @job.run
    def body(payload: Any, io: Any, ctx: Any) -> Any:
        return (
            io.run_task("stamps", lambda: stamps, mmap=True),
            io.run_task("frame", lambda: frame, mmap=True),
        )

    for _ in range(2):
        array, table = job.trigger().output
        assert array.dtype == stamps.dtype and _equal(stamps, array)
        with pytest.raises(ValueError, match="read-only"):
            array[0] = stamps[1]
        assert table.equals(frame) and table["at"].dtype == frame["at"].dtype


def test_damage_is_found_past_the_first_chunk_and_in_the_pickle_stream(
    client: TriggerClient,
) -> None:
    """Parts are hashed a chunk at a time: a byte flipped in a later chunk of a buffer, or in
    the pickle stream (checked on its own), is found as surely as one in the middle."""
    big = np.arange(CHUNK // 8 * 9 + 3, dtype=np.float64)  # 9 chunks and a short one
    for where in ("buffer", "stream"):
        calls: list[int] = []
        job = client.define_job(f"damaged-{where}")
        job.run(_returning(big, calls))
        run = job.trigger()
        path = _framed_file(client.store, run.id)
        data = bytearray(path.read_bytes())
        stream_at, stream_length = _trailer(bytes(data))["parts"][0][:2]
        at = stream_at + stream_length // 2 if where == "stream" else len(data) - 600
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
        again = job.trigger()
        assert again.status == "FAILURE" and calls == [1], where
        assert "damaged (checksum mismatch)" in again.error.message, where


def _returning(value: Any, calls: list[int]) -> Any:
    """A run function with one task returning ``value``; each execution of it noted."""
    return lambda payload, io, ctx: io.run_task("big", lambda: calls.append(1) or value)


def test_outputs_stored_by_the_previous_format_are_still_read_and_checked(
    client: TriggerClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Framed format 1 (CRC-32 digests, before XXH3-64): stores written by earlier versions
    replay as before, damage included; verify checks them."""
    array = np.arange(CHUNK // 8 * 9 + 3, dtype=np.float64)
    job = client.define_job("format-1")
    calls: list[int] = []
    job.run(lambda payload, io, ctx: io.run_task("big", lambda: calls.append(1) or array))
    run = job.trigger()
    path = _framed_file(client.store, run.id)
    data = path.read_bytes()
    trailer = _trailer(data)
    assert trailer["v"] == 2
    parts = [[at, n, zlib.crc32(data[at : at + n]), ro] for at, n, _, ro in trailer["parts"]]
    path.write_bytes(_with_trailer(data, {"v": 1, "parts": parts}))
    assert _equal(array, job.trigger().output) and calls == [1]
    assert _equal(array, job.trigger().output)  # twice: nothing rewritten the file
    store = str(tmp_path / "store")
    assert cli(["--dir", store, "verify", run.id]) == 0
    capsys.readouterr()
    flipped = bytearray(path.read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    path.write_bytes(bytes(flipped))
    again = job.trigger()
    assert again.status == "FAILURE" and "damaged (checksum mismatch)" in again.error.message
    assert cli(["--dir", store, "verify", run.id]) == 1
    assert "damaged" in capsys.readouterr().err


def test_an_output_in_a_newer_format_says_to_upgrade(client: TriggerClient) -> None:
    job = client.define_job("format-3")
    job.run(lambda payload, io, ctx: io.run_task("big", lambda: np.arange(N * 2.0)))
    run = job.trigger()
    path = _framed_file(client.store, run.id)
    data = path.read_bytes()
    path.write_bytes(_with_trailer(data, {**_trailer(data), "v": 3}))
    again = job.trigger()
    assert again.status == "FAILURE" and again.error.type.endswith("CacheReadError")
    assert "framed format 3, newer than this trigger_nb reads (2)" in again.error.message
    assert "upgrade trigger_nb" in again.error.message


class Holder:
    """A small output whose lifetime the test watches."""

    def __init__(self, stamps: Any) -> None:
        self.stamps = stamps


def test_outputs_pickled_on_many_threads_stay_apart_and_are_not_kept_alive(
    client: TriggerClient,
) -> None:
    """Each thread reuses one pickler (making one costs more than pickling a small output):
    outputs pickled at once on several threads come back whole, and a stored output is not
    kept alive by the pickler's memo once stored."""
    job = client.define_job("threads")
    days = [np.arange(i, i + N).astype("M8[D]") for i in range(8)]
    held: list[weakref.ref[Holder]] = []

    def small(i: int) -> Holder:
        holder = Holder(days[i][:3].copy())
        held.append(weakref.ref(holder))
        return holder

    @job.run
    def body(payload: Any, io: Any, ctx: Any) -> Any:
        big = io.parallel("big", range(8), lambda i: days[i], max_workers=4)
        io.run_task("one small", lambda: small(0))
        return big

    first = job.trigger()
    for output in (first.output, job.trigger().output):
        assert all(_equal(day, got) for day, got in zip(days, output, strict=True))
    gc.collect()
    assert held and all(ref() is None for ref in held)
