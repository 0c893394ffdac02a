"""The level methods every task logger offers (``io.logger``, ``task.logger``, and the one a
Dask worker hands a child): one definition, each logger supplies ``_emit``."""

from __future__ import annotations

from typing import Any


class LevelMethods:
    """``debug``, ``info`` (and its alias ``log``), ``warn`` (and ``warning``) and ``error``,
    all calling ``_emit(level, message, data)``."""

    def _emit(self, level: str, message: str, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def debug(self, message: str, **data: Any) -> None:
        self._emit("debug", message, data)

    def info(self, message: str, **data: Any) -> None:
        self._emit("info", message, data)

    def log(self, message: str, **data: Any) -> None:
        self._emit("info", message, data)

    def warn(self, message: str, **data: Any) -> None:
        self._emit("warn", message, data)

    warning = warn

    def error(self, message: str, **data: Any) -> None:
        self._emit("error", message, data)
