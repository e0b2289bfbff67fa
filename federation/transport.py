"""The one HTTP client every outgoing federation request goes through.

`HttpTransport` owns a single aiohttp `ClientSession` whose connector refuses private, loopback
and other forbidden addresses after DNS resolution (`federation/netguard.py`). On top of it:

* `get_json` fetches an ActivityPub document (or, when asked, a webfinger/nodeinfo JSON): checks
  the Content-Type, streams the body under a size cap, follows at most 3 same-origin redirects
  by hand (re-signing each hop), and checks that the document's `id` is the URL it came from.
* `post` delivers an activity and turns every HTTP or network outcome into a `DeliveryResult`.

Callers own keys: they pass a `sign(method, url, headers, body) -> headers` callback, which gets
the headers about to be sent (with `Host` and `Date` filled in) and returns the headers to send.

`Transport` is the protocol the rest of `federation/` depends on, so tests can route requests
in-process instead. [GoToSocial transport.Controller; Mastodon Request and JsonLdHelper]
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from types import TracebackType
from typing import Any, Protocol, Self

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from . import jsonguard
from .netguard import (
    AddressRefused,
    GuardedResolver,
    check_literal_host,
    guarded_socket_factory,
)
from .retry import parse_retry_after

__all__ = [
    "ACTIVITY_ACCEPT",
    "AS_PROFILE",
    "JSON_ACCEPT",
    "BadContentType",
    "BadJson",
    "BadUrl",
    "DeliveryResult",
    "FetchError",
    "ForbiddenAddress",
    "HttpStatus",
    "HttpTransport",
    "IdMismatch",
    "LocalUrl",
    "NetworkError",
    "RedirectRefused",
    "Signer",
    "Timeout",
    "Timeouts",
    "TooLarge",
    "Transport",
]

AS_PROFILE = "https://www.w3.org/ns/activitystreams"
ACTIVITY_ACCEPT = f'application/activity+json, application/ld+json; profile="{AS_PROFILE}"'
JSON_ACCEPT = "application/jrd+json, application/json"
DEFAULT_USER_AGENT = "Voisinage/0.1"
MAX_DOCUMENT_BYTES = 1024 * 1024  # [Mastodon: 1 MB]
MAX_ANSWER_BYTES = 64 * 1024
MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

Signer = Callable[[str, str, Mapping[str, str], bytes | None], Mapping[str, str]]
"""sign(method, url, headers, body) -> the headers to send (the caller adds Signature/Digest)."""


class FetchError(Exception):
    """An outgoing request failed or its answer was refused; the message is short and loggable."""


class BadUrl(FetchError):
    """The URL is not an absolute http(s) URL we may request."""


class LocalUrl(FetchError):
    """The URL is on one of our own hosts: the caller must look it up locally, never fetch it."""


class ForbiddenAddress(FetchError):
    """The host is, or resolves to, a private/loopback/special address (SSRF guard)."""


class BadContentType(FetchError):
    """The answer's Content-Type is not one we accept for this kind of document."""


class TooLarge(FetchError):
    """The answer's body is over the size cap; reading was aborted."""


class RedirectRefused(FetchError):
    """A redirect went to another origin, looped, or came after the last allowed hop."""


class IdMismatch(FetchError):
    """The document's `id` is not the URL it was fetched from (spoofing)."""


class Timeout(FetchError):
    """The peer did not connect or answer within the configured time."""


class NetworkError(FetchError):
    """Connection refused or reset, DNS failure, TLS failure, malformed HTTP."""


class BadJson(FetchError):
    """The body is not a JSON object."""


class HttpStatus(FetchError):
    """The peer answered with a non-2xx status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed to connect, and for a whole fetch (all redirect hops and the body)."""

    connect: float = 5.0
    total: float = 10.0


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Outcome of a POST: `status` 0 means no HTTP answer (network error, timeout, refusal).

    `retry_after_seconds` is set from a Retry-After header on 429 and 503 answers only.
    """

    status: int
    retry_after_seconds: float | None = None
    error: str | None = None


class Transport(Protocol):
    """What federation code needs from the network; HttpTransport is the real one."""

    async def get_json(
        self,
        url: str,
        *,
        sign: Signer | None = None,
        accept: str = ACTIVITY_ACCEPT,
        allow_json: bool = False,
        check_id: bool = True,
    ) -> tuple[str, dict[str, Any]]:
        """Fetch a JSON document; return (final URL, document)."""
        ...

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], sign: Signer | None = None
    ) -> DeliveryResult:
        """POST `body`; never raises for HTTP or network failures."""
        ...


# -- URL and header helpers -------------------------------------------------------------------


def _authority(url: URL) -> str:
    """host[:port] as it appears in a Host header (port omitted when it is the default)."""
    return url.host_port_subcomponent or ""


def _without_fragment(url: str) -> str:
    return url.split("#", 1)[0]


def _http_date() -> str:
    return format_datetime(datetime.now(UTC), usegmt=True)


def _is_activity_type(mimetype: str, profile: str | None) -> bool:
    if mimetype == "application/activity+json":
        return True
    # Mastodon CVE-2024-23832: plain application/ld+json could be any uploaded JSON-LD file.
    return mimetype == "application/ld+json" and AS_PROFILE in (profile or "").split()


def _check_content_type(header: str | None, allow_json: bool) -> None:
    message = email.message.Message()
    message["content-type"] = header or ""
    mimetype = message.get_content_type() if header else ""
    param = message.get_param("profile")
    profile = param if isinstance(param, str) else None
    if _is_activity_type(mimetype, profile):
        return
    if allow_json and mimetype in ("application/jrd+json", "application/json"):
        return
    raise BadContentType(f"Content-Type {header or '(none)'!r} refused")


def _parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, with the inbox's bounds (depth, elements, no NUL character)."""
    try:
        return jsonguard.parse_object(body, max_bytes=len(body))
    except jsonguard.JsonRefused as exc:
        raise BadJson(f"body refused: {exc}") from None


def _check_id(document: dict[str, Any], urls: Iterable[str]) -> None:
    """The `id` must be one of the URLs of this fetch (all of them share one origin).

    [Mastodon json_ld_helper fetch_resource; Akkoma containment spoof_stage1]
    """
    doc_id = document.get("id")
    if not isinstance(doc_id, str):
        raise IdMismatch("document has no id")
    if doc_id not in urls:
        raise IdMismatch(f"document id {doc_id[:200]!r} is not the URL fetched")


def _excerpt(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _map_error(exc: BaseException) -> FetchError:
    """Translate an aiohttp/asyncio/OS exception into our FetchError family."""
    seen: BaseException | None = exc
    for _ in range(8):  # aiohttp wraps the guard's OSError in os_error and/or __cause__
        if seen is None:
            break
        if isinstance(seen, AddressRefused):
            return ForbiddenAddress(str(seen))
        inner = getattr(seen, "os_error", None)
        seen = inner if isinstance(inner, BaseException) else seen.__cause__
    if isinstance(exc, TimeoutError):
        return Timeout("timed out")
    if isinstance(exc, aiohttp.InvalidURL):  # e.g. aiohttp refuses "127.1" and "2130706433"
        return BadUrl(f"malformed URL: {exc}"[:300])
    return NetworkError(f"{type(exc).__name__}: {exc}"[:300])


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """Read the body, aborting (and closing the connection) as soon as it exceeds `cap`."""
    declared = response.content_length
    if declared is not None and declared > cap:
        response.close()
        raise TooLarge(f"body of {declared} bytes is over the {cap}-byte cap")
    buffer = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        buffer += chunk
        if len(buffer) > cap:
            response.close()
            raise TooLarge(f"body is over the {cap}-byte cap")
    return bytes(buffer)


async def _read_head(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """Read at most `cap` bytes of the body; close the connection if more remains."""
    buffer = bytearray()
    while len(buffer) < cap:
        chunk = await response.content.read(cap - len(buffer))
        if not chunk:
            return bytes(buffer)
        buffer += chunk
    if not response.content.at_eof():
        response.close()
    return bytes(buffer)


# -- the transport ------------------------------------------------------------------------------


class HttpTransport:
    """Outgoing HTTP for federation over one aiohttp session, guarded against SSRF.

    `local_hosts` lists our own authorities: an entry "host" matches that host on any port,
    "host:port" matches exactly. `allow_private_addresses=True` is for tests on loopback only.
    `resolver` replaces the DNS lookup (it is still wrapped by the guard).
    """

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        allow_private_addresses: bool = False,
        local_hosts: Iterable[str] = (),
        timeouts: Timeouts = Timeouts(),
        max_document_bytes: int = MAX_DOCUMENT_BYTES,
        max_redirects: int = MAX_REDIRECTS,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.user_agent = user_agent
        self.allow_private_addresses = allow_private_addresses
        self.local_hosts = frozenset(host.lower().rstrip(".") for host in local_hosts)
        self.timeouts = timeouts
        self.max_document_bytes = max_document_bytes
        self.max_redirects = max_redirects
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the session; call once inside the running event loop."""
        if self._session is not None:
            return
        guard = not self.allow_private_addresses
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self._resolver, allow_private=not guard),
            socket_factory=guarded_socket_factory if guard else None,
            limit=100,
            limit_per_host=8,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=self.timeouts.total, sock_connect=self.timeouts.connect
            ),
            cookie_jar=aiohttp.DummyCookieJar(),  # no state carried between peers
            trust_env=False,  # an HTTP(S)_PROXY would resolve names past our guard
        )

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- checks before any I/O --

    def is_local(self, url: str | URL) -> bool:
        """True when `url` is on one of our own hosts (see the class docstring)."""
        parsed = URL(url) if isinstance(url, str) else url
        host = (parsed.host or "").lower().rstrip(".")
        return host in self.local_hosts or _authority(parsed).lower() in self.local_hosts

    def _target(self, url: str) -> URL:
        """Parse and vet a URL: BadUrl, LocalUrl, or ForbiddenAddress for a forbidden IP literal."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            raise BadUrl(f"malformed URL: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise BadUrl(f"not an absolute http(s) URL: {url[:200]!r}")
        if parsed.user is not None or parsed.password is not None:
            raise BadUrl("URL with credentials refused")
        if self.is_local(parsed):
            raise LocalUrl(f"{_authority(parsed)} is this server")
        if not self.allow_private_addresses:
            try:
                check_literal_host(parsed.host)
            except AddressRefused as exc:
                raise ForbiddenAddress(str(exc)) from None
        return parsed.with_fragment(None)

    def _next_hop(self, chain: list[URL], response: aiohttp.ClientResponse) -> URL:
        """Where a redirect answer points, if we may follow it; else RedirectRefused."""
        location = response.headers.get("Location")
        if not location:
            raise RedirectRefused(f"HTTP {response.status} without Location")
        try:
            target = chain[-1].join(URL(location)).with_fragment(None)
        except ValueError:
            raise RedirectRefused("malformed Location") from None
        if target.origin() != chain[0].origin():
            raise RedirectRefused(f"redirect to another origin ({target.origin()}) refused")
        if target in chain:
            raise RedirectRefused("redirect loop")
        if len(chain) > self.max_redirects:
            raise RedirectRefused(f"more than {self.max_redirects} redirects")
        return target

    # -- requests --

    def _headers(
        self,
        method: str,
        url: URL,
        base: Mapping[str, str],
        body: bytes | None,
        sign: Signer | None,
    ) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, **base}
        headers["Host"] = _authority(url)
        headers["Date"] = _http_date()
        if sign is not None:
            return dict(sign(method, str(url), headers, body))
        return headers

    @contextlib.asynccontextmanager
    async def _open(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        sign: Signer | None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        if self._session is None:
            raise RuntimeError("HttpTransport.start() was not called")
        if sign is None:
            sent = self._headers(method, url, headers, body, sign)
        else:  # an RSA signature takes a third of a millisecond and releases the GIL: another core signs
            sent = await asyncio.get_running_loop().run_in_executor(None, self._headers, method, url, headers,
                                                                    body, sign)
        try:
            async with self._session.request(
                method, url, headers=sent, data=body, allow_redirects=False
            ) as response:
                yield response
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _map_error(exc) from exc

    async def _fetch(
        self, url: URL, accept: str, allow_json: bool, sign: Signer | None
    ) -> tuple[list[URL], bytes]:
        """GET `url`, following same-origin redirects; return the URLs visited and the body."""
        chain = [url]
        while True:
            async with self._open("GET", chain[-1], {"Accept": accept}, None, sign) as response:
                if response.status in _REDIRECT_STATUSES:
                    chain.append(self._next_hop(chain, response))
                    continue
                if not 200 <= response.status < 300:
                    raise HttpStatus(response.status)
                _check_content_type(response.headers.get("Content-Type"), allow_json)
                return chain, await _read_capped(response, self.max_document_bytes)

    async def get_json(
        self,
        url: str,
        *,
        sign: Signer | None = None,
        accept: str = ACTIVITY_ACCEPT,
        allow_json: bool = False,
        check_id: bool = True,
    ) -> tuple[str, dict[str, Any]]:
        """Fetch a JSON object from `url`; return (final URL, document).

        `allow_json=True` also accepts application/jrd+json and application/json answers (pass
        it with `accept=JSON_ACCEPT` and `check_id=False` for webfinger and nodeinfo). The `id`
        check compares against the URL without its fragment and every redirect hop.
        Raises LocalUrl, or another FetchError subclass.
        """
        target = self._target(url)
        try:
            async with asyncio.timeout(self.timeouts.total):
                chain, body = await self._fetch(target, accept, allow_json, sign)
        except TimeoutError:
            raise Timeout(f"no complete answer within {self.timeouts.total} s") from None
        document = _parse_object(body)
        if check_id:
            _check_id(document, {_without_fragment(url), *map(str, chain)})
        return str(chain[-1]), document

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], sign: Signer | None = None
    ) -> DeliveryResult:
        """POST `body` to `url` (no redirects followed) and report what happened.

        Never raises for HTTP or network failures, a timeout or a forbidden address: those come
        back with status 0 and `error` set. Raises only BadUrl and LocalUrl, decided from the URL
        before any I/O: retrying those would never help.
        """
        try:
            target = self._target(url)
        except ForbiddenAddress as exc:
            return DeliveryResult(0, None, str(exc))
        try:
            async with asyncio.timeout(self.timeouts.total):
                async with self._open("POST", target, headers, body, sign) as response:
                    answer = await _read_head(response, MAX_ANSWER_BYTES)
                    return _delivery_result(response, answer)
        except TimeoutError:
            return DeliveryResult(0, None, f"timed out after {self.timeouts.total} s")
        except BadUrl:
            raise
        except FetchError as exc:
            return DeliveryResult(0, None, str(exc))


def _delivery_result(response: aiohttp.ClientResponse, answer: bytes) -> DeliveryResult:
    status = response.status
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(
            response.headers.get("Retry-After"), datetime.now(UTC)
        )
    error = None
    if not 200 <= status < 300:
        excerpt = _excerpt(answer)
        error = f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"
    return DeliveryResult(status, retry_after, error)
