"""A task's output: the bytes stored for it, the value every execution sees, and the
``task.output_properties`` shown with it."""

from __future__ import annotations

import pickle
from typing import Any

from trigger_nb._core.codec import serialize, to_jsonable, unstorable
from trigger_nb._core.preview import preview, type_name
from trigger_nb._core.storable import storable_data, storable_text
from trigger_nb._engine.handle import TaskCall
from trigger_nb._store.framed import Pickled, pickle_out_of_band
from trigger_nb.errors import TaskOutputError

# Outputs whose unpickled copy is indistinguishable from themselves (immutable, exact builtin
# types): handed back as they are instead of unpickling what was stored.
_IMMUTABLE_OUTPUTS = frozenset({int, float, str, bytes, bool, type(None)})


class PickledOutput:
    """An output pickled where the task ran (a Dask worker): stored as these bytes, so a big
    output is pickled once, never again in the kernel (``DaskExecutor``)."""

    __slots__ = ("data", "type_name")

    def __init__(self, data: bytes, type_name: str) -> None:
        self.data = data
        self.type_name = type_name


def stored_form(call: TaskCall, result: Any) -> tuple[bytes | Pickled, Any]:
    """The output as it will be stored and the value every execution will see: the stored
    form loaded back.

    Loading back before the task is recorded COMPLETED is what makes "completed" mean "can be
    replayed": an output that pickles but does not unpickle fails this attempt instead
    (``TaskOutputError``, retried per the task's options) rather than being stored for a replay
    that can only fail. Immutable builtins are handed back as they are: their copy is equal.

    An output with big buffers (``Pickled``: arrays, DataFrames) is loaded back around the
    very buffers it holds, no copy; and a numpy array, pandas or Arrow object, whose round
    trip is exact by construction, is handed back as it is (a replay returns an equal one).
    A ``PickledOutput`` (pickled on a Dask worker) is stored as it came, and only loaded here.
    """
    data: bytes | Pickled
    if type(result) is PickledOutput:
        data, kind = result.data, result.type_name
    else:
        if type(result) in _IMMUTABLE_OUTPUTS:
            return serialize(result, call.cache_key), result
        kind = type_name(result)
        try:
            data = pickle_out_of_band(result)
        except Exception as error:  # TaskOutputError (not retried): it cannot be pickled
            raise unstorable(result, call.cache_key, error) from error
        if isinstance(data, Pickled) and _type_name(result) in EXACT_ROUND_TRIP:
            return data, result
    try:
        if isinstance(data, Pickled):
            return data, pickle.loads(data.stream, buffers=data.buffers)
        return data, pickle.loads(data)
    except Exception as error:
        problem = f"{type(error).__name__}: {storable_text(_safe_str(error))}"
        failure = TaskOutputError(
            f"the output of {call.label} ({kind}) pickles but cannot be loaded "
            f"back: {problem}; return plain data, or define __reduce__ so that it loads",
            cache_key=call.cache_key,
            output_type=kind,
            task_id=call.record.id,
            retryable=True,  # another attempt may return something that loads
        )
        raise failure from error


# Types whose pickle round trip gives an equal object of the same type by construction.
EXACT_ROUND_TRIP = frozenset(
    {
        "numpy.ndarray",
        "pandas.core.frame.DataFrame",
        "pandas.core.series.Series",
        "pandas.core.indexes.base.Index",
        "pyarrow.lib.Table",
        "polars.dataframe.frame.DataFrame",
        "polars.series.series.Series",
    }
)


def _type_name(value: object) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return "<unprintable>"


def output_properties(call: TaskCall) -> list[dict[str, Any]]:
    """``task.output_properties`` as the user left them, made JSON-able and storable."""
    if call._handle is None or not call._handle.output_properties:
        return []
    properties = call._handle.output_properties
    if not isinstance(properties, list):
        properties = [{"label": "output_properties", "text": preview(properties)}]
    return [
        storable_data({str(k): to_jsonable(v) for k, v in p.items()})
        if isinstance(p, dict)
        else {"label": "property", "text": storable_text(preview(p))}
        for p in properties
    ]
