"""The one escaping function for every text trigger_nb stores.

Records are UTF-8 JSON. Python text can hold what UTF-8 cannot: a lone surrogate, such as a file
name decoded from non-UTF-8 bytes with ``os.fsdecode`` (``"\\udcff.csv"``). Written as it is, such
text fails deep inside the store and, worse, leaves the run it belongs to unrecorded. So every
text the engine stores (error messages and tracebacks, log messages and data, task names,
descriptions, properties, params, previews) goes through ``storable_text``: a lone surrogate is
kept as its visible escape (``\\udcff``), all other text is unchanged (NUL and control characters
are valid JSON). The store applies ``storable_data`` to a whole record as a last resort, so a text
that reaches it by a path nobody thought of still cannot stop a run from being recorded.
"""

from __future__ import annotations

from typing import Any


def storable_text(text: str) -> str:
    """``text`` as it can be written into a UTF-8 JSON record (lone surrogates escaped)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def storable_data(value: Any) -> Any:
    """``value`` (JSON-like data) with every text in it, dict keys included, made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {
            storable_text(k) if isinstance(k, str) else k: storable_data(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [storable_data(v) for v in value]
    return value
