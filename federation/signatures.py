"""HTTP signatures: draft-cavage (what the fediverse speaks) and RFC 9421 (what it is moving to).

Pure functions over ``method``, ``path``, a header mapping and the body bytes: no web framework, no
database. Verification is two steps, so the caller can apply its allow-list before fetching a key::

    key_id, scheme = key_id_of(request.headers)        # SignatureError if unsigned or garbled
    ... check the key's host is a partner, look the key up ...
    verified = verify_request(method, path_qs, request.headers, body, public_pem, now=now)

Every refusal raises :class:`SignatureError` with a short reason, meant to become a 401.

draft-cavage rules (SECURITY.md "Inbox"; Mastodon ``signature_verification.rb`` is the model):

- algorithm ``rsa-sha256`` or ``hs2019`` (RSA PKCS#1 v1.5 with SHA-256, as Mastodon treats it); an
  absent algorithm is read as ``hs2019``; anything else (``rsa-sha1``, ``hmac-sha256``...) is refused.
- the signed header list must contain ``(request-target)``, ``host``, ``date`` (or ``(created)``
  with hs2019), and ``digest`` on a POST or on any request with a body.
- ``Digest`` must carry a SHA-256 value equal to the body's.
- ``Date`` / ``(created)`` no more than :data:`CLOCK_SKEW` in the future nor older than
  :data:`MAX_AGE` + :data:`CLOCK_SKEW`; ``expires`` must not have passed.
- Deliberate divergence from Mastodon: a signature whose ``(request-target)`` lacks the query string
  is not accepted for a request that has one (Mastodon retries without the query).

RFC 9421 rules: ``@method`` plus ``@target-uri`` (or ``@path`` with ``@authority``/``host``) covered,
``content-digest`` covered and matching (with a ``sha-256`` member) on a POST or a request with a
body, ``created`` required and inside the same clock window. Algorithms: ``rsa-v1_5-sha256``,
``rsa-pss-sha512``, ``ed25519``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast
from urllib.parse import urlsplit

from .keys import KeyFormatError, load_private, load_public

if TYPE_CHECKING:
    from .keys import PrivateKey, PublicKey

    KeyInput = str | bytes | PublicKey
    PrivateKeyInput = str | bytes | PrivateKey

__all__ = [
    "CLOCK_SKEW",
    "MAX_AGE",
    "Scheme",
    "SignatureError",
    "SignatureParams",
    "VerifiedSignature",
    "build_signing_string",
    "digest_header",
    "http_date",
    "key_id_of",
    "parse_signature_header",
    "sign_cavage",
    "sign_request",
    "sign_request_rfc9421",
    "verify_request",
]

Scheme = Literal["cavage", "rfc9421"]

#: How long a signature stays valid after its Date (Mastodon: 5 minutes)...
MAX_AGE = dt.timedelta(minutes=5)
#: ...plus this much clock difference either way (Mastodon and Fedify: 1 hour).
CLOCK_SKEW = dt.timedelta(hours=1)

_CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_RFC9421_ALGORITHMS = frozenset({"rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class SignatureError(Exception):
    """The request's signature is missing, malformed, too weak, stale or wrong (a 401)."""


@dataclass(frozen=True)
class VerifiedSignature:
    """What a successful verification proves: this key signed these parts of the request."""

    key_id: str
    signed_headers: tuple[str, ...]
    scheme: Scheme
    algorithm: str


class SignatureParams(TypedDict):
    """A parsed draft-cavage ``Signature`` header."""

    keyId: str
    algorithm: str | None
    headers: list[str]
    signature: bytes
    created: int | None
    expires: int | None


# --------------------------------------------------------------------------- shared helpers


def _lower_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names; repeated fields (a multidict, or two casings) are joined with ", "."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        key, text = name.lower(), str(value).strip()
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now if now.tzinfo else now.replace(tzinfo=dt.UTC)


def http_date(now: dt.datetime | None = None) -> str:
    """Format a ``Date`` header value (RFC 7231 IMF-fixdate, e.g. ``Wed, 20 Dec 2023 10:00:00 GMT``)."""
    return email.utils.format_datetime(_utc(now).astimezone(dt.UTC), usegmt=True)


def digest_header(body: bytes) -> str:
    """The draft-cavage ``Digest`` value of a body: ``SHA-256=<base64>``."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def _host_of(url: str) -> tuple[str, str]:
    """Return ``(host[:port], path?query)`` of an absolute URL; the port only if the URL names it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    path = parts.path or "/"
    return host, f"{path}?{parts.query}" if parts.query else path


def _without(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    drop = {n.lower() for n in names}
    return {k: v for k, v in headers.items() if k.lower() not in drop}


def _check_window(when: dt.datetime, now: dt.datetime, what: str) -> None:
    if when - now > CLOCK_SKEW:
        raise SignatureError(f"{what} is too far in the future")
    if now - when > MAX_AGE + CLOCK_SKEW:
        raise SignatureError(f"{what} is too old")


def _timestamp(value: int) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise SignatureError("timestamp out of range") from exc


# --------------------------------------------------------------------------- draft-cavage: parsing

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"\\]*)"|(\d+))\s*(,|$)')
_NUMERIC_PARAMS = frozenset({"created", "expires"})


def _split_params(value: str) -> dict[str, str]:
    """Split ``name="value", name2=123`` pairs; unquoted values only for created/expires."""
    params: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if match is None:
            raise SignatureError("malformed Signature header")
        name, quoted, number, sep = match.groups()
        if number is not None and name not in _NUMERIC_PARAMS:
            raise SignatureError(f"Signature parameter {name} must be quoted")
        if name in params:
            raise SignatureError(f"duplicate Signature parameter {name}")
        params[name] = quoted if quoted is not None else number
        pos = match.end()
        if sep == "," and pos >= len(value.rstrip()):
            raise SignatureError("malformed Signature header")
    return params


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise SignatureError(f"Signature parameter {name} must be an integer")
    return int(raw)


def parse_signature_header(value: str) -> SignatureParams:
    """Parse a draft-cavage ``Signature`` header; unknown parameters are ignored.

    ``headers`` defaults to ``["date"]`` (as Mastodon does) and is lower-cased; ``signature`` is
    returned decoded. Raises :class:`SignatureError` on anything malformed.
    """
    params = _split_params(value.strip())
    if not params.get("keyId"):
        raise SignatureError("Signature has no keyId")
    if not params.get("signature"):
        raise SignatureError("Signature has no signature value")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("signature is not valid base64") from exc
    names = params.get("headers", "date").lower().split()
    if not names:
        raise SignatureError("Signature covers no headers")
    return SignatureParams(
        keyId=params["keyId"],
        algorithm=params.get("algorithm"),
        headers=names,
        signature=signature,
        created=_int_param(params, "created"),
        expires=_int_param(params, "expires"),
    )


# --------------------------------------------------------------------------- draft-cavage: signing


def build_signing_string(
    method: str,
    path_with_query: str,
    headers: Mapping[str, str],
    header_names: Sequence[str],
    *,
    created: int | None = None,
    expires: int | None = None,
) -> str:
    """Build the draft-cavage signing string: one ``name: value`` line per covered header."""
    lower = _lower_headers(headers)
    lines = []
    for name in header_names:
        name = name.lower()
        if name == "(request-target)":
            value = f"{method.lower()} {path_with_query}"
        elif name in ("(created)", "(expires)"):
            number = created if name == "(created)" else expires
            if number is None:
                raise SignatureError(f"{name} is signed but the parameter is missing")
            value = str(number)
        elif name in lower:
            value = lower[name]
        else:
            raise SignatureError(f"signed header {name} is missing")
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def sign_cavage(
    method: str,
    path_with_query: str,
    headers: Mapping[str, str],
    header_names: Sequence[str],
    key_id: str,
    private_key: PrivateKeyInput,
    *,
    algorithm: str = "rsa-sha256",
    created: int | None = None,
    expires: int | None = None,
) -> str:
    """Return a ``Signature`` header value signing ``header_names`` (in that order) with RSA-SHA256."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = load_private(private_key) if isinstance(private_key, (str, bytes)) else private_key
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError("draft-cavage signing needs an RSA private key")
    text = build_signing_string(
        method, path_with_query, headers, header_names, created=created, expires=expires
    )
    raw = key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    fields = [f'keyId="{key_id}"', f'algorithm="{algorithm}"']
    fields += [f"{n}={v}" for n, v in (("created", created), ("expires", expires)) if v is not None]
    fields += [f'headers="{" ".join(n.lower() for n in header_names)}"']
    fields += [f'signature="{base64.b64encode(raw).decode("ascii")}"']
    return ",".join(fields)


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    key_id: str,
    private_pem: PrivateKeyInput,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """Sign an outgoing request as Mastodon does; return a new header dict.

    Adds ``Host`` (with the port when the URL has one), ``Date``, ``Digest`` (when there is a body
    or the method is POST) and ``Signature`` with ``rsa-sha256`` over
    ``(request-target) host date digest``, or ``(request-target) host date`` for a GET. Accept is not
    signed: Mastodon's own verifier does not need it, and leaving it out lets a transport adjust it.
    """
    method = method.upper()
    host, target = _host_of(url)
    out = _without(headers, ("host", "date", "digest", "signature"))
    out["Host"] = host
    out["Date"] = http_date(now)
    names = ["(request-target)", "host", "date"]
    if body or method in _BODY_METHODS:
        out["Digest"] = digest_header(body)
        names.append("digest")
    out["Signature"] = sign_cavage(method, target, out, names, key_id, private_pem)
    return out


# --------------------------------------------------------------------------- draft-cavage: verifying


def _cavage_algorithm(params: SignatureParams) -> str:
    """Normalise the algorithm; only RSA-SHA256 under either name is accepted."""
    algorithm = (params["algorithm"] or "hs2019").lower()
    if algorithm not in _CAVAGE_ALGORITHMS:
        raise SignatureError(f"algorithm {algorithm} is not accepted")
    return algorithm


def _check_cavage_header_set(names: Sequence[str], algorithm: str, needs_digest: bool) -> None:
    covered = set(names)
    if len(covered) != len(names):
        raise SignatureError("a header is signed twice")
    for required in ("(request-target)", "host"):
        if required not in covered:
            raise SignatureError(f"signature must cover {required}")
    if algorithm == "rsa-sha256" and covered & {"(created)", "(expires)"}:
        raise SignatureError("(created)/(expires) are not allowed with rsa-sha256")
    if "date" not in covered and "(created)" not in covered:
        raise SignatureError("signature must cover date or (created)")
    if needs_digest and "digest" not in covered:
        raise SignatureError("signature must cover digest on a request with a body")


def _check_cavage_times(
    headers: Mapping[str, str], params: SignatureParams, now: dt.datetime
) -> None:
    names = params["headers"]
    if "date" in names:
        _check_window(_parse_http_date(headers.get("date", "")), now, "Date")
    if params["created"] is not None:
        _check_window(_timestamp(params["created"]), now, "created")
    if params["expires"] is not None and _timestamp(params["expires"]) < now:
        raise SignatureError("signature has expired")


def _parse_http_date(value: str) -> dt.datetime:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise SignatureError("Date header is not an HTTP date") from exc
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _check_digest(value: str | None, body: bytes) -> None:
    """Check a ``Digest`` header (possibly listing several algorithms) against the body."""
    if value is None:
        raise SignatureError("Digest header is missing")
    for part in value.split(","):
        algorithm, sep, encoded = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed Digest header")
        # bovine sends the algorithm in lower case ("sha-256="); RFC 3230 names are case-insensitive.
        if algorithm.strip().lower() != "sha-256":
            continue
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError("Digest value is not valid base64") from exc
        if not hmac.compare_digest(given, hashlib.sha256(body).digest()):
            raise SignatureError("Digest does not match the body")
        return
    raise SignatureError("Digest has no SHA-256 value")


def _verify_rsa(key: PublicKey, signature: bytes, text: str) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("draft-cavage signatures need an RSA key")
    try:
        key.verify(signature, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise SignatureError("signature does not match") from exc


def _verify_cavage(
    method: str, path: str, headers: dict[str, str], body: bytes, key: PublicKey, now: dt.datetime
) -> VerifiedSignature:
    params = parse_signature_header(headers["signature"])
    algorithm = _cavage_algorithm(params)
    needs_digest = method in _BODY_METHODS or bool(body)
    _check_cavage_header_set(params["headers"], algorithm, needs_digest)
    _check_cavage_times(headers, params, now)
    if needs_digest or "digest" in params["headers"]:
        _check_digest(headers.get("digest"), body)
    text = build_signing_string(
        method, path, headers, params["headers"],
        created=params["created"], expires=params["expires"],
    )
    _verify_rsa(key, params["signature"], text)
    return VerifiedSignature(params["keyId"], tuple(params["headers"]), "cavage", algorithm)


# --------------------------------------------------------------------------- RFC 9421


def _sf_dictionary(value: str | None, what: str) -> dict[str, Any]:
    """Parse a Structured Field Dictionary (RFC 8941) or raise SignatureError."""
    import http_sf  # on first use: only RFC 9421 signatures need it (twenty modules at start-up)

    try:
        parsed = http_sf.parse((value or "").encode("ascii"), tltype="dictionary")
    except Exception as exc:  # http_sf raises its own error types, and UnicodeEncodeError
        raise SignatureError(f"malformed {what} header") from exc
    if not isinstance(parsed, dict):
        raise SignatureError(f"malformed {what} header")
    return cast(dict[str, Any], parsed)


def _signature_input(headers: Mapping[str, str]) -> tuple[str, list[str], dict[str, Any]]:
    """Return ``(label, covered component names, params)`` of the single RFC 9421 signature."""
    parsed = _sf_dictionary(headers.get("signature-input"), "Signature-Input")
    if len(parsed) != 1:
        raise SignatureError("exactly one RFC 9421 signature is supported")
    label, (members, params) = next(iter(parsed.items()))
    if not isinstance(members, list) or not all(isinstance(m[0], str) for m in members):
        raise SignatureError("malformed Signature-Input header")
    if not isinstance(params.get("keyid"), str) or not params["keyid"]:
        raise SignatureError("Signature-Input has no keyid")
    return label, [m[0] for m in members], params


def _rfc9421_algorithm(alg: object, key: PublicKey | PrivateKey) -> str:
    """The algorithm named by ``alg``, or chosen by the key type when ``alg`` is absent."""
    if alg is None:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        is_ed = isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey))
        return "ed25519" if is_ed else "rsa-v1_5-sha256"
    if not isinstance(alg, str) or alg not in _RFC9421_ALGORITHMS:
        raise SignatureError(f"algorithm {alg} is not accepted")
    return alg


def _check_rfc9421_coverage(names: Sequence[str], needs_digest: bool) -> None:
    covered = set(names)
    if "@method" not in covered:
        raise SignatureError("signature must cover @method")
    has_target = "@target-uri" in covered or (
        "@path" in covered and bool(covered & {"@authority", "host"})
    )
    if not has_target:
        raise SignatureError("signature must cover @target-uri, or @path and @authority")
    if needs_digest and "content-digest" not in covered:
        raise SignatureError("signature must cover content-digest on a request with a body")


def _check_content_digest_sha256(value: str | None) -> None:
    if "sha-256" not in _sf_dictionary(value, "Content-Digest"):
        raise SignatureError("Content-Digest has no sha-256 value")


def _verify_rfc9421(
    method: str, path: str, headers: dict[str, str], body: bytes, key: PublicKey,
    now: dt.datetime, scheme: str,
) -> VerifiedSignature:
    _, names, params = _signature_input(headers)
    needs_digest = method in _BODY_METHODS or bool(body)
    _check_rfc9421_coverage(names, needs_digest)
    if needs_digest:
        _check_content_digest_sha256(headers.get("content-digest"))
    algorithm = _rfc9421_algorithm(params.get("alg"), key)
    if "host" not in headers:
        raise SignatureError("Host header is missing")
    from . import rfc9421  # http-message-signatures: imported by the first RFC 9421 request

    rfc9421.verify(algorithm, key, method, f"{scheme}://{headers['host']}{path}", headers, body, now)
    return VerifiedSignature(params["keyid"], tuple(names), "rfc9421", algorithm)


def sign_request_rfc9421(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    key_id: str,
    private_key: PrivateKeyInput,
    *,
    algorithm: str | None = None,
    now: dt.datetime | None = None,
    expires_in: dt.timedelta | None = None,
    covered: Sequence[str] = ("@method", "@target-uri"),
    label: str = "sig1",
    include_alg: bool = True,
    with_digest: bool | None = None,
) -> dict[str, str]:
    """Sign a request with RFC 9421; return a new header dict with Host, Signature-Input, Signature.

    With a body (or on POST) a ``Content-Digest: sha-256=:...:`` is added and covered; ``with_digest``
    forces that on or off (off only reproduces foreign examples: our verifier requires it).
    ``algorithm`` defaults from the key: ``ed25519`` or ``rsa-v1_5-sha256``; ``include_alg=False``
    leaves the ``alg`` parameter out, as RFC 9421 allows.
    """
    key = load_private(private_key) if isinstance(private_key, (str, bytes)) else private_key
    method = method.upper()
    host, _ = _host_of(url)
    out = _without(headers, ("host", "signature", "signature-input", "content-digest"))
    out["Host"] = host
    from . import rfc9421

    created = _utc(now)
    if with_digest is None:
        with_digest = bool(body) or method in _BODY_METHODS
    return rfc9421.sign(
        _rfc9421_algorithm(algorithm, key), key, method, url, out, key_id=key_id, created=created,
        expires=created + expires_in if expires_in is not None else None, label=label,
        include_alg=include_alg, covered=list(covered), body=body if with_digest else None)


# --------------------------------------------------------------------------- entry points


def key_id_of(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[str, Scheme]:
    """Return the keyId that signed the request and which scheme it used, before any key lookup.

    RFC 9421 is recognised by a ``Signature-Input`` header; otherwise ``Signature`` is draft-cavage.
    Raises :class:`SignatureError` when the request is not signed or the header is malformed.
    """
    lower = _lower_headers(headers)
    if "signature-input" in lower:
        if "signature" not in lower:
            raise SignatureError("Signature-Input without Signature")
        _, _, params = _signature_input(lower)
        return str(params["keyid"]), "rfc9421"
    if "signature" not in lower:
        raise SignatureError("request is not signed")
    return parse_signature_header(lower["signature"])["keyId"], "cavage"


def _load_key(public_key: KeyInput) -> PublicKey:
    if not isinstance(public_key, (str, bytes)):
        return public_key
    try:
        return load_public(public_key)
    except KeyFormatError as exc:
        raise SignatureError(f"unusable public key: {exc}") from exc


def verify_request(
    method: str,
    path_with_query: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    public_key: KeyInput,
    *,
    now: dt.datetime | None = None,
    scheme: str = "https",
    expected_host: str | None = None,
) -> VerifiedSignature:
    """Verify a signed request with the key of the keyId that :func:`key_id_of` returned.

    ``path_with_query`` must be the target exactly as received (aiohttp: ``request.raw_path``, not the
    decoded ``request.path_qs``). ``public_key`` is a PEM or a key object; load keys once and pass
    objects on hot paths, since PEM loading validates the key and is slow.
    ``headers`` may be any mapping (or multidict) and is read case-insensitively. ``scheme`` is only
    used to rebuild ``@target-uri`` for RFC 9421. With ``expected_host``, the signed Host must be it
    (compared lower-cased, port included). Raises :class:`SignatureError`.
    """
    lower = _lower_headers(headers)
    _, kind = key_id_of(lower)
    key = _load_key(public_key)
    when = _utc(now)
    method = method.upper()
    if expected_host is not None and lower.get("host", "").lower() != expected_host.lower():
        raise SignatureError("Host is not this server")
    if kind == "rfc9421":
        return _verify_rfc9421(method, path_with_query, lower, body, key, when, scheme)
    return _verify_cavage(method, path_with_query, lower, body, key, when)
