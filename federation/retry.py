"""Retry policy for outgoing deliveries: backoff delays, Retry-After, and which statuses to retry.

Numbers: a delivery is tried at most `MAX_ATTEMPTS` = 16 times (like Mastodon's 16 tries). The
delay after failed attempt n (1-based) is 20 s * 2**(n-1), capped at 9 h, times a random factor in
[0.9, 1.1). So the first retry comes after 18-22 s, and the 15 waits between 16 tries add up to
170,540 s nominal, about 47.4 h (42.6 h to 52.1 h with jitter): about two days [Mastodon: ~50-74 h;
Misskey ~32 h]. The jitter spreads out the retries of many deliveries that failed together when an
instance went down. [Fedify createExponentialBackoffPolicy]

The "failing on 7 distinct days -> unavailable" rule needs the database and lives with the
instance model, not here.
"""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime
from typing import Literal, Protocol

__all__ = [
    "BASE_DELAY",
    "MAX_ATTEMPTS",
    "MAX_DELAY",
    "MAX_RETRY_AFTER",
    "Outcome",
    "backoff",
    "classify",
    "parse_retry_after",
]

MAX_ATTEMPTS = 16
BASE_DELAY = 20.0
MAX_DELAY = 9 * 3600.0
JITTER = 0.1
MAX_RETRY_AFTER = 24 * 3600.0

Outcome = Literal["ok", "retry", "permanent"]


class RandomSource(Protocol):
    """Anything with `random() -> float in [0, 1)`: the `random` module or a `random.Random`."""

    def random(self) -> float: ...


def backoff(attempt: int, rng: RandomSource = random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 for the first try) before the next.

    Raises ValueError for attempt < 1.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    nominal = min(MAX_DELAY, BASE_DELAY * 2.0 ** min(attempt - 1, 64))
    return nominal * (1.0 - JITTER + 2.0 * JITTER * rng.random())


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait according to a `Retry-After` header value, or None if absent or garbage.

    Accepts delta-seconds ("120") and an HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT"); a date in
    the past gives 0. The result is capped at MAX_RETRY_AFTER so a peer cannot park our queue.
    `now` must be timezone-aware.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def classify(status: int) -> Outcome:
    """What a delivery's HTTP status means: "ok", "retry" later, or "permanent" failure.

    2xx is ok. 0 (network error, timeout, refused address), 401 (the receiver may not have fetched
    our new key yet), 408, 429 and 5xx are retried. Other 4xx are permanent. Anything else (1xx,
    3xx: we do not follow redirects on POST) is retried, as Mastodon does.
    """
    if 200 <= status < 300:
        return "ok"
    if 400 <= status < 500 and status not in (401, 408, 429):
        return "permanent"
    return "retry"
