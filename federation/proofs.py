"""FEP-8b32 object integrity proofs with the W3C ``eddsa-jcs-2022`` cryptosuite.

Follows W3C "Data Integrity EdDSA Cryptosuites v1.0", section eddsa-jcs-2022:

1. proof configuration = the proof options without ``proofValue``; when the document has an
   ``@context``, the proof gets a copy of it (and on verification the document's ``@context`` must
   start with the proof's);
2. hash data = SHA-256(JCS(proof configuration)) || SHA-256(JCS(document without ``proof``));
3. ``proofValue`` = ``"z"`` + base58btc(Ed25519 signature over the 64 hash bytes).

JCS (RFC 8785) comes from the ``rfc8785`` package. Only single proofs are handled: a document whose
``proof`` is a list (a proof set) is refused rather than partly checked.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import base58
import rfc8785

from .keys import KeyFormatError, load_ed25519_private, multikey_to_public

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519

__all__ = ["CRYPTOSUITE", "PROOF_TYPE", "ProofError", "add_proof", "verify_proof"]

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
PROOF_PURPOSE = "assertionMethod"  # FEP-8b32: MUST be assertionMethod

# XML Schema dateTime, as Data Integrity requires for ``created``.
_DATETIME = re.compile(
    r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?"
)

PublicKeyFor = Callable[[str], "ed25519.Ed25519PublicKey | str"]


class ProofError(Exception):
    """The integrity proof is missing, malformed, of another kind, or does not verify."""


def _jcs(value: Any) -> bytes:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ProofError(f"document cannot be canonicalised: {exc}") from exc


def _hash_data(proof_config: Mapping[str, Any], document: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(_jcs(proof_config)).digest() + hashlib.sha256(_jcs(document)).digest()


def _created_text(created: dt.datetime | str | None) -> str:
    if isinstance(created, str):
        if not _DATETIME.fullmatch(created):
            raise ProofError("created is not an XML Schema dateTime")
        return created
    when = created or dt.datetime.now(dt.UTC)
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_proof(
    document: Mapping[str, Any],
    verification_method: str,
    private_key: ed25519.Ed25519PrivateKey | str | bytes,
    created: dt.datetime | str | None = None,
) -> dict[str, Any]:
    """Return a copy of ``document`` with an eddsa-jcs-2022 ``proof`` added.

    ``private_key`` is an Ed25519 key object or its PEM; ``created`` defaults to now (UTC, seconds).
    The input must not already carry a proof.
    """
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if "proof" in document:
        raise ProofError("document already has a proof")
    key = private_key if isinstance(private_key, ed25519.Ed25519PrivateKey) else (
        load_ed25519_private(private_key)
    )
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "verificationMethod": verification_method,
        "proofPurpose": PROOF_PURPOSE,
        "created": _created_text(created),
    }
    if "@context" in document:
        proof["@context"] = copy.deepcopy(document["@context"])
    signature = key.sign(_hash_data(proof, document))
    proof["proofValue"] = "z" + base58.b58encode(signature).decode("ascii")
    secured = copy.deepcopy(dict(document))
    secured["proof"] = proof
    return secured


def _checked_proof(document: Mapping[str, Any]) -> dict[str, Any]:
    """Return the proof after checking its shape and fixed fields."""
    proof = document.get("proof")
    if proof is None:
        raise ProofError("document has no proof")
    if isinstance(proof, list):
        raise ProofError("proof sets are not supported")
    if not isinstance(proof, dict):
        raise ProofError("proof is not an object")
    expected = {"type": PROOF_TYPE, "cryptosuite": CRYPTOSUITE, "proofPurpose": PROOF_PURPOSE}
    for name, value in expected.items():
        if proof.get(name) != value:
            raise ProofError(f"proof {name} must be {value}")
    for name in ("verificationMethod", "proofValue"):
        if not isinstance(proof.get(name), str) or not proof[name]:
            raise ProofError(f"proof has no {name}")
    created = proof.get("created")
    if created is not None and (not isinstance(created, str) or not _DATETIME.fullmatch(created)):
        raise ProofError("proof created is not an XML Schema dateTime")
    return proof


def _check_contexts(document: Mapping[str, Any], proof: Mapping[str, Any]) -> None:
    """The document's @context must start with the proof's @context, in order."""
    if "@context" not in proof:
        return

    def as_list(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    wanted, have = as_list(proof["@context"]), as_list(document.get("@context", []))
    if have[: len(wanted)] != wanted:
        raise ProofError("document @context does not start with the proof's @context")


def _decode_proof_value(value: str) -> bytes:
    if not value.startswith("z"):
        raise ProofError("proofValue must be multibase base58btc")
    try:
        signature = base58.b58decode(value[1:])
    except ValueError as exc:
        raise ProofError("proofValue is not valid base58btc") from exc
    if len(signature) != 64:
        raise ProofError("proofValue is not an Ed25519 signature")
    return signature


def _resolve_key(public_key_for: PublicKeyFor, method: str) -> ed25519.Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = public_key_for(method)
    if isinstance(key, str):
        try:
            return multikey_to_public(key)
        except KeyFormatError as exc:
            raise ProofError(f"verification method key: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ProofError("verification method is not an Ed25519 key")
    return key


def verify_proof(document: Mapping[str, Any], public_key_for: PublicKeyFor) -> bool:
    """Verify the document's eddsa-jcs-2022 proof; return True or raise :class:`ProofError`.

    ``public_key_for(verificationMethod)`` returns the Ed25519 key (object or ``publicKeyMultibase``
    string); it may raise to refuse an unknown method. The caller still has to check that the method
    belongs to the object's actor.
    """
    from cryptography.exceptions import InvalidSignature

    proof = _checked_proof(document)
    _check_contexts(document, proof)
    signature = _decode_proof_value(proof["proofValue"])
    key = _resolve_key(public_key_for, proof["verificationMethod"])
    config = {name: value for name, value in proof.items() if name != "proofValue"}
    unsecured = {name: value for name, value in document.items() if name != "proof"}
    try:
        key.verify(signature, _hash_data(config, unsecured))
    except InvalidSignature as exc:
        raise ProofError("proof signature does not verify") from exc
    return True
