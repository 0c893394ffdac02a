"""Integrations: a client object whose every public method becomes a task on ``io``.

``define_job(..., integrations={"mail": client})`` exposes ``io.mail.send_email(cache_key, ...)``:
the call runs once per key and replays afterwards, named after the method, with the integration's
icon, the arguments shown as ``params``, and a standard back-off unless overridden. Any object
works (a plain SDK client too); subclass ``Integration`` to set ``icon`` and ``retry``, or to let a
method receive the task handle through a keyword-only ``task`` parameter.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trigger_nb._core.codec import to_jsonable
from trigger_nb._core.retry import RetryOptions, standard_backoff
from trigger_nb._engine.fingerprint import integration_fingerprint
from trigger_nb.errors import InvalidOptionError

if TYPE_CHECKING:
    from trigger_nb._engine.host import TaskRunner

_PLAIN = (str, bytes, int, float, bool, type(None), list, dict, tuple, set)


class Integration:
    """Base class for integrations: public methods become tasks when reached through ``io``."""

    id: str = ""
    icon: str | None = None
    retry: RetryOptions | None = standard_backoff


class IntegrationProxy:
    """What ``io.<name>`` returns: methods of the wrapped object, each turned into a task."""

    def __init__(
        self, io: TaskRunner, name: str, target: Any, path: tuple[str, ...] = (), root: Any = None
    ) -> None:
        self._io = io
        self._name = name
        self._target = target
        self._path = path
        self._root = target if root is None else root  # the integration itself: icon, retry

    def __repr__(self) -> str:
        return f"<integration {'.'.join((self._name, *self._path))}: {self._target!r}>"

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        try:
            member = getattr(self._target, attribute)
        except AttributeError:
            raise AttributeError(
                f"integration {self._name!r} has no method {attribute!r} "
                f"({type(self._target).__name__} does not define it)"
            ) from None
        path = (*self._path, attribute)
        if callable(member) and not isinstance(member, type):
            return self._task_method(member, path)
        if isinstance(member, _PLAIN):
            return member
        return IntegrationProxy(self._io, self._name, member, path, self._root)

    def _task_method(self, method: Callable[..., Any], path: tuple[str, ...]) -> Callable[..., Any]:
        root = self._root
        icon = getattr(root, "icon", None) or self._name
        retry = root.retry if isinstance(root, Integration) else standard_backoff
        wants_task = "task" in _keyword_only(method)

        def options(args: tuple[Any, ...], kwargs: dict[str, Any], extra: Any) -> dict[str, Any]:
            if extra is not None and not isinstance(extra, dict):
                raise InvalidOptionError(
                    "task_options must be a dict of run_task options, e.g. "
                    "{'retry': RetryOptions(limit=2)}"
                )
            params = {"args": to_jsonable(list(args))} if args else {}
            params.update({k: to_jsonable(v) for k, v in kwargs.items()})
            chosen: dict[str, Any] = {
                "name": ".".join(path),
                "icon": icon if isinstance(icon, str) else None,
                "params": params,
                "retry": retry,
                # An integration task is what it calls and with what: the wrapped client's own
                # code is an installed package's, not the notebook's.
                "_fingerprint": integration_fingerprint(method, params),
            }
            chosen.update(extra or {})
            return chosen

        def body(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[..., Any]:
            if wants_task:
                return lambda task: method(*args, task=task, **kwargs)
            return lambda: method(*args, **kwargs)

        if inspect.iscoroutinefunction(method):

            async def async_call(
                cache_key: object, *args: Any, task_options: Any = None, **kwargs: Any
            ) -> Any:
                chosen = options(args, kwargs, task_options)
                return await self._io.arun_task(cache_key, body(args, kwargs), **chosen)

            return async_call

        def call(cache_key: object, *args: Any, task_options: Any = None, **kwargs: Any) -> Any:
            chosen = options(args, kwargs, task_options)
            return self._io.run_task(cache_key, body(args, kwargs), **chosen)

        return call


def _keyword_only(method: Callable[..., Any]) -> set[str]:
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
