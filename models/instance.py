"""Other instances we know: partners (the allow-list), blocks, and delivery health.

Hosts are stored exactly as `host[:port]`, lower-cased, IDNs in their ASCII form (`normalize_host`).
An instance that failed on 7 distinct days is marked unavailable and skipped until it answers again
(Mastodon's DeliveryFailureTracker).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin

FAILURE_DAYS_UNAVAILABLE = 7


class Instance(TimestampMixin, Base):
    __tablename__ = "instances"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    partner: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    failure_days: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO dates of failed deliveries
    unavailable_since: Mapped[dt.datetime | None]
    software: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)

    def record_failure(self, day: dt.date) -> None:
        days = set(self.failure_days or [])
        days.add(day.isoformat())
        self.failure_days = sorted(days)

    @property
    def should_be_unavailable(self) -> bool:
        return len(self.failure_days or []) >= FAILURE_DAYS_UNAVAILABLE


def normalize_host(host: str) -> str:
    """`Example.COM:443` stays `example.com:443`; an IDN becomes its punycode. Raises ValueError."""
    host = host.strip().lower().rstrip(".")
    if not host or "/" in host or "@" in host or " " in host:
        raise ValueError(f"not a host: {host!r}")
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if not name:
        name, port = host, ""
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise ValueError(f"bad port in {host!r}")
    ascii_name = name.encode("idna").decode("ascii") if not name.isascii() else name
    return f"{ascii_name}:{port}" if port else ascii_name


