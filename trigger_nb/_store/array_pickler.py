"""A pickler that hands the memory of every plain numpy array out of band, datetimes included,
and the columns of polars frames (through Arrow: ``polars_arrow.py``).

numpy pickles an array's memory out of band (pickle protocol 5) only when the array can export
the buffer protocol, which ``datetime64``/``timedelta64`` arrays (and structured arrays with
such fields) cannot: their bytes were copied into the pickle stream, so a DataFrame with a
datetime column or index cost a copy of that column in memory and a second pass to read it.
Here such an array is pickled as a view of its bytes as plain ``void`` items of the same size
(out of band, shape and C/F order kept, mappable) and the dtype, rebuilt with ``.view(dtype)``:
the same array, with no copy. Everything else is pickled exactly as ``pickle`` does.

``as_dtype`` is named in stored pickles: keep its module and name.
"""

from __future__ import annotations

import io
import pickle
import sys
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from trigger_nb._store.polars_arrow import reduce_polars


def as_dtype(array: Any, dtype: Any) -> Any:
    """``array`` (its items' bytes) seen as ``dtype``: what ``ArrayPickler`` stored comes back."""
    return array.view(dtype)


def _needs_bytes_view(array: Any) -> bool:
    """True for an array numpy would copy into the stream though its memory is plain bytes."""
    flags = array.flags
    if not (flags.c_contiguous or flags.f_contiguous):
        return False  # numpy copies it to a contiguous one in band: left as numpy does it
    dtype = array.dtype
    if dtype.kind in "mM":
        return True
    if dtype.fields is None or dtype.hasobject or not dtype.itemsize:
        return False
    try:  # a structured dtype: out of band already unless a field is a datetime
        memoryview(array).release()
    except (TypeError, ValueError):
        return True
    return False


class ArrayPickler(pickle.Pickler):
    """``pickle.Pickler`` (protocol 5) whose numpy arrays all go out of band when they can,
    and polars frames and series as Arrow tables (whose buffers do)."""

    ndarray: Any = None  # numpy.ndarray, set once numpy is loaded
    # Types pickled another way, and how: polars' DataFrame and Series once polars is loaded.
    # (pickle calls reducer_override only for objects of other than the builtin types.)
    reducers: ClassVar[dict[type, Callable[[Any], Any]]] = {}

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is not self.ndarray:
            reduce = self.reducers.get(kind)
            return NotImplemented if reduce is None else reduce(obj)
        if not _needs_bytes_view(obj):
            return NotImplemented
        dtype = obj.dtype
        return as_dtype, (obj.view(f"V{dtype.itemsize}"), dtype)


def _notice_loaded_modules() -> bool:
    """Register what has been imported since the last output: numpy's array type, polars'
    frame types. False while neither is loaded (no value can hold one)."""
    if ArrayPickler.ndarray is None:
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            ArrayPickler.ndarray = numpy.ndarray
    if not ArrayPickler.reducers:
        polars = sys.modules.get("polars")
        if polars is not None and hasattr(polars, "Series"):  # not mid-import
            ArrayPickler.reducers = {polars.DataFrame: reduce_polars, polars.Series: reduce_polars}
    return ArrayPickler.ndarray is not None or bool(ArrayPickler.reducers)


class _Reused(threading.local):
    """Each thread's pickler, its file and its buffer list, kept between outputs: making them
    costs ~3 µs, several times the pickling of a small output."""

    state: tuple[io.BytesIO, list[pickle.PickleBuffer], ArrayPickler] | None = None


_reused = _Reused()
_KEEP_FILE_BELOW = 1024 * 1024  # a file that grew past this is dropped, not kept for later


def dumps_out_of_band(value: object) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """``pickle.dumps(value, protocol=5, buffer_callback=...)``: the stream and the buffers
    left out of it, numpy datetime arrays and polars columns among them. Without numpy or
    polars loaded the value holds neither: plain ``pickle.dumps`` (fastest)."""
    if (ArrayPickler.ndarray is None or not ArrayPickler.reducers) and (
        not _notice_loaded_modules()
    ):
        buffers: list[pickle.PickleBuffer] = []
        return pickle.dumps(value, protocol=5, buffer_callback=buffers.append), buffers
    state, _reused.state = _reused.state, None  # taken: a nested call makes its own
    if state is None:
        file, buffers = io.BytesIO(), []
        state = file, buffers, ArrayPickler(file, protocol=5, buffer_callback=buffers.append)
    file, buffers, pickler = state
    pickler.dump(value)  # on an error the state is dropped: a fresh one next time
    stream, found = file.getvalue(), buffers[:]
    pickler.clear_memo()  # holds every object pickled: not kept alive
    buffers.clear()
    file.seek(0)
    file.truncate()
    if len(stream) < _KEEP_FILE_BELOW:
        _reused.state = state
    return stream, found
