"""What federation code needs from the running process, passed explicitly (never read from globals).

The server builds one `FederationContext` at start-up and stores it under `FEDERATION`; tests build
their own, with an in-process transport that routes requests between test communes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .partners import host_of
from .transport import HttpTransport, Transport

_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


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
    # the inbox's group commit (federation.inbox.StoreBatcher), made at the first delivery received
    inbox_batcher: Any = field(default=None, repr=False)
    # set when there is new work for the workers of this process (federation.workers)
    wake: Any = field(default=None, repr=False)

    def is_local_url(self, url: str) -> bool:
        """Whether the URL is on our host, however spelled: any case, trailing dot, IDN, or the
        scheme's default port (`https://A.TEST:443/...` is `https://a.test/...`)."""
        return self.local_url(url) is not None

    def local_url(self, url: str) -> str | None:
        """Our own URL as we write it (base_url + path), when `url` is on our host; None otherwise."""
        host = _host_without_default_port(url)
        if host is None or host != _host_without_default_port(self.base_url):
            return None
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        return f"{self.base_url.rstrip('/')}{parts.path}{query}{fragment}"

    def canonical_url(self, url: str | None) -> str | None:
        """Our own URL as we write it, or any other URL unchanged."""
        return (self.local_url(url) or url) if url else url


@functools.lru_cache(maxsize=4096)  # our base URL on every call, and the same inboxes each fan-out
def _host_without_default_port(url: str) -> str | None:
    """The normalized host[:port] of an http(s) URL, without the scheme's default port; None for others."""
    try:
        host = host_of(url)
    except ValueError:
        return None
    default = _DEFAULT_PORTS[urlsplit(url).scheme.lower()]
    return host.removesuffix(default)


FEDERATION = web.AppKey("federation", FederationContext)


def make_transport(domain: str, base_url: str, allow_private_addresses: bool) -> HttpTransport:
    return HttpTransport(user_agent=f"Voisinage/0.1 (+{base_url})",
                         allow_private_addresses=allow_private_addresses, local_hosts={domain})
