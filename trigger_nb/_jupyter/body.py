"""A ``%%trigger_job`` cell body as a run function, and tracebacks that point at the user's code.

The body is compiled as module code in the notebook's namespace (top-level ``await`` allowed), so
every name it assigns stays in the namespace like in a normal cell. Its trailing expression is
compiled apart and becomes the run's output. ``payload``, ``io`` and ``ctx`` are bound in the
namespace only while the body runs: afterwards each gets back its previous value (or disappears
if it had none), unless the body rebound it itself. That keeps a notebook variable called
``payload`` safe and stops a dead ``io`` from lingering after the run.

No IPython import here: ``cell.py`` passes in the namespace and the cell's cached file name.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import contextlib
import inspect
import os
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from trigger_nb._core.tracebacks import PACKAGE_DIR

INJECTED_NAMES = ("payload", "io", "ctx")
_ABSENT: Any = object()
_TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def _directory(module: types.ModuleType) -> str:
    return os.path.dirname(os.path.abspath(module.__file__ or "")) + os.sep


def _machinery_paths() -> tuple[str, ...]:
    """Files of the code between the cell and the user's functions, hidden from tracebacks."""
    paths = [PACKAGE_DIR, _directory(asyncio), _directory(concurrent.futures)]
    paths.append(os.path.abspath(threading.__file__))
    try:
        import nest_asyncio2

        paths.append(os.path.abspath(nest_asyncio2.__file__))
    except ImportError:  # pragma: no cover - a dependency; listed for completeness
        pass
    return tuple(paths)


_MACHINERY = _machinery_paths()


@dataclass(frozen=True)
class CellBody:
    """The compiled body: its statements, and its trailing expression (the run output)."""

    statements: types.CodeType
    last_expression: types.CodeType | None
    is_async: bool


def compile_body(source: str, filename: str, first_line: int) -> CellBody:
    """Compile ``source`` so tracebacks show ``filename`` at the cell's own line numbers."""
    padded = "\n" * (first_line - 1) + source
    tree = compile(padded, filename, "exec", ast.PyCF_ONLY_AST | _TOP_LEVEL_AWAIT)
    assert isinstance(tree, ast.Module)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        node = tree.body.pop()
        assert isinstance(node, ast.Expr)
        expression = ast.Expression(body=node.value)
        last = compile(expression, filename, "eval", _TOP_LEVEL_AWAIT)
    statements = compile(tree, filename, "exec", _TOP_LEVEL_AWAIT)
    flags = statements.co_flags | (last.co_flags if last is not None else 0)
    return CellBody(statements, last, bool(flags & inspect.CO_COROUTINE))


@contextlib.contextmanager
def bound_names(namespace: dict[str, Any], values: dict[str, Any]) -> Iterator[None]:
    """Bind ``values`` in ``namespace`` for the block; restore what was there afterwards."""
    previous = {name: namespace.get(name, _ABSENT) for name in values}
    namespace.update(values)
    try:
        yield
    finally:
        for name, value in values.items():
            if namespace.get(name, _ABSENT) is not value:
                continue  # the body rebound the name itself: keep its value
            if previous[name] is _ABSENT:
                del namespace[name]
            else:
                namespace[name] = previous[name]


def make_run_function(body: CellBody, namespace: dict[str, Any]) -> Callable[..., Any]:
    """A run function ``(payload, io, ctx)`` executing ``body`` in ``namespace``."""
    if body.is_async:

        async def run_cell_body_async(payload: Any, io: Any, ctx: Any) -> Any:
            with bound_names(namespace, {"payload": payload, "io": io, "ctx": ctx}):
                pending = eval(body.statements, namespace)
                if inspect.isawaitable(pending):
                    await pending
                if body.last_expression is None:
                    return None
                value = eval(body.last_expression, namespace)
                return (await value) if inspect.isawaitable(value) else value

        return run_cell_body_async

    def run_cell_body(payload: Any, io: Any, ctx: Any) -> Any:
        with bound_names(namespace, {"payload": payload, "io": io, "ctx": ctx}):
            exec(body.statements, namespace)
            if body.last_expression is None:
                return None
            return eval(body.last_expression, namespace)

    return run_cell_body


def _is_machinery(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_MACHINERY)


def _without_machinery(tb: types.TracebackType | None) -> types.TracebackType | None:
    entries = []
    cursor = tb
    while cursor is not None:
        if not _is_machinery(cursor.tb_frame.f_code.co_filename):
            entries.append(cursor)
        cursor = cursor.tb_next
    if not entries:
        return tb  # an error inside trigger_nb itself: show all of it
    rebuilt = None
    for entry in reversed(entries):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


def trim_traceback(error: BaseException) -> BaseException:
    """Drop trigger_nb's (and asyncio's, threads') frames from ``error`` and its chain."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = _without_machinery(current.__traceback__)
        pending.extend((current.__cause__, current.__context__))
    return error
