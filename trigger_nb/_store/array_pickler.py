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

import pickle
import sys
from typing import Any


def as_dtype(array: Any, dtype: Any) -> Any:
    """``array`` (its items' bytes) seen as ``dtype``: the array pickled by ``_bytes_view``."""
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

    def __init__(self, file: Any, buffer_callback: Any, ndarray: Any) -> None:
        super().__init__(file, protocol=5, buffer_callback=buffer_callback)
        self._ndarray = ndarray

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is not self._ndarray or not _needs_bytes_view(obj):
            return NotImplemented
        dtype = obj.dtype
        return as_dtype, (obj.view(f"V{dtype.itemsize}"), dtype)


def dumps_out_of_band(value: object, buffer_callback: Any) -> bytes:
    """``pickle.dumps(value, protocol=5, buffer_callback=...)``, numpy datetime arrays out of
    band too. Without numpy loaded the value holds no array: plain ``pickle.dumps`` (fastest)."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return pickle.dumps(value, protocol=5, buffer_callback=buffer_callback)
    import io

    file = io.BytesIO()
    ArrayPickler(file, buffer_callback, numpy.ndarray).dump(value)
    return file.getvalue()
