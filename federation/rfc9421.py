"""RFC 9421 signing and verification through http-message-signatures.

federation/signatures.py checks what we require of a signature (covered components, Content-Digest,
algorithm, Host) and imports this module when the first RFC 9421 request arrives: almost every peer
signs with draft-cavage, so most processes never load the library.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)

from .signatures import SignatureError, _check_window, _timestamp

_ALGORITHMS = {
    "rsa-v1_5-sha256": algorithms.RSA_V1_5_SHA256,
    "rsa-pss-sha512": algorithms.RSA_PSS_SHA512,
    "ed25519": algorithms.ED25519,
}


@dataclass
class _Message:
    """The request shape http-message-signatures reads: method, absolute url, headers."""

    method: str
    url: str
    headers: dict[str, str]


class _OneKey(HTTPSignatureKeyResolver):
    """Resolves every keyid to the one key the caller already looked up."""

    def __init__(self, public: Any = None, private: Any = None) -> None:
        self.public, self.private = public, private

    def resolve_public_key(self, key_id: str) -> Any:
        return self.public

    def resolve_private_key(self, key_id: str) -> Any:
        return self.private


class _ClockedVerifier(HTTPMessageVerifier):
    """The library's verifier with our clock and our window instead of ``datetime.now()``."""

    def __init__(self, *, now: dt.datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.now = now

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        created, expires = sig_input.params.get("created"), sig_input.params.get("expires")
        if type(created) is not int:
            raise SignatureError("RFC 9421 signature needs an integer created parameter")
        _check_window(_timestamp(created), self.now, "created")
        if expires is not None and (type(expires) is not int or _timestamp(expires) < self.now):
            raise SignatureError("signature has expired")


def verify(algorithm: str, key: Any, method: str, url: str, headers: dict[str, str], body: bytes,
           now: dt.datetime) -> None:
    """Verify the request's one signature with `key`, or raise SignatureError."""
    verifier = _ClockedVerifier(now=now, signature_algorithm=_ALGORITHMS[algorithm], key_resolver=_OneKey(key))
    try:
        verifier.verify(_Message(method, url, headers), max_age=None, body=body)
    except HTTPMessageSignaturesException as exc:
        reason = str(exc) or "signature does not match"
        raise SignatureError(f"RFC 9421 signature refused: {reason}") from exc


def sign(algorithm: str, key: Any, method: str, url: str, headers: dict[str, str], *, key_id: str,
         created: dt.datetime, expires: dt.datetime | None, label: str, include_alg: bool,
         covered: list[str], body: bytes | None) -> dict[str, str]:
    """The headers with Signature-Input and Signature (and Content-Digest when `body` is given)."""
    message = _Message(method, url, headers)
    signer = HTTPMessageSigner(signature_algorithm=_ALGORITHMS[algorithm], key_resolver=_OneKey(private=key))
    signer.sign(message, key_id=key_id, created=created, expires=expires, label=label, include_alg=include_alg,
                covered_component_ids=covered, body=body)
    return message.headers
