"""Delivery retry policy: backoff schedule, Retry-After parsing, status classification."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from voisinage.federation.retry import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    backoff,
    classify,
    parse_retry_after,
)

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


class _Fixed:
    """A random source that always returns the same number."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


LOWEST, HIGHEST = _Fixed(0.0), _Fixed(0.999999)


def _total_hours(rng: _Fixed) -> float:
    return sum(backoff(attempt, rng) for attempt in range(1, MAX_ATTEMPTS)) / 3600


@pytest.mark.parametrize("rng", [LOWEST, HIGHEST, _Fixed(0.5)])
def test_schedule_spans_about_two_days(rng: _Fixed) -> None:
    assert 40 <= _total_hours(rng) <= 60


@pytest.mark.parametrize("rng", [LOWEST, HIGHEST])
def test_first_retry_within_thirty_seconds(rng: _Fixed) -> None:
    assert 0 < backoff(1, rng) <= 30


def test_delays_grow_and_are_capped() -> None:
    delays = [backoff(n, _Fixed(0.5)) for n in range(1, 40)]
    assert all(later >= earlier for earlier, later in zip(delays, delays[1:]))
    assert delays[1] > delays[0] * 1.5
    assert max(delays) <= 10 * 3600


def test_jitter_spreads_delays() -> None:
    rng = random.Random(7)
    samples = {round(backoff(5, rng), 3) for _ in range(50)}
    assert len(samples) > 40
    assert all(0.9 * 320 <= s <= 1.1 * 320 for s in samples)


def test_attempt_counts_from_one() -> None:
    with pytest.raises(ValueError):
        backoff(0)


def test_default_rng_is_the_random_module() -> None:
    assert 0 < backoff(1) <= 30


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("  0 ", 0.0),
        ("999999999", MAX_RETRY_AFTER),
        ("Wed, 25 Nov 2026 12:05:00 GMT", 300.0),
        ("Wed, 25 Nov 2026 11:00:00 GMT", 0.0),  # in the past
        ("Fri, 25 Dec 2026 12:00:00 GMT", MAX_RETRY_AFTER),  # a month away: capped
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("١٢", None),  # non-ASCII digits
        ("Wed, 99 Foo 2026 99:99:99 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_date_relative_to_now() -> None:
    later = NOW + timedelta(hours=1)
    assert parse_retry_after("Wed, 25 Nov 2026 12:05:00 GMT", later) == 0.0


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"), (201, "ok"), (202, "ok"), (204, "ok"),
        (0, "retry"), (401, "retry"), (408, "retry"), (429, "retry"),
        (500, "retry"), (502, "retry"), (503, "retry"), (504, "retry"), (301, "retry"),
        (400, "permanent"), (403, "permanent"), (404, "permanent"), (405, "permanent"),
        (410, "permanent"), (413, "permanent"), (422, "permanent"),
    ],
)
def test_classify(status: int, outcome: str) -> None:
    assert classify(status) == outcome
