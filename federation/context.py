"""What federation code needs from the running process, passed explicitly (never read from globals).

The server builds one `FederationContext` at start-up and stores it under `FEDERATION`; tests build
their own, with an in-process transport that routes requests between test communes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .transport import HttpTransport, Transport


@dataclass
class FederationContext:
    base_url: str  # e.g. "https://chaudfontaine.example" or "http://localhost:18081"
    domain: str  # host[:port], lower-case: our own host as every comparison sees it
    scheme: str  # "https" or "http"; a bare handle is looked up over http only when allow_private
    sessionmaker: async_sessionmaker[AsyncSession]
    transport: Transport
    allow_private_addresses: bool = False
    clock: Callable[[], float] = time.time
    # keyId -> cached public key material; filled by federation.actors
    key_cache: dict[str, Any] = field(default_factory=dict)

    def is_local_url(self, url: str) -> bool:
        from urllib.parse import urlsplit

        return urlsplit(url).netloc.lower() == self.domain


FEDERATION = web.AppKey("federation", FederationContext)


def make_transport(domain: str, base_url: str, allow_private_addresses: bool) -> HttpTransport:
    return HttpTransport(user_agent=f"Voisinage/0.1 (+{base_url})",
                         allow_private_addresses=allow_private_addresses, local_hosts={domain})
