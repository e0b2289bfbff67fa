"""The allow-list: the partner instances we federate with, and nothing else.

Hosts are compared exactly in their normalized form (`models.instance.normalize_host`:
lower-case, punycode, `host[:port]` with the port only when the URL names one).
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.db import fast
from voisinage.models.instance import Instance, normalize_host


@functools.lru_cache(maxsize=4096)  # the same inboxes and actor ids come again with every activity
def host_of(url: str) -> str:
    """The normalized `host[:port]` of an absolute URL. Raises ValueError for anything else."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"not a URL: {url[:200]!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an absolute http(s) URL: {url[:200]!r}")
    if "@" in parts.netloc:
        raise ValueError("URL with credentials refused")
    return normalize_host(parts.netloc)


async def is_partner(session: AsyncSession, host: str) -> bool:
    """True when `host` (normalized here) is a partner that is not blocked."""
    try:
        host = normalize_host(host)
    except ValueError:
        return False
    row = (await session.execute(_PARTNER, {"host": host})).first()
    return row is not None and bool(row.partner) and not row.blocked


_PARTNER = fast(select(Instance.partner, Instance.blocked).where(Instance.host == bindparam("host")))


async def add_partner(session: AsyncSession, host: str, note: str | None = None) -> Instance:
    """Mark `host` as a partner (creating its Instance row); returns the row. Raises ValueError."""
    host = normalize_host(host)
    row = await session.get(Instance, host)
    if row is None:
        row = Instance(host=host, partner=True, blocked=False, failure_days=[])
        session.add(row)
    row.partner = True
    if note is not None:
        row.note = note
    await session.flush()
    return row


async def remove_partner(session: AsyncSession, host: str) -> bool:
    """Stop federating with `host`; returns whether it was a partner. The row (health, notes) is kept."""
    host = normalize_host(host)
    row = await session.get(Instance, host)
    if row is None or not row.partner:
        return False
    row.partner = False
    await session.flush()
    return True


async def list_partners(session: AsyncSession) -> list[Instance]:
    """The partner instances, by host."""
    return list(await session.scalars(select(Instance).where(Instance.partner.is_(True)).order_by(Instance.host)))
