"""A pickler that hands the memory of every plain numpy array out of band, datetimes included.

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
from typing import Any


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
    """``pickle.Pickler`` (protocol 5) whose numpy arrays all go out of band when they can."""

    ndarray: Any = None  # numpy.ndarray, set once numpy is loaded

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is not self.ndarray or not _needs_bytes_view(obj):
            return NotImplemented
        dtype = obj.dtype
        return as_dtype, (obj.view(f"V{dtype.itemsize}"), dtype)


class _Reused(threading.local):
    """Each thread's pickler, its file and its buffer list, kept between outputs: making them
    costs ~3 µs, several times the pickling of a small output."""

    state: tuple[io.BytesIO, list[pickle.PickleBuffer], ArrayPickler] | None = None


_reused = _Reused()
_KEEP_FILE_BELOW = 1024 * 1024  # a file that grew past this is dropped, not kept for later


def dumps_out_of_band(value: object) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """``pickle.dumps(value, protocol=5, buffer_callback=...)``: the stream and the buffers
    left out of it, numpy datetime arrays among them. Without numpy loaded the value holds no
    array: plain ``pickle.dumps`` (fastest)."""
    if ArrayPickler.ndarray is None:
        numpy = sys.modules.get("numpy")
        if numpy is None:
            buffers: list[pickle.PickleBuffer] = []
            return pickle.dumps(value, protocol=5, buffer_callback=buffers.append), buffers
        ArrayPickler.ndarray = numpy.ndarray
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
