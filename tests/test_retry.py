from __future__ import annotations

import math

import pytest

from trigger_nb import InvalidOptionError, RetryOptions, retry
from trigger_nb._core.retry import compute_delay


@pytest.mark.parametrize(
    ("attempt", "options", "expected"),
    [
        (1, RetryOptions(randomize=False), 1.0),
        (2, RetryOptions(randomize=False), 1.0),
        (3, RetryOptions(randomize=False), 1.8),
        (4, RetryOptions(randomize=False), 1.8**2),
        (5, RetryOptions(randomize=False, min_timeout=2, factor=3), 2 * 27),
        (10, RetryOptions(randomize=False), 60.0),  # capped by max_timeout
        (3, RetryOptions(randomize=False, min_timeout=0.5, factor=2, max_timeout=1.5), 1.0),
        (4, RetryOptions(randomize=False, min_timeout=0.5, factor=2, max_timeout=1.5), 1.5),
    ],
)
def test_delay_follows_trigger_dev_formula(
    attempt: int, options: RetryOptions, expected: float
) -> None:
    assert math.isclose(compute_delay(attempt, options), expected)


def test_randomized_delay_is_between_one_and_two_times_the_base() -> None:
    options = RetryOptions(min_timeout=1.0, factor=2.0, max_timeout=1000)
    assert compute_delay(3, options, rand=lambda: 0.0) == 2.0
    assert math.isclose(compute_delay(3, options, rand=lambda: 0.999), 2 * 1.999)
    delays = [compute_delay(3, options) for _ in range(200)]
    assert all(2.0 <= d < 4.0 for d in delays)


def test_presets_match_trigger_dev() -> None:
    assert retry.standard_backoff == RetryOptions(
        limit=8, factor=1.8, min_timeout=0.5, max_timeout=30, randomize=True
    )
    assert retry.exponential_backoff.factor == 2


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"limit": 0}, "limit=0"),
        ({"limit": -3}, "limit=-3"),
        ({"limit": 2.5}, "limit=2.5"),
        ({"factor": math.nan}, "factor=nan"),
        ({"factor": 0.5}, "factor=0.5"),
        ({"min_timeout": -1}, "min_timeout=-1"),
        ({"max_timeout": math.inf}, "max_timeout=inf"),
        ({"min_timeout": 10, "max_timeout": 1}, "below"),
        ({"retry_on": "ValueError"}, "retry_on"),
    ],
)
def test_bad_retry_options_are_clear_errors(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidOptionError, match="RetryOptions") as caught:
        RetryOptions(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(caught.value)
