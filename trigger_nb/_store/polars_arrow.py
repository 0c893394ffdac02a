"""polars DataFrames and Series pickled through Arrow, so their columns go out of band.

polars pickles a frame by serializing it whole into one ``bytes`` object (its IPC format),
which pickle then copies in band: for ~100 MB, ~250 ms and ~380 MiB of extra memory to write,
and nothing a replay could map. Its Arrow export is zero-copy for most types, and pyarrow
hands every Arrow buffer to pickle protocol 5 out of band: stored that way, a polars frame is
written straight from its columns' memory, read back at ``pickle.load`` speed, and mapped by
``mmap=True``. polars writes its own dtypes into the Arrow field metadata (Enum, Categorical,
tz-aware Datetime, Decimal, Array, ...), so ``pl.from_arrow`` gives back an equal frame with
the same schema. Strings stay Arrow string views (polars' own layout: no conversion either
way).

Not through Arrow (pickled by polars as before): frames with ``pl.Object`` columns (Arrow
would carry the objects' addresses, not the objects), and any frame when pyarrow is not
installed. A column's "sorted" flag (a hint polars' own pickling keeps, Arrow has no place
for) is stored beside the table and set again.

``frame_from_arrow`` and ``series_from_arrow`` are named in stored pickles: keep their module
and names.
"""

from __future__ import annotations

import importlib.util
from typing import Any

_HAS_PYARROW: list[bool] = []  # found once, on the first polars value pickled


def frame_from_arrow(table: Any, sorted_columns: tuple[tuple[str, bool], ...] = ()) -> Any:
    """The polars DataFrame stored as ``table`` (a ``pyarrow.Table``); ``sorted_columns``:
    ``(name, descending)`` of the columns flagged sorted."""
    import polars

    frame: Any = polars.from_arrow(table, rechunk=False)  # a Table gives a DataFrame
    names = table.column_names
    if frame.columns != names:  # an empty name comes back as "column_0": the stored one wins
        frame.columns = names
    if sorted_columns:
        flags = [polars.col(name).set_sorted(descending=down) for name, down in sorted_columns]
        frame = frame.with_columns(flags)  # metadata only: the same buffers
    return frame


def series_from_arrow(table: Any, sorted_columns: tuple[tuple[str, bool], ...] = ()) -> Any:
    """The polars Series stored as the one column of ``table`` (its name kept there)."""
    return frame_from_arrow(table, sorted_columns).to_series()


def reduce_polars(value: Any) -> Any:
    """The reduction of a polars DataFrame or Series through Arrow, or ``NotImplemented``
    (polars' own pickling) when Arrow cannot carry it."""
    if not _HAS_PYARROW:
        _HAS_PYARROW.append(importlib.util.find_spec("pyarrow") is not None)
    if not _HAS_PYARROW[0]:
        return NotImplemented
    import polars

    is_series = isinstance(value, polars.Series)
    frame = value.to_frame() if is_series else value
    if any(_holds_objects(dtype, polars) for dtype in frame.dtypes):
        return NotImplemented
    table = frame.to_arrow(compat_level=polars.CompatLevel.newest())
    sorted_columns = tuple(
        (name, flags["SORTED_DESC"])
        for name, flags in frame.flags.items()
        if flags["SORTED_ASC"] or flags["SORTED_DESC"]
    )
    arguments = (table, sorted_columns) if sorted_columns else (table,)
    return (series_from_arrow if is_series else frame_from_arrow), arguments


def _holds_objects(dtype: Any, polars: Any) -> bool:
    """True if ``dtype`` is ``pl.Object`` or nests one (in a List, Array or Struct)."""
    if dtype == polars.Object:
        return True
    inner = getattr(dtype, "inner", None)
    if inner is not None and _holds_objects(inner, polars):
        return True
    return any(_holds_objects(field.dtype, polars) for field in getattr(dtype, "fields", ()))
