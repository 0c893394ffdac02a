"""Fingerprints: what a task's function ran, in named parts, so a change can be explained.

A task's fingerprint is a dict of short hashes: ``code`` (the function's code, normalized),
``closure:NAME`` (closure values), ``default:NAME`` (default arguments), ``helper:NAME`` /
``class:NAME`` / ``module:NAME`` / ``global:NAME`` (the globals its code reads: functions
recursively, classes by their methods, modules by name and version, data by content),
``partial:args`` and ``wrapped`` (``functools.partial`` and decorated functions), ``method`` and
``params`` (integration tasks), and ``python`` (the minor version: a fingerprint made under
another one is *unknown*, never *changed*).

Normalized code leaves out what never changes behaviour and always changes with editing or
moving a cell: line numbers, positions, the file name, docstrings, comments (never compiled).
Values that cannot be hashed by content (connections, locks, clients, ``io``, ``task``) count by
type only. Each value is hashed at most once per execution (``Fingerprinter`` remembers it by
identity); large buffers (numpy arrays, DataFrames through pickle's out-of-band buffers) are
hashed in place, never copied, with CRC-32 over chunks on every core: a change detector, not a
defence against someone forging collisions.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import pickle
import sys
import types
import zlib
from collections.abc import Callable
from typing import Any, TypeGuard

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
MAX_DEPTH = 6  # helpers of helpers ...: deeper code counts by name only
PART_CHARS = 12
# Containers up to this size are hashed item by item (sets sorted, so the hash seed does not
# matter); bigger ones by pickling them whole.
SMALL_CONTAINER = 64
# A scalar whose text is this short is its own part ("int:5"): no hash to compute, and a reason
# could even show it.
SHORT_TEXT = 24
# Buffers at least this big are hashed in chunks on several threads (zlib releases the GIL).
PARALLEL_BUFFER_BYTES = 16 << 20
_CORES = max(1, min(8, os.cpu_count() or 1))
_FUNCTION_NAMES = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<module>"})
_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_SHORT_INT = 10**15  # "int:" and up to 16 characters: within SHORT_TEXT
Parts = dict[str, str]


def _digest(text: str | bytes) -> str:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return hashlib.blake2b(data, digest_size=PART_CHARS // 2).hexdigest()


def digest_of(parts: Parts) -> str:
    """The fingerprint's key: its part values joined, in the order the same code builds them
    (equal keys, equal fingerprints). Values are short plain texts or hashes without '|', so
    the key is stored as it is and compared byte for byte on every replay: nothing to hash."""
    return "|".join(parts.values())


def _plain(text: str) -> bool:
    """Written as it is in the record's JSON, and never taken for the key's separator."""
    return '"' not in text and "\\" not in text and "|" not in text


class Fingerprinter:
    """Fingerprints of one execution's task functions; every object is hashed at most once."""

    def __init__(self) -> None:
        self._values: dict[int, tuple[object, str]] = {}  # id -> (the object, kept alive; hash)
        self._busy: set[int] = set()  # functions being hashed now: a cycle counts by name

    def of_task(self, fn: Callable[..., Any]) -> Parts:
        """The task's fingerprint, in named parts (what is stored, and explained on change)."""
        if _is_plain(fn):
            names, values, _ = self._walk(fn, 0)
            return {"python": PYTHON, **dict(zip(names, values, strict=True))}
        parts: Parts = {"python": PYTHON}
        self._callable_parts(fn, parts, 0)
        return parts

    def key_of(self, fn: Callable[..., Any]) -> str:
        """``digest_of(self.of_task(fn))``: the check every replay makes. For a plain
        function it is ``_walk`` without the names (~1 µs of every replay less, which keeps
        replay within 1.3x a raw read); a test holds the two equal on functions of every
        shape, so keep them in step."""
        if type(fn) is not types.FunctionType or "__wrapped__" in fn.__dict__:  # _is_plain
            return digest_of(self.of_task(fn))
        code = fn.__code__
        entry = _CODE_HASHES.get(id(code))  # _code_entry's look-up, inline
        if entry is None or entry[0] is not code:
            entry = _code_entry(code)
        _, digest, globals_read, defaults, _ = entry
        values = [PYTHON, digest]
        value_of = self._value
        closure = fn.__closure__
        if closure:
            for cell in closure:
                try:
                    values.append(value_of(cell.cell_contents, 0))
                except ValueError:
                    continue
        given = fn.__defaults__
        if given and len(given) <= len(defaults):
            for value in given:  # the loop variable, mostly: _value's first case, inline
                if type(value) is int and -_SHORT_INT < value < _SHORT_INT:
                    values.append("int:" + repr(value))
                else:
                    values.append(value_of(value, 0))
        if fn.__kwdefaults__:
            values.extend([self._value(value, 0) for value in fn.__kwdefaults__.values()])
        if globals_read:
            namespace = fn.__globals__
            for name in globals_read:
                if name in namespace:
                    value = namespace[name]
                    if isinstance(value, type) and _is_user_class(value):
                        values.extend([digest for _, digest in self._methods(value, 0)])
                    else:
                        values.append(self._value(value, 0))
        return "|".join(values)

    def record_of(self, fn: Callable[..., Any]) -> tuple[str, str, bool]:
        """What an executed task stores: its part names and its key (both joined by '|'), and
        whether its own run could change a part (it reads a container: ``changed_by_run``
        looks again when it ends)."""
        if _is_plain(fn):
            names, values, mutable = self._walk(fn, 0)
            return "python|" + "|".join(names), PYTHON + "|" + "|".join(values), mutable
        parts = self.of_task(fn)
        return "|".join(parts), digest_of(parts), True

    def changed_by_run(self, fn: Callable[..., Any], before: Parts) -> Parts:
        """The data parts a task's own run changed (``calls.append(...)`` inside the task):
        containers it reads, hashed again now, uncached. Big values (arrays, frames) are not
        hashed twice: a task that changes one of those in place shows as stale."""
        containers: dict[str, Any] = {}
        if _is_plain(fn):
            self._walk(fn, 0, containers)
        changed: Parts = {}
        for name, value in containers.items():
            now = _container_hash(value)
            if name in before and now != before[name]:
                changed[name] = now
        return changed

    def _walk(
        self, fn: types.FunctionType, depth: int, containers: dict[str, Any] | None = None
    ) -> tuple[list[str], list[str], bool]:
        """A plain function's part names and values, in the one order every use shares (the
        key is the values joined: the order is part of the format), and whether it reads a
        list, dict, set or bytearray; those go into ``containers`` when given."""
        _, digest, globals_read, defaults, cells = _code_entry(fn.__code__)
        read: list[tuple[str, Any]] = []  # (part name, value), in the order of the format
        closure = fn.__closure__
        if closure:
            for name, cell in zip(cells, closure, strict=False):
                try:
                    read.append((name, cell.cell_contents))
                except ValueError:  # a cell not filled yet
                    continue
        given = fn.__defaults__
        if given and len(given) <= len(defaults):  # more: reassigned by hand, not counted
            read += zip(defaults[len(defaults) - len(given) :], given, strict=True)
        if fn.__kwdefaults__:
            read += [("default:" + name, v) for name, v in fn.__kwdefaults__.items()]
        if globals_read:
            namespace = fn.__globals__
            for name in globals_read:
                if name not in namespace:
                    continue
                value = namespace[name]
                if isinstance(value, type) and _is_user_class(value):
                    read += [
                        (f"method:{name}.{method}", _Hashed(method_digest))
                        for method, method_digest in self._methods(value, depth)
                    ]
                else:
                    read.append((f"{_global_kind(value)}:{name}", value))
        names, values = ["code"], [digest]
        mutable = False
        value_of = self._value
        for name, value in read:  # one loop, no helper call: it runs for every executed task
            names.append(name)
            values.append(value if type(value) is _Hashed else value_of(value, depth))
            if isinstance(value, _CONTAINERS):
                mutable = True
                if containers is not None:
                    containers[name] = value
        return names, values, mutable

    def _callable_parts(self, fn: Any, parts: Parts, depth: int) -> None:
        if isinstance(fn, functools.partial):
            parts["partial:args"] = self._value((fn.args, sorted(fn.keywords.items())), depth)
            self._callable_parts(fn.func, parts, depth)
            return
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None and callable(wrapped) and depth < MAX_DEPTH:
            parts["wrapped"] = self._function(wrapped, depth + 1)
        if isinstance(fn, types.MethodType):
            parts["self"] = self._value(fn.__self__, depth)
            fn = fn.__func__
        if not isinstance(fn, types.FunctionType):
            kind = type(fn)
            parts["callable"] = _digest(f"{kind.__module__}.{kind.__qualname__}")
            call = vars(kind).get("__call__")  # a callable object's own method, if Python code
            if isinstance(call, types.FunctionType) and depth < MAX_DEPTH:
                parts["code"] = self._function(call, depth + 1)
            return
        names, values, _ = self._walk(fn, depth)
        parts.update(zip(names, values, strict=True))

    def _function(self, fn: Any, depth: int) -> str:
        """A function (or any callable) as one hash of its parts: a helper's fingerprint."""
        key = id(fn)
        known = self._values.get(key)
        if known is not None and known[0] is fn:
            return known[1]
        if key in self._busy or depth > MAX_DEPTH:  # recursion: the name stands for it
            return _digest(getattr(fn, "__qualname__", type(fn).__qualname__))
        self._busy.add(key)
        try:
            parts: Parts = {}
            self._callable_parts(fn, parts, depth)
            result = _digest(digest_of(parts))  # one short hash: no "|" inside a part
        finally:
            self._busy.discard(key)
        self._values[key] = (fn, result)
        return result

    # --- values -------------------------------------------------------------------------------

    def _value(self, value: Any, depth: int) -> str:
        kind = type(value)
        if kind is int and -_SHORT_INT < value < _SHORT_INT:  # the loop variable, mostly
            return "int:" + repr(value)  # short, ASCII and plain: its own text (see below)
        if kind in _SCALARS:
            text = f"{kind.__name__}:{value!r}"
            if len(text) <= SHORT_TEXT and text.isascii() and _plain(text):
                return text
            return _digest(text)
        key = id(value)
        known = self._values.get(key)
        if known is not None and known[0] is value:
            return known[1]
        result = self._hash_value(value, depth)
        self._values[key] = (value, result)
        return result

    def _hash_value(self, value: Any, depth: int) -> str:
        if isinstance(value, (types.FunctionType, functools.partial, types.MethodType)):
            return self._function(value, depth + 1)
        if isinstance(value, types.ModuleType):
            version = getattr(value, "__version__", "")
            return _digest(f"module:{value.__name__}:{version}")
        if isinstance(value, type):
            return self._class(value, depth)
        if isinstance(value, (tuple, list)) and len(value) <= SMALL_CONTAINER:
            inner = ",".join(self._value(item, depth) for item in value)
            return _digest(f"{type(value).__name__}:{inner}")
        if isinstance(value, dict) and len(value) <= SMALL_CONTAINER:
            inner = ",".join(
                f"{self._value(k, depth)}={self._value(v, depth)}" for k, v in value.items()
            )
            return _digest(f"{type(value).__name__}:{inner}")
        if isinstance(value, (set, frozenset)):
            # A set's iteration (and pickle) order follows the process's hash seed: sort.
            inner = ",".join(sorted(self._value(item, depth) for item in value))
            return _digest(f"{type(value).__name__}:{inner}")
        return _content_hash(value)

    def _class(self, cls: type, depth: int) -> str:
        """A class by its methods' code (classes of the notebook or a script), or by module,
        name and version (classes of installed packages, which change with their version)."""
        if not _is_user_class(cls):
            version = getattr(sys.modules.get(cls.__module__.split(".")[0]), "__version__", "")
            return _digest(f"class:{cls.__module__}.{cls.__qualname__}:{version}")
        methods = ";".join(f"{name}={digest}" for name, digest in self._methods(cls, depth))
        return _digest(f"class:{cls.__qualname__}:{methods}")

    def _methods(self, cls: type, depth: int) -> list[tuple[str, str]]:
        """A user class's methods (properties, static and class methods too), each hashed.
        Class attributes that are data count for nothing: a class's own counters or registries
        change as it is used (its instances are hashed by content)."""
        methods = []
        for name, member in sorted(vars(cls).items()):
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):
                member = member.fget
            if isinstance(member, types.FunctionType):
                methods.append((name, self._function(member, depth + 1)))
        return methods


def _is_plain(fn: Any) -> TypeGuard[types.FunctionType]:
    """A def or lambda, not decorated: the common task function, walked directly."""
    return type(fn) is types.FunctionType and "__wrapped__" not in fn.__dict__


def _is_user_class(cls: type) -> bool:
    return cls.__module__ == "__main__" or _is_user_module(sys.modules.get(cls.__module__))


_CONTAINERS = (list, dict, set, bytearray)


def _container_hash(value: Any) -> str:
    return Fingerprinter()._hash_value(value, 0)


def _is_user_module(module: Any) -> bool:
    """A module the user writes (next to the notebook), not one of an installed package."""
    path = getattr(module, "__file__", None) or ""
    return (
        bool(path)
        and "site-packages" not in path
        and "dist-packages" not in path
        and (not path.startswith(sys.base_prefix) and not path.startswith(sys.prefix))
    )


def _global_kind(value: Any) -> str:
    if isinstance(value, (types.FunctionType, functools.partial)):
        return "helper"
    if isinstance(value, type):
        return "class"
    if isinstance(value, types.ModuleType):
        return "module"
    return "global"


# --- code --------------------------------------------------------------------------------------

# code object id -> (the code, kept alive; its hash; the global names it may read; the part
# names of its positional parameters' defaults and of its closure cells, made once)
_CodeEntry = tuple[types.CodeType, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
_CODE_HASHES: dict[int, _CodeEntry] = {}


def code_hash(code: types.CodeType) -> str:
    """The code's behaviour, without line numbers, positions, file name or docstring."""
    return _code_entry(code)[1]


def global_names(code: types.CodeType) -> tuple[str, ...]:
    """The names the code (and code nested in it) loads as globals; only those found in the
    function's globals count."""
    return _code_entry(code)[2]


class _Hashed(str):
    """A part already hashed (a class's method): ``_walk`` takes it as it is."""


def _code_entry(code: types.CodeType) -> _CodeEntry:
    known = _CODE_HASHES.get(id(code))
    if known is not None and known[0] is code:
        return known
    consts = list(code.co_consts)
    is_function = code.co_name not in _FUNCTION_NAMES and code.co_flags & inspect.CO_NEWLOCALS
    if consts and is_function and (consts[0] is None or isinstance(consts[0], str)):
        consts[0] = None  # a function's first constant is its docstring (or None)
    names = _loaded_globals(code)
    nested = []
    for const in consts:
        if isinstance(const, types.CodeType):
            nested.append(code_hash(const))
            names.update(global_names(const))
    material = "\x1f".join(
        [
            code.co_name,
            code.co_code.hex(),
            repr(code.co_names),
            repr(code.co_varnames),
            repr(code.co_freevars),
            repr(code.co_cellvars),
            str(code.co_argcount),
            str(code.co_kwonlyargcount),
            str(code.co_flags),
            ";".join(_const_text(c) for c in consts if not isinstance(c, types.CodeType)),
            ";".join(nested),
        ]
    )
    defaults = tuple("default:" + name for name in code.co_varnames[: code.co_argcount])
    cells = tuple("closure:" + name for name in code.co_freevars)
    entry = (code, _digest(material), tuple(sorted(names)), defaults, cells)
    _CODE_HASHES[id(code)] = entry
    return entry


def _loaded_globals(code: types.CodeType) -> set[str]:
    """The names the code loads as globals: not ``co_names``, which holds attribute names too
    (``self.size`` would count as reading a global ``size``)."""
    import dis  # here: only code fingerprinted for the first time needs it

    return {
        str(instruction.argval)
        for instruction in dis.get_instructions(code)
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    }


def _const_text(const: Any) -> str:
    if isinstance(const, frozenset):  # its repr's order changes with the process's hash seed
        return "frozenset(" + ",".join(sorted(_const_text(c) for c in const)) + ")"
    if isinstance(const, tuple):
        return "(" + ",".join(_const_text(c) for c in const) + ")"
    return f"{type(const).__name__}:{const!r}"


# --- content -----------------------------------------------------------------------------------


def _content_hash(value: Any) -> str:
    """Data by content: pickled with its big buffers out of band, each hashed where it lies.
    What cannot be pickled (a lock, a connection, ``io``) counts by its type only."""
    buffers: list[pickle.PickleBuffer] = []
    try:
        head = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception:
        kind = type(value)
        return _digest(f"type:{kind.__module__}.{kind.__qualname__}")
    crcs = [_buffer_crc(buffer.raw()) for buffer in buffers]
    return _digest(head + repr(crcs).encode())


def _buffer_crc(view: memoryview) -> str:
    size = view.nbytes
    if size < PARALLEL_BUFFER_BYTES or _CORES == 1:
        return f"{size}:{zlib.crc32(view):08x}"
    import concurrent.futures

    step = -(-size // _CORES)
    chunks = [view[i : i + step] for i in range(0, size, step)]
    with concurrent.futures.ThreadPoolExecutor(len(chunks)) as pool:
        crcs = list(pool.map(zlib.crc32, chunks))
    return f"{size}:" + ".".join(f"{c:08x}" for c in crcs)


def integration_fingerprint(method: Any, params: Any) -> Parts:
    """An integration task's fingerprint: the method's qualified name and its arguments."""
    name = getattr(method, "__qualname__", None) or type(method).__qualname__
    module = getattr(method, "__module__", None) or ""
    arguments = json.dumps(params, sort_keys=True, default=repr)
    return {"python": PYTHON, "method": _digest(f"{module}.{name}"), "params": _digest(arguments)}


# --- explaining a change -------------------------------------------------------------------------

_REASONS = {
    "code": "code of fn changed",
    "partial:args": "argument of the partial changed",
    "wrapped": "wrapped function changed",
    "self": "the method's object changed",
    "callable": "the callable changed",
    "method": "integration method changed",
    "params": "integration arguments changed",
}
_KINDS = {
    "closure": "closure value '{}' changed",
    "default": "default '{}' changed",
    "helper": "helper '{}' changed",
    "class": "class '{}' changed",
    "module": "module '{}' changed (another version)",
    "global": "global '{}' changed",
}


def explain(stored: Parts | None, current: Parts, after: Parts | None = None) -> list[str] | None:
    """Why ``current`` differs from ``stored``: short sentences, [] if it does not, None if it
    cannot be told (no stored fingerprint, or one made under another Python minor version).
    ``after``: parts the task's own run changed; either value counts as the same."""
    if not stored or stored.get("python") != current.get("python"):
        return None
    after = after or {}
    reasons = []
    for name in sorted(stored.keys() | current.keys()):
        now = current.get(name)
        if (
            name == "python"
            or now == stored.get(name)
            or (now is not None and now == after.get(name))
        ):
            continue
        kind, _, label = name.partition(":")
        if name not in current:
            reasons.append(f"no longer reads '{label or kind}'")
        elif name not in stored:
            reasons.append(f"now reads '{label or kind}'")
        elif name in _REASONS:
            reasons.append(_REASONS[name])
        elif kind == "method":
            owner, _, method = label.rpartition(".")
            reasons.append(f"method '{method}' of class '{owner}' changed")
        else:
            reasons.append(_KINDS.get(kind, "'{}' changed").format(label))
    return reasons
