"""A polars DataFrame and an Arrow table holding most of their libraries' column types, built
the same way in the test process and in the fresh processes that replay them
(tests/test_polars_arrow.py). Each holds more than ``FRAMED_MIN_BYTES`` of buffers."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import numpy as np

ROWS = 200_000


def _nth(values: list[Any], every: int) -> list[Any]:
    """``values`` with every ``every``-th one replaced by a null."""
    return [None if i % every == 0 else value for i, value in enumerate(values)]


def polars_frame() -> Any:
    import polars as pl

    rows = range(ROWS)
    start = dt.datetime(2024, 3, 30, 23)  # crosses Paris' switch to summer time
    seconds = [start + dt.timedelta(seconds=i) for i in range(ROWS)]
    return pl.DataFrame(
        {
            "float": np.linspace(0, 1, ROWS),
            "float32 with nulls": pl.Series(_nth([i / 4 for i in rows], 7), dtype=pl.Float32),
            "int with nulls": pl.Series(_nth(list(range(ROWS)), 5), dtype=pl.Int64),
            "uint8": pl.Series([i % 256 for i in range(ROWS)], dtype=pl.UInt8),
            "bool with nulls": _nth([i % 2 == 0 for i in range(ROWS)], 11),
            "str": _nth([f"s{i % 100}" for i in range(ROWS)], 13),
            "long str": [f"a string longer than twelve bytes, #{i}, é" for i in range(ROWS)],
            "binary": [bytes([i % 256]) * (i % 5) for i in range(ROWS)],
            "paris": pl.Series(seconds, dtype=pl.Datetime("us", "UTC")).dt.convert_time_zone(
                "Europe/Paris"
            ),
            "utc ms": pl.Series(seconds, dtype=pl.Datetime("ms", "UTC")),
            "naive": pl.Series(_nth(seconds, 3), dtype=pl.Datetime("ns")),
            "date": [dt.date(2000, 1, 1) + dt.timedelta(days=i % 9000) for i in range(ROWS)],
            "time": [dt.time(i % 24, i % 60, i % 60) for i in range(ROWS)],
            "duration": pl.Series([dt.timedelta(milliseconds=i) for i in range(ROWS)]),
            "categorical": pl.Series(_nth([f"c{i % 7}" for i in rows], 17), dtype=pl.Categorical),
            "enum": pl.Series([("lo", "hi")[i % 2] for i in rows], dtype=pl.Enum(["lo", "hi"])),
            "decimal": pl.Series(
                [decimal.Decimal(i) / 100 for i in range(ROWS)], dtype=pl.Decimal(12, 2)
            ),
            "list": _nth([[i, i + 1][: i % 3] for i in range(ROWS)], 19),
            "array": pl.Series([[i, -i] for i in range(ROWS)], dtype=pl.Array(pl.Int32, 2)),
            "struct": [{"a": i, "b": f"x{i % 3}"} for i in range(ROWS)],
            "all null": pl.Series([None] * ROWS, dtype=pl.Null),
            "descending": np.arange(ROWS)[::-1].copy(),
        }
    ).with_columns(  # flags polars' own pickling keeps: so must ours
        pl.col("float").set_sorted(), pl.col("descending").set_sorted(descending=True)
    )


def arrow_table() -> Any:
    import pyarrow as pa

    rows, views = range(ROWS), pa.string_view()
    start = dt.datetime(2024, 3, 30, 23, tzinfo=dt.timezone.utc)
    return pa.table(
        {
            "int with nulls": pa.array(_nth(list(range(ROWS)), 5), pa.int64()),
            "float": pa.array(np.linspace(0, 1, ROWS)),
            "bool": pa.array([i % 3 == 0 for i in range(ROWS)]),
            "str": pa.array(_nth([f"s{i}" for i in range(ROWS)], 13), pa.string()),
            "large str": pa.array([f"t{i % 10}" for i in range(ROWS)], pa.large_string()),
            "str view": pa.array([f"a view string longer than 12, {i}" for i in rows], views),
            "binary": pa.array([bytes([i % 256]) * (i % 4) for i in range(ROWS)], pa.binary()),
            "tokyo": pa.array(
                [start + dt.timedelta(seconds=i) for i in rows], pa.timestamp("us", "Asia/Tokyo")
            ),
            "date": pa.array([dt.date(2000, 1, 1) + dt.timedelta(days=i % 9000) for i in rows]),
            "dictionary": pa.array([f"d{i % 5}" for i in range(ROWS)]).dictionary_encode(),
            "decimal": pa.array([decimal.Decimal(i) / 100 for i in rows], pa.decimal128(12, 2)),
            "list": pa.array([[i] * (i % 3) for i in range(ROWS)], pa.list_(pa.int32())),
            "struct": pa.array([{"a": i, "b": str(i % 3)} for i in range(ROWS)]),
        }
    )
