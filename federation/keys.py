"""Key material for federation: RSA keys for HTTP signatures, Ed25519 keys for integrity proofs.

Storage formats:
- RSA (HTTP signatures): PKCS#8 private PEM and SubjectPublicKeyInfo public PEM, the ``publicKeyPem``
  every ActivityPub server publishes.
- Ed25519 (FEP-8b32 proofs): the private key is stored as an unencrypted PKCS#8 PEM, like the RSA one,
  so a single column type and loader serve both. The public key is published as a FEP-521a
  ``Multikey``: ``publicKeyMultibase`` = ``"z"`` + base58btc(0xed 0x01 + 32 raw key bytes).

Every loader raises :class:`KeyFormatError` (a ``ValueError``) with a short reason on bad input.

cryptography is imported by the functions that use it, here and in signatures.py and proofs.py: it
is 7-8 MB of memory and tens of milliseconds of start-up that a server does not need until it first
signs or checks a signature (or makes a key); a commune without partners never does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import base58

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

__all__ = [
    "KeyFormatError",
    "PrivateKey",
    "PublicKey",
    "generate_ed25519",
    "generate_rsa",
    "load_ed25519_private",
    "load_private",
    "load_public",
    "load_rsa_public",
    "multikey_to_public",
    "private_multikey_to_private",
    "public_pem_of",
    "public_to_multikey",
]

#: multicodec varint prefix of an Ed25519 public key (0xed), FEP-521a / did:key.
ED25519_PUB_PREFIX = b"\xed\x01"
#: multicodec varint prefix of an Ed25519 private key seed (0x1300), as in W3C test vectors.
ED25519_PRIV_PREFIX = b"\x80\x26"
#: Smallest RSA modulus we create or accept.
MIN_RSA_BITS = 2048


class KeyFormatError(ValueError):
    """A key could not be parsed, or is of a type or size we do not accept."""


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode("ascii", "replace") if isinstance(data, str) else data


def generate_rsa(bits: int = MIN_RSA_BITS) -> tuple[str, str]:
    """Create an RSA key pair and return ``(private_pem, public_pem)`` as text."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if bits < MIN_RSA_BITS:
        raise KeyFormatError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _private_pem(key), public_pem_of(key)


def _private_pem(key: PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_pem_of(key: PrivateKey | PublicKey | str | bytes) -> str:
    """Return the SubjectPublicKeyInfo PEM of a key object or of a private PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if isinstance(key, (str, bytes)):
        key = load_private(key)
    public = key.public_key() if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_private(pem: str | bytes) -> PrivateKey:
    """Parse an unencrypted private PEM (PKCS#8 or PKCS#1) holding an RSA or Ed25519 key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    try:
        key = serialization.load_pem_private_key(_as_bytes(pem), password=None)
    except TypeError as exc:  # encrypted PEM without a password
        raise KeyFormatError("private key is encrypted") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError("not a valid private key PEM") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        _check_rsa_size(key.key_size)
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise KeyFormatError(f"unsupported private key type {type(key).__name__}")


def load_public(pem: str | bytes) -> PublicKey:
    """Parse a public PEM (SubjectPublicKeyInfo, or PKCS#1 ``RSA PUBLIC KEY``) of an RSA or Ed25519 key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    try:
        key = serialization.load_pem_public_key(_as_bytes(pem))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError("not a valid public key PEM") from exc
    if isinstance(key, rsa.RSAPublicKey):
        _check_rsa_size(key.key_size)
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise KeyFormatError(f"unsupported public key type {type(key).__name__}")


def load_rsa_public(pem: str | bytes) -> rsa.RSAPublicKey:
    """Like :func:`load_public`, but the key must be RSA (draft-cavage signatures)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = load_public(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError("expected an RSA public key")
    return key


def load_ed25519_private(pem: str | bytes) -> ed25519.Ed25519PrivateKey:
    """Like :func:`load_private`, but the key must be Ed25519 (integrity proofs)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = load_private(pem)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyFormatError("expected an Ed25519 private key")
    return key


def _check_rsa_size(bits: int) -> None:
    if bits < MIN_RSA_BITS:
        raise KeyFormatError(f"RSA key of {bits} bits is too small (minimum {MIN_RSA_BITS})")


def generate_ed25519() -> tuple[str, str]:
    """Create an Ed25519 key pair; return ``(private_pem, public_multikey)``."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    return _private_pem(key), public_to_multikey(key.public_key())


def public_to_multikey(key: ed25519.Ed25519PublicKey) -> str:
    """Encode an Ed25519 public key as a FEP-521a ``publicKeyMultibase`` (``z6Mk...``)."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + base58.b58encode(ED25519_PUB_PREFIX + raw).decode("ascii")


def _decode_multibase(value: str, prefix: bytes, what: str) -> bytes:
    """Decode ``z`` + base58btc(prefix + 32 bytes) and return the 32 bytes."""
    if not isinstance(value, str) or not value.startswith("z"):
        raise KeyFormatError(f"{what} must be multibase base58btc (start with 'z')")
    try:
        data = base58.b58decode(value[1:])
    except ValueError as exc:
        raise KeyFormatError(f"{what} is not valid base58btc") from exc
    if len(data) != len(prefix) + 32:
        raise KeyFormatError(f"{what} has {len(data)} bytes, expected {len(prefix) + 32}")
    if not data.startswith(prefix):
        raise KeyFormatError(f"{what} does not carry the Ed25519 multicodec prefix")
    return data[len(prefix):]


def multikey_to_public(value: str) -> ed25519.Ed25519PublicKey:
    """Decode a FEP-521a ``publicKeyMultibase`` into an Ed25519 public key."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    raw = _decode_multibase(value, ED25519_PUB_PREFIX, "publicKeyMultibase")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def private_multikey_to_private(value: str) -> ed25519.Ed25519PrivateKey:
    """Decode a ``secretKeyMultibase`` (``z3u2...``: 0x8026 + 32-byte seed), the W3C test-vector form."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    raw = _decode_multibase(value, ED25519_PRIV_PREFIX, "secretKeyMultibase")
    return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
