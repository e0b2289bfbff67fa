"""SSRF guard: the address table, the guarded resolver, and the connect-time socket check."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from voisinage.federation.netguard import (
    AddressRefused,
    GuardedResolver,
    check_literal_host,
    forbidden_reason,
    guarded_socket_factory,
    is_forbidden_address,
)

FORBIDDEN = [
    # IPv4
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254",
    "192.168.0.1", "192.168.255.255", "169.254.169.254", "169.254.0.1", "100.64.0.1",
    "100.127.255.254", "0.0.0.0", "0.1.2.3", "255.255.255.255", "240.0.0.1", "224.0.0.1",
    "239.255.255.250", "192.0.0.1", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1",
    "198.19.255.255", "192.88.99.1",
    # IPv6
    "::1", "::", "fe80::1", "febf::1", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "ff0e::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
    "::127.0.0.1", "::8.8.8.8", "::ffff:0:8.8.8.8", "64:ff9b::7f00:1", "64:ff9b::808:808",
    "64:ff9b:1::1", "2002:7f00:1::", "2002:808:808::1", "2001:0::", "2001:0:4136:e378::1",
    "2001:2::1", "2001:20::1", "2001:db8::1", "3fff::1", "100::1", "5f00::1", "fe80::1%1",
]

ALLOWED = [
    "8.8.8.8", "1.1.1.1", "9.9.9.9", "93.184.216.34", "100.63.255.255", "100.128.0.1",
    "172.15.255.255", "172.32.0.1", "192.169.0.1", "11.0.0.1", "223.255.255.254",
    "::ffff:8.8.8.8", "::ffff:1.1.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888",
    "2a00:1450:4007:80f::200e", "2620:fe::fe",
]


def test_table_is_large_enough() -> None:
    assert len(FORBIDDEN) + len(ALLOWED) >= 40


@pytest.mark.parametrize("address", FORBIDDEN)
def test_forbidden_addresses(address: str) -> None:
    assert is_forbidden_address(address)
    assert forbidden_reason(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_allowed(address: str) -> None:
    assert not is_forbidden_address(address)
    assert forbidden_reason(address) is None


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "loopback"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
        ("64:ff9b::7f00:1", "NAT64"),
        ("2002:7f00:1::", "6to4 (embeds 127.0.0.1)"),
        ("2001:0::", "Teredo"),
        ("100.64.0.1", "shared address space"),
        ("fec0::1", "site-local"),
    ],
)
def test_reasons_name_the_range(address: str, words: str) -> None:
    assert words in (forbidden_reason(address) or "")


def test_accepts_ip_objects_and_refuses_garbage() -> None:
    assert is_forbidden_address(ipaddress.ip_address("10.1.2.3"))
    assert not is_forbidden_address(ipaddress.ip_address("8.8.4.4"))
    with pytest.raises(ValueError):
        is_forbidden_address("not-an-address")


def test_literal_host_check() -> None:
    with pytest.raises(AddressRefused):
        check_literal_host("127.0.0.1")
    with pytest.raises(AddressRefused):
        check_literal_host("[::1]")
    check_literal_host("8.8.8.8")
    check_literal_host("example.com")  # names are left to the resolver


async def test_resolver_refuses_a_name_resolving_to_loopback() -> None:
    resolver = GuardedResolver()
    with pytest.raises(AddressRefused, match="localhost resolves to .*loopback"):
        await resolver.resolve("localhost", 80)
    await resolver.close()


async def test_resolver_allows_loopback_when_private_addresses_allowed() -> None:
    resolver = GuardedResolver(allow_private=True)
    results = await resolver.resolve("localhost", 80)
    assert results and all(ipaddress.ip_address(r["host"]).is_loopback for r in results)
    await resolver.close()


class _StaticResolver(AbstractResolver):
    """Answers every name with fixed addresses, like a hostile DNS server would."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_resolver_refuses_when_any_answer_is_forbidden() -> None:
    resolver = GuardedResolver(_StaticResolver("8.8.8.8", "169.254.169.254"))
    with pytest.raises(AddressRefused, match="169.254.169.254"):
        await resolver.resolve("rebind.example", 443)


async def test_resolver_passes_public_answers() -> None:
    resolver = GuardedResolver(_StaticResolver("8.8.8.8", "1.1.1.1"))
    results = await resolver.resolve("public.example", 443)
    assert [r["host"] for r in results] == ["8.8.8.8", "1.1.1.1"]


def test_socket_factory_refuses_forbidden_peer() -> None:
    with pytest.raises(AddressRefused, match="loopback"):
        guarded_socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    with pytest.raises(AddressRefused, match="link-local"):
        guarded_socket_factory((socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1", 80, 0, 0)))


def test_socket_factory_creates_socket_for_public_peer() -> None:
    sock = guarded_socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 443)))
    try:
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM
    finally:
        sock.close()


async def test_socket_factory_stops_a_connection_the_resolver_let_through(
    aiohttp_server: Any,
) -> None:
    """Even with an unguarded resolver, the connect-time check keeps us off loopback."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", handler)
    server = await aiohttp_server(app)
    connector = aiohttp.TCPConnector(
        resolver=ThreadedResolver(), socket_factory=guarded_socket_factory
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get(f"http://localhost:{server.port}/")
    assert isinstance(caught.value.os_error, AddressRefused)
    assert hits == []
