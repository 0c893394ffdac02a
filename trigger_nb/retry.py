"""Retry options and presets, as ``trigger_nb.retry`` (``retry.standard_backoff``)."""

from trigger_nb._core.retry import (
    SKIP_RETRYING,
    RetryAt,
    RetryOptions,
    exponential_backoff,
    standard_backoff,
)

__all__ = ["SKIP_RETRYING", "RetryAt", "RetryOptions", "exponential_backoff", "standard_backoff"]
