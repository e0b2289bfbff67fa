"""Rate limits kept in the database, so every process of the instance shares them.

A `Limit` is a fixed-window counter (`models/meta.py` hit_counter/read_counter) under a key made of
the limit's name and a subject (a client IP, a hashed household code...). `Limit.limit == 0` means
unlimited: nothing is read or written then. Two ways to use a limit:

- `peek` then `hit` on failure only: failed household codes. Successful registrations are not counted,
  because on the day the letters arrive hundreds of households register from the same few addresses.
- `take`: count every attempt and refuse past the limit (login attempts, the password grant, and the
  API-wide limiter later).

A refused attempt gets 429 with `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
(an ISO 8601 time, as Mastodon sends it) headers: `RateState.headers()`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.meta import hit_counter, hit_counters_alone, read_counter

from ..errors import ApiError
from ..settings import Settings
from .villages import hash_code

HOUR = 3600
FIVE_MINUTES = 300


@dataclass(frozen=True)
class Limit:
    """`limit` events per `window` seconds for each subject; `name` prefixes the counter key."""

    name: str
    limit: int
    window: int

    def key(self, subject: str) -> str:
        return f"{self.name}:{subject}"[:200]

    @property
    def unlimited(self) -> bool:
        return self.limit <= 0


@dataclass(frozen=True)
class RateState:
    """Where a subject stands against a limit; `allowed` says whether the attempt may go on."""

    limit: int
    count: int
    reset_at: int  # Unix seconds: end of the current window
    allowed: bool

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        reset = dt.datetime.fromtimestamp(self.reset_at, dt.UTC)
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }


def _unlimited(now: float) -> RateState:
    return RateState(limit=0, count=0, reset_at=int(now), allowed=True)


async def peek(session: AsyncSession, limit: Limit, subject: str, now: float) -> RateState:
    """How many events the subject has in the window, without counting one; allowed while under the limit."""
    if limit.unlimited:
        return _unlimited(now)
    count, reset_at = await read_counter(session, limit.key(subject), limit.window, now)
    return RateState(limit.limit, count, reset_at, count < limit.limit)


async def hit(session: AsyncSession, limit: Limit, subject: str, now: float) -> RateState:
    """Count one event for the subject (the caller commits); allowed while the count is within the limit."""
    if limit.unlimited:
        return _unlimited(now)
    count, reset_at = await hit_counter(session, limit.key(subject), limit.window, now)
    return RateState(limit.limit, count, reset_at, count <= limit.limit)


take = hit  # count this attempt and say whether it may go on


def too_many_requests(state: RateState) -> ApiError:
    """The API answer once a limit is reached (Mastodon's body and headers)."""
    return ApiError(429, "Too many requests", headers=state.headers())


# --- failed household codes (brute force), per client IP and per code -------------------------------

def failed_code_limits(settings: Settings) -> tuple[Limit, Limit]:
    per_hour = settings.ratelimit.failed_codes_per_hour
    return Limit("codefail:ip", per_hour, HOUR), Limit("codefail:code", per_hour, HOUR)


def _code_subject(code: str) -> str:
    # The counter key holds a hash, never the code typed (it may be a real one with a typo).
    return hash_code(code)


async def check_failed_codes(session: AsyncSession, settings: Settings, ip: str, code: str,
                             now: float) -> RateState:
    """Whether this IP and this code may try a household code again; the most exhausted state wins."""
    by_ip, by_code = failed_code_limits(settings)
    states = [await peek(session, by_ip, ip, now)]
    if code.strip():
        states.append(await peek(session, by_code, _code_subject(code), now))
    blocked = [s for s in states if not s.allowed]
    if blocked:
        return max(blocked, key=lambda s: s.reset_at)
    return min(states, key=lambda s: (s.remaining if s.limit else 1 << 30))


async def record_failed_code(session: AsyncSession, settings: Settings, ip: str, code: str, now: float) -> None:
    """Count one failed household-code attempt against the IP and against the code."""
    by_ip, by_code = failed_code_limits(settings)
    await hit(session, by_ip, ip, now)
    if code.strip():
        await hit(session, by_code, _code_subject(code), now)


# --- logins (the login page and the password grant), per client IP ----------------------------------

def login_limit(settings: Settings) -> Limit:
    return Limit("login:ip", settings.ratelimit.logins_per_5min, FIVE_MINUTES)


async def take_login(session: AsyncSession, settings: Settings, ip: str, now: float) -> RateState:
    """Count a login attempt from this IP; not allowed past `ratelimit.logins_per_5min`."""
    return await take(session, login_limit(settings), ip, now)


# --- the API as a whole, per token and per client IP ------------------------------------------------

class LocalCounters:
    """Fixed-window counters in this process's memory.

    Used on SQLite, where one process serves the instance: the shared state is this process's state,
    and a database write per API request would serialize every reader behind SQLite's single writer.
    """

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    def hit(self, key: str, window: int, now: float) -> tuple[int, int]:
        start = int(now) - int(now) % window
        old_start, count = self._windows.get(key, (start, 0))
        count = count + 1 if old_start == start else 1
        self._windows[key] = (start, count)
        if len(self._windows) > 50000:  # drop finished windows
            self._windows = {k: v for k, v in self._windows.items() if v[0] == start}
        return count, start + window


def api_limit(settings: Settings) -> Limit:
    return Limit("api", settings.ratelimit.api_per_5min, FIVE_MINUTES)


async def take_api(session_factory: object, local: LocalCounters | None, settings: Settings,
                   subjects: list[str], now: float) -> RateState:
    """Count one API request for each subject (token, client IP); the most used one decides.

    `local` set: counted in this process (SQLite). Otherwise in the database, shared by every process.
    """
    limit = api_limit(settings)
    if limit.unlimited:
        return _unlimited(now)
    states = []
    if local is not None:
        for subject in subjects:
            count, reset_at = local.hit(limit.key(subject), limit.window, now)
            states.append(RateState(limit.limit, count, reset_at, count <= limit.limit))
    else:  # one statement for the subjects, committed by itself: on every API request of every process
        counts, reset_at = await hit_counters_alone(session_factory, [limit.key(s) for s in subjects],
                                                    limit.window, now)
        states.extend(RateState(limit.limit, count, reset_at, count <= limit.limit) for count in counts.values())
    return max(states, key=lambda s: s.count)
