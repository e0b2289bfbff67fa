"""Server-side request forgery guard: which addresses an outgoing federation request may reach.

A remote actor chooses the URLs we fetch (its inbox, its key id, an attachment), so every outgoing
connection is checked against the table below *after* DNS resolution, at connect time, so that a
name resolving to a public address during a pre-check and to 127.0.0.1 a moment later (DNS
rebinding) cannot slip through. Three places check, and `federation/transport.py` wires all three:

* `GuardedResolver` wraps aiohttp's resolver and refuses a name if ANY address it resolves to is
  forbidden (a mixed answer is refused whole, not filtered: the name is hostile or misconfigured);
* `guarded_socket_factory` is given to aiohttp's connector and refuses to create the socket for a
  forbidden address, whatever path produced it (aiohttp skips the resolver for IP literals);
* the transport checks IP-literal hosts before it sends anything (`check_literal_host`).

Python's `ipaddress.is_global` misses several ranges (NAT64 64:ff9b::/96, 6to4 2002::/16,
site-local fec0::/10, IPv4-compatible ::/96, SRv6 5f00::/16, documentation 3fff::/20) and, before
Python 3.13, ignores the IPv4 address inside an IPv4-mapped IPv6 address, so every range is listed
explicitly in `_FORBIDDEN_V4` / `_FORBIDDEN_V6`; `is_global` is only a last net for anything the
IANA special-purpose registries add later. [GoToSocial httpclient/sanitizer.go; Mastodon
CVE-2026-46348; fedify CVE-2026-50131]
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

__all__ = [
    "AddressRefused",
    "GuardedResolver",
    "IPAddress",
    "check_addresses",
    "check_literal_host",
    "forbidden_reason",
    "guarded_socket_factory",
    "is_forbidden_address",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*rows: tuple[str, str]) -> tuple[tuple[_Net, str], ...]:
    return tuple((ipaddress.ip_network(cidr), why) for cidr, why in rows)


# IANA IPv4 Special-Purpose Address Registry (RFC 6890 and successors) plus multicast/reserved.
_FORBIDDEN_V4 = _nets(
    ("0.0.0.0/8", "this network / unspecified"),  # RFC 791; 0.0.0.0 reaches localhost on Linux
    ("10.0.0.0/8", "private"),  # RFC 1918
    ("100.64.0.0/10", "shared address space"),  # RFC 6598 carrier-grade NAT
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),  # cloud metadata lives at 169.254.169.254
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),  # RFC 6890
    ("192.0.2.0/24", "documentation"),  # TEST-NET-1
    ("192.88.99.0/24", "6to4 relay anycast"),  # RFC 7526, deprecated
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),  # RFC 2544
    ("198.51.100.0/24", "documentation"),  # TEST-NET-2
    ("203.0.113.0/24", "documentation"),  # TEST-NET-3
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # includes 255.255.255.255, limited broadcast
)

# IANA IPv6 Special-Purpose Address Registry, plus multicast and deprecated site-local.
# ::ffff:0:0/96 (IPv4-mapped) is not listed: its embedded IPv4 address decides instead.
_FORBIDDEN_V6 = _nets(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible"),  # RFC 4291 deprecated; ::127.0.0.1 would reach loopback
    ("::ffff:0:0:0/96", "IPv4-translated"),  # RFC 2765 SIIT
    ("64:ff9b::/96", "NAT64"),  # RFC 6052: the NAT64 box would connect to any embedded IPv4
    ("64:ff9b:1::/48", "local-use NAT64"),  # RFC 8215
    ("100::/64", "discard-only"),  # RFC 6666
    ("100:0:0:1::/64", "dummy prefix"),  # RFC 9780
    ("2001::/32", "Teredo"),  # RFC 4380: tunnels to an IPv4 client address
    ("2001::/23", "IETF protocol assignments"),  # benchmarking 2001:2::/48, ORCHID 2001:20::/28
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),  # RFC 3056/7526: tunnels to the embedded IPv4 address
    ("3fff::/20", "documentation"),  # RFC 9637
    ("5f00::/16", "SRv6 SIDs"),  # RFC 9602
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),  # RFC 3879 deprecated, still routed on some LANs
    ("ff00::/8", "multicast"),
)


class AddressRefused(OSError):
    """A connection to a forbidden address was refused before any packet was sent.

    It is an `OSError` so that aiohttp's connector carries it through (as `os_error` of its
    `ClientConnectorError`) instead of losing it in its happy-eyeballs race.
    """


def _as_ip(address: str | IPAddress) -> IPAddress:
    if isinstance(address, str):
        return ipaddress.ip_address(address)
    return address


def _v6_reason(ip: ipaddress.IPv6Address) -> str | None:
    mapped = ip.ipv4_mapped
    if mapped is not None:
        inner = forbidden_reason(mapped)
        return None if inner is None else f"IPv4-mapped {inner}"
    for net, why in _FORBIDDEN_V6:
        if ip in net:
            embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
            return f"{why} (embeds {embedded})" if embedded is not None else why
    return None


def forbidden_reason(address: str | IPAddress) -> str | None:
    """Why `address` may not be connected to, or None when it is a public unicast address.

    Raises ValueError for a string that is not an IP address.
    """
    ip = _as_ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        reason = _v6_reason(ip)
        if reason is not None or ip.ipv4_mapped is not None:
            return reason
    else:
        for net, why in _FORBIDDEN_V4:
            if ip in net:
                return why
    if not ip.is_global:
        return "not globally routable"
    return None


def is_forbidden_address(address: str | IPAddress) -> bool:
    """True when federation must never connect to `address` (see the module docstring)."""
    return forbidden_reason(address) is not None


def check_addresses(host: str, addresses: Iterable[str]) -> None:
    """Raise AddressRefused if any of the addresses `host` resolved to is forbidden."""
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is not None:
            raise AddressRefused(f"{host} resolves to {address} ({reason}): refused")


def check_literal_host(host: str) -> None:
    """Refuse `host` when it is a forbidden IP literal; hostnames are left to the resolver."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    reason = forbidden_reason(ip)
    if reason is not None:
        raise AddressRefused(f"{host} is a {reason} address: refused")


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that refuses a name when any address it resolves to is forbidden.

    `inner` does the actual lookup (aiohttp's ThreadedResolver, i.e. getaddrinfo, by default;
    tests may pass a resolver mapping made-up names to 127.0.0.1). With `allow_private=True`
    (tests on loopback only) nothing is refused.
    """

    def __init__(self, inner: AbstractResolver | None = None, *, allow_private: bool = False):
        self._inner = inner
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve `host` through the inner resolver, then refuse forbidden answers."""
        if self._inner is None:
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            check_addresses(host, [result["host"] for result in results])
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        if self._inner is not None:
            await self._inner.close()


def guarded_socket_factory(
    addr_info: tuple[int, int, int, str, tuple[object, ...]],
) -> socket.socket:
    """aiohttp `socket_factory`: create the socket only if the peer address is allowed.

    This is the last check before `connect()`, whatever produced the address (resolver, DNS
    cache, IP literal).
    """
    family, type_, proto, _, sockaddr = addr_info
    address = str(sockaddr[0])
    reason = forbidden_reason(address)
    if reason is not None:
        raise AddressRefused(f"connection to {address} ({reason}) refused")
    return socket.socket(family=family, type=type_, proto=proto)
