"""How every view names a task: its cache key printed with its type, its title and label.

``key_text`` is the one formatter of cache keys: the tree, the static HTML, the text outline, the
explorer and the command line print keys with it, and ``trigger-nb show --task`` reads its output.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from trigger_nb._core.model import TaskRecord
from trigger_nb._render.icons import icon_glyph


def key_text(key: Any) -> str:
    """A cache key printed so that different keys look different: ``1`` and ``"1"``,
    ``[a, b]`` and ``"[a, b]"``. Strings are bare unless they could be read as another type (a
    number, bool, null, list, or with surrounding quotes, brackets or spaces): then quoted, JSON
    style. Numbers, bools (``true``) and None (``null``) are bare; lists are ``[...]`` with their
    parts under the same rules. ``trigger-nb show --task`` accepts exactly this text.
    """
    if isinstance(key, (list, tuple)):
        return "[" + ", ".join(_part_text(part, in_list=True) for part in key) + "]"
    return _part_text(key, in_list=False)


def _part_text(part: Any, *, in_list: bool) -> str:
    if isinstance(part, str):
        return json.dumps(part, ensure_ascii=False) if _needs_quotes(part, in_list) else part
    if part is None or isinstance(part, bool):
        return json.dumps(part)
    if isinstance(part, float):
        return repr(part)  # 1.0 stays a float; nan, inf as Python writes them
    return str(part)


_WORDS = {"true", "false", "null", "none", "nan", "inf", "infinity"}
_LIST_SEPARATORS = (",", "[", "]")
_DIGIT = re.compile(r"\d")


def _needs_quotes(text: str, in_list: bool) -> bool:
    if not text or text != text.strip() or not text.isprintable():
        return True
    if text[0] in "\"'[" or text[-1] in "\"']" or text.lower() in _WORDS:
        return True
    if in_list and any(sep in text for sep in _LIST_SEPARATORS):
        return True
    if _DIGIT.search(text) is None and text.lstrip("+-").lower() not in _WORDS:
        return False  # float() cannot read it: no exception to raise and catch
    try:
        float(text)  # "1", "-2.5", "1e3", "1_000": would print as a number
    except ValueError:
        return False
    return True


def task_key(record: TaskRecord) -> Any:
    """The task's cache key with its types, read from its typed encoding (``keys.encode_key``):
    ``cache_key`` alone has ``float("nan")`` and the string ``"nan"`` alike."""
    encoded = record.key
    try:
        if encoded[:1] == "s":
            return encoded[1:]
        if encoded[:1] == "v":
            return _decode_part(json.loads(encoded[1:]))
        if encoded[:1] == "l":
            return [_decode_part(part) for part in json.loads(encoded[1:])]
    except (ValueError, TypeError, IndexError, KeyError):
        pass  # written by another version: the JSON form is the next best
    return record.cache_key


def _decode_part(part: list[Any]) -> Any:
    kind = part[0]
    if kind == "n":
        return None
    if kind == "i":
        return int(part[1])
    if kind == "f":
        return float(part[1])
    if kind in ("s", "b"):
        return part[1]
    raise KeyError(kind)


def task_key_text(record: TaskRecord) -> str:
    text = _encoded_key_text(record.key)
    return text if text is not None else key_text(task_key(record))


@functools.lru_cache(maxsize=1 << 14)
def _encoded_key_text(encoded: str) -> str | None:
    """``key_text`` of a typed encoding, remembered: a run's view writes every key each time it
    is drawn, and a replay draws the keys its first run drew (~10 µs each to decode and print).
    None when the encoding is not readable (then ``task_key`` falls back, uncached)."""
    if encoded[:1] not in ("s", "v", "l"):
        return None
    try:
        if encoded[:1] == "s":
            return key_text(encoded[1:])
        if encoded[:1] == "v":
            return key_text(_decode_part(json.loads(encoded[1:])))
        return key_text([_decode_part(part) for part in json.loads(encoded[1:])])
    except (ValueError, TypeError, IndexError, KeyError):
        return None


def _default_name(record: TaskRecord) -> str:
    """The name a task gets when none is given (``task_options.new_record``)."""
    key = record.cache_key
    if isinstance(key, str):
        return key
    # a list key's text, remembered by its typed encoding (one encoding, one value): a view
    # of 1,000 tasks asks for every task's, each time it is drawn (~1 µs a list)
    name = _LIST_KEY_NAMES.get(record.key)
    if name is None:
        if len(_LIST_KEY_NAMES) >= _LIST_KEY_NAMES_KEPT:
            _LIST_KEY_NAMES.clear()
        name = _LIST_KEY_NAMES[record.key] = str(key)
    return name


_LIST_KEY_NAMES: dict[str, str] = {}
_LIST_KEY_NAMES_KEPT = 1 << 14


def task_title(record: TaskRecord) -> str:
    """A task's name; for a task named after its key, the key as ``key_text`` prints it."""
    return task_key_text(record) if record.name == _default_name(record) else record.name


def shown_key(record: TaskRecord) -> str | None:
    """The key to print beside the title, or None when the title already shows it."""
    if record.name == _default_name(record):
        return None
    key = task_key_text(record)
    if key not in record.name:  # the usual case, without a pattern (1,000 keys thrash re's cache)
        return key
    return None if re.search(rf"(?<![\w\"']){re.escape(key)}(?![\w\"'])", record.name) else key


def task_label(record: TaskRecord, *, icon: bool = False) -> str:
    """``title [key]``: how a task is named in one line of text (``icon``: its glyph too)."""
    label = task_title(record)
    if icon and record.icon:
        label += f" {icon_glyph(record.icon)}"
    key = shown_key(record)
    return label if key is None else f"{label} [{key}]"
