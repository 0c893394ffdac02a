"""Retry options, Trigger.dev v2's presets and the pure delay computation.

``from trigger_nb import retry`` then ``retry.standard_backoff`` mirrors Trigger.dev's
``retry.standardBackoff``.
"""

from __future__ import annotations

import dataclasses
import math
import random as random_module
from collections.abc import Callable
from datetime import datetime
from typing import Any

from trigger_nb.errors import InvalidOptionError

DEFAULT_LIMIT = 5
DEFAULT_FACTOR = 1.8
DEFAULT_MIN_TIMEOUT = 1.0
DEFAULT_MAX_TIMEOUT = 60.0

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryOptions:
    """How a failed task is retried. ``limit`` counts total attempts; times are seconds."""

    limit: int = DEFAULT_LIMIT
    factor: float = DEFAULT_FACTOR
    min_timeout: float = DEFAULT_MIN_TIMEOUT
    max_timeout: float = DEFAULT_MAX_TIMEOUT
    randomize: bool = True
    retry_on: ExceptionTypes | None = None
    no_retry_on: ExceptionTypes | None = None

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise InvalidOptionError(
                f"RetryOptions.limit={self.limit!r} is invalid: it counts total attempts, "
                "so use an int >= 1 (1 means no retry)"
            )
        for name in ("factor", "min_timeout", "max_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidOptionError(
                    f"RetryOptions.{name}={value!r} is invalid: use a number of seconds"
                )
            if not math.isfinite(value) or value < 0:
                raise InvalidOptionError(
                    f"RetryOptions.{name}={value!r} is invalid: use a finite number >= 0"
                )
        if self.factor < 1:
            raise InvalidOptionError(
                f"RetryOptions.factor={self.factor!r} is invalid: use a factor >= 1 so delays "
                "never shrink"
            )
        if self.max_timeout < self.min_timeout:
            raise InvalidOptionError(
                f"RetryOptions.max_timeout={self.max_timeout!r} is below "
                f"min_timeout={self.min_timeout!r}: raise max_timeout or lower min_timeout"
            )
        for name in ("retry_on", "no_retry_on"):
            _check_exception_types(f"RetryOptions.{name}", getattr(self, name))


def _check_exception_types(label: str, value: object) -> None:
    if value is None:
        return
    kinds = value if isinstance(value, tuple) else (value,)
    for kind in kinds:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise InvalidOptionError(
                f"{label}={value!r} is invalid: give an exception class or a tuple of them"
            )


def compute_delay(
    attempt: int, options: RetryOptions, *, rand: Callable[[], float] = random_module.random
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): Trigger.dev v2's formula."""
    r = 1.0 + rand() if options.randomize else 1.0
    delay = r * options.min_timeout * options.factor ** max(attempt - 2, 0)
    return float(min(delay, options.max_timeout))


def should_retry(error: BaseException, options: RetryOptions) -> bool:
    if options.no_retry_on is not None and isinstance(error, options.no_retry_on):
        return False
    return options.retry_on is None or isinstance(error, options.retry_on)


@dataclasses.dataclass(frozen=True)
class RetryAt:
    """Returned by ``on_error``: retry at this time (a datetime, or seconds from now)."""

    when: float | datetime

    def delay_from(self, now: datetime) -> float:
        if isinstance(self.when, datetime):
            return max((self.when - now).total_seconds(), 0.0)
        return max(float(self.when), 0.0)


class _SkipRetrying:
    _instance: _SkipRetrying | None = None

    def __new__(cls) -> _SkipRetrying:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SKIP_RETRYING"


SKIP_RETRYING: Any = _SkipRetrying()
"""Returned by ``on_error``: fail the task now, without further attempts."""

standard_backoff = RetryOptions(
    limit=8, factor=1.8, min_timeout=0.5, max_timeout=30.0, randomize=True
)
exponential_backoff = RetryOptions(
    limit=8, factor=2.0, min_timeout=1.0, max_timeout=30.0, randomize=True
)
