"""polars DataFrames and Series, and Arrow tables, as big outputs (issue 16): pickled with their
buffers out of band (polars through Arrow: ``_store/polars_arrow.py``), read back equal with the
same types, in this process and in a fresh one, and mapped by ``mmap=True``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from columnar_values import arrow_table, polars_frame
from test_big_output import _big_store

from trigger_nb import CacheReadError, Store, TriggerClient
from trigger_nb._store.framed import MAGIC

pl = pytest.importorskip("polars")  # in the `test` extra: runs wherever the suite runs
pa = pytest.importorskip("pyarrow")

KEYS = ("polars", "polars mapped", "series", "unnamed series", "arrow", "arrow mapped")


def _values() -> dict[str, Any]:
    frame, table = polars_frame(), arrow_table()
    return {
        "polars": frame,
        "polars mapped": frame,
        "series": frame["long str"],
        # polars would name it column_0; flagged sorted
        "unnamed series": pl.Series("", np.arange(300_000)).set_sorted(),
        "arrow": table,
        "arrow mapped": table,
    }


def _same(expected: Any, got: Any) -> bool:
    """Equal values of the same type; for polars, the same schema (dtypes, time zones,
    categories) or name and dtype, and the same "sorted" flags."""
    if type(got) is not type(expected) or not expected.equals(got):
        return False
    if isinstance(expected, pl.DataFrame):
        return bool(got.schema == expected.schema and got.flags == expected.flags)
    if isinstance(expected, pl.Series):
        same = got.name == expected.name and got.dtype == expected.dtype
        return bool(same and got.flags == expected.flags)
    return bool(got.schema == expected.schema)  # an Arrow table: field types and metadata


def _define(
    client: TriggerClient,
    values: dict[str, Any],
    calls: list[str],
    returned: list[Any] | None = None,
) -> Any:
    """The job whose tasks return ``values``, noting each call of a task's function in
    ``calls`` and what ``io.run_task`` returned in ``returned``."""
    job = client.define_job("columnar")

    @job.run
    def body(payload: Any, io: Any, ctx: Any) -> list[Any]:
        got = [
            io.run_task(key, lambda k=key: calls.append(k) or values[k], mmap="mapped" in key)
            for key in KEYS
        ]
        if returned is not None:
            returned[:] = got
        return got

    return job


def test_polars_and_arrow_values_round_trip_with_their_types(any_store: Store) -> None:
    values = _values()
    client = TriggerClient("columnar", store=any_store, on_code_change="ignore")
    calls: list[str] = []
    returned: list[Any] = []
    job = _define(client, values, calls, returned)
    first = job.trigger()
    assert first.status == "SUCCESS", first.error
    for key, got in zip(KEYS, returned, strict=True):
        # Exact round trips by construction: the first execution hands the value back as is
        # (a mapped one is what replays will return: the stored value, mapped).
        assert (got is values[key]) == ("mapped" not in key), key
        assert _same(values[key], got), key
    replayed = job.trigger()
    assert calls == list(KEYS) and replayed.executions[-1].replayed == len(KEYS)
    for key, got_first, got_replayed in zip(KEYS, first.output, replayed.output, strict=True):
        assert _same(values[key], got_first), key  # the run's output, read back
        assert _same(values[key], got_replayed), key
    # Every one is a framed file: the columns went out of band, polars' too (its own pickling
    # would have made one in-band blob).
    assert _big_store(any_store, first.id) == [MAGIC] * len(KEYS)


REPLAY = """
import sys
sys.path.insert(0, sys.argv[2])
from columnar_values import arrow_table, polars_frame
from test_polars_arrow import KEYS, _same, _values
from trigger_nb import TriggerClient

def never():
    raise AssertionError("ran again instead of replaying")

client = TriggerClient("columnar", store=sys.argv[1], on_code_change="ignore")
job = client.define_job("columnar")
job.run(lambda payload, io, ctx: [io.run_task(k, never, mmap="mapped" in k) for k in KEYS])
run = job.trigger()
assert run.status == "SUCCESS", run.error
values = _values()
print(*[key for key, got in zip(KEYS, run.output) if _same(values[key], got)], sep="\\n")
"""


@pytest.mark.slow
def test_polars_and_arrow_outputs_replay_equal_in_a_fresh_process(tmp_path: Path) -> None:
    store = tmp_path / "store"
    client = TriggerClient("columnar", store=str(store), on_code_change="ignore")
    assert _define(client, _values(), []).trigger().status == "SUCCESS"
    client.store.close()
    tests = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", REPLAY, str(store), tests], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == list(KEYS)  # each one equal, same types


def _mapped_ranges(directory: Path) -> list[tuple[int, int]]:
    """The address ranges this process has mapped from files under ``directory``."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].strip().startswith(str(directory)):
                start, end = (int(at, 16) for at in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


def _buffers(array: Any) -> list[Any]:
    """Every non-empty buffer of an Arrow array, its children's and dictionary's included."""
    found = [b for b in array.buffers() if b is not None and b.size]
    if pa.types.is_dictionary(array.type):
        found += _buffers(array.dictionary)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/self/maps")
def test_mmap_maps_arrow_buffers_and_polars_columns_but_categoricals(tmp_path: Path) -> None:
    """What ``mmap=True`` gives back, as the README says: an Arrow table whose every buffer is
    a view of the stored file; a polars frame whose columns are too, except Categorical and
    Enum ones, which polars re-encodes into its own memory (copied). On every execution."""
    client = TriggerClient("columnar", store=str(tmp_path / "store"), on_code_change="ignore")
    values = _values()
    returned: list[Any] = []
    job = _define(client, values, [], returned)
    for _ in range(2):  # the first execution returns what replays will: the mapped value
        job.trigger()
        output = dict(zip(KEYS, returned, strict=True))
        mapped = _mapped_ranges(tmp_path / "store")
        assert mapped

        def in_file(buffer: Any, ranges: list[tuple[int, int]] = mapped) -> bool:
            return any(start <= buffer.address < end for start, end in ranges)

        table = output["arrow mapped"]
        assert _same(values["arrow mapped"], table)
        for column in table.columns:
            assert all(in_file(b) for chunk in column.chunks for b in _buffers(chunk)), column
        frame = output["polars mapped"]
        assert _same(values["polars mapped"], frame)
        exported = frame.to_arrow(compat_level=pl.CompatLevel.newest())  # zero-copy
        for name, dtype in frame.schema.items():
            buffers = [b for chunk in exported.column(name).chunks for b in _buffers(chunk)]
            copied = isinstance(dtype, (pl.Categorical, pl.Enum))
            assert buffers or dtype == pl.Null, name
            assert all(in_file(b) != copied for b in buffers), name
        # Unmapped outputs are in memory of their own.
        assert not any(in_file(b) for b in _buffers(output["arrow"].column("float").chunks[0]))


def test_a_mapped_polars_frame_is_computed_on_like_any_other(tmp_path: Path) -> None:
    """polars never writes into memory it does not own alone: operations on a mapped frame,
    even those that could work in place, copy what they change (no crash on read-only pages),
    and the stored file stays as it was."""
    client = TriggerClient("columnar", store=str(tmp_path / "store"))
    job = client.define_job("mapped-polars")
    frame = pl.DataFrame({"x": np.arange(300_000, dtype=np.float64), "n": np.arange(300_000)})
    job.run(lambda payload, io, ctx: io.run_task("frame", lambda: frame, mmap=True))
    job.trigger()
    mapped = job.trigger().output
    doubled = mapped.with_columns(pl.col("x") * 2, pl.col("n") + 1)
    assert doubled["x"][3] == 6.0 and doubled["n"][3] == 4
    column = mapped["n"]
    del mapped
    column[0] = 7  # a scatter into the only reference to the mapped column
    assert column[0] == 7
    assert _same(frame, job.trigger().output)


def test_small_polars_frames_and_object_columns_keep_polars_own_pickling(
    client: TriggerClient,
) -> None:
    """Below ``FRAMED_MIN_BYTES`` a frame is pickled in band, as polars does; a frame with an
    ``Object`` column never goes through Arrow (it would carry the objects' addresses): polars
    refuses to pickle it, which fails the task with a ``TaskOutputError`` saying so."""
    small = pl.DataFrame({"a": [1, None, 3], "s": ["x", "y", None]})
    job = client.define_job("small-polars")
    job.run(lambda payload, io, ctx: io.run_task("small", lambda: small))
    first = job.trigger()
    assert _big_store(client.store, first.id) == []  # in its task entry, not framed
    assert _same(small, first.output) and _same(small, job.trigger().output)
    objects = pl.DataFrame({"o": pl.Series([object()] * 300_000, dtype=pl.Object)})
    failing = client.define_job("polars-objects")
    failing.run(lambda payload, io, ctx: io.run_task("objects", lambda: objects))
    run = failing.trigger()
    assert run.status == "FAILURE" and run.error.type.endswith("TaskOutputError")
    assert "returned a polars.dataframe.frame.DataFrame that cannot be stored" in run.error.message


def test_a_damaged_polars_output_is_a_cache_read_error(client: TriggerClient) -> None:
    frame = polars_frame()
    calls: list[int] = []
    job = client.define_job("damaged-polars")
    job.run(lambda payload, io, ctx: io.run_task("frame", lambda: calls.append(1) or frame))
    run = job.trigger()
    (key,) = client.store.backend.scan(f"o:{run.id}:")
    path = client.store.backend.file_of(f"o:{run.id}:{key}")
    assert isinstance(path, Path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    again = job.trigger()
    assert again.status == "FAILURE" and calls == [1]
    assert "damaged (checksum mismatch)" in again.error.message
    with pytest.raises(CacheReadError):
        _ = run.task("frame").output
