"""FEP-8b32 integrity proofs (eddsa-jcs-2022): published vectors, refusals, sign->verify loops."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ed25519

from voisinage.federation import keys
from voisinage.federation.proofs import ProofError, add_proof, verify_proof

VECTORS = Path(__file__).parent / "vectors"
W3C = json.loads((VECTORS / "w3c_eddsa_jcs_2022.json").read_text())
FEP = json.loads((VECTORS / "fep_8b32.json").read_text())
KEY = keys.private_multikey_to_private(W3C["secretKeyMultibase"])
MULTIKEY: str = W3C["publicKeyMultibase"]
VM = "https://a.test/users/alder#ed25519-key"


def _unsigned(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "proof"}


def _key_for(method: str) -> str:
    return MULTIKEY


def _note() -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/data-integrity/v2"],
        "id": "https://a.test/posts/1", "type": "Note", "attributedTo": "https://a.test/users/alder",
        "content": "<p>Marché samedi</p>", "to": ["https://a.test/villages/embourg/followers"],
    }


# --------------------------------------------------------------------------- published vectors


def test_w3c_vector_hash_data_is_reproduced() -> None:
    proof = {k: v for k, v in W3C["signed"]["proof"].items() if k != "proofValue"}
    combined = (hashlib.sha256(rfc8785.dumps(proof)).digest()
                + hashlib.sha256(rfc8785.dumps(_unsigned(W3C["signed"]))).digest())
    assert combined.hex() == W3C["combinedHashHex"]


@pytest.mark.parametrize("vector", [W3C, FEP], ids=["w3c-vc-di-eddsa", "fep-8b32"])
def test_add_proof_reproduces_published_document(vector: dict[str, Any]) -> None:
    proof = vector["signed"]["proof"]
    signed = add_proof(_unsigned(vector["signed"]), proof["verificationMethod"], KEY, proof["created"])
    assert signed == vector["signed"]
    assert signed["proof"]["proofValue"] == proof["proofValue"]


@pytest.mark.parametrize("vector", [W3C, FEP], ids=["w3c-vc-di-eddsa", "fep-8b32"])
def test_published_document_verifies(vector: dict[str, Any]) -> None:
    assert verify_proof(vector["signed"], _key_for) is True


def test_fep_vector_verifies_with_the_actor_assertion_method() -> None:
    methods = {m["id"]: m["publicKeyMultibase"] for m in FEP["actor"]["assertionMethod"]}
    asked: list[str] = []

    def lookup(method: str) -> str:
        asked.append(method)
        return str(methods[method])

    assert verify_proof(FEP["signed"], lookup) is True
    assert asked == [FEP["verificationMethod"]]


def test_add_proof_with_datetime_and_pem_key() -> None:
    pem = KEY.private_bytes_raw()
    key = ed25519.Ed25519PrivateKey.from_private_bytes(pem)
    vector_doc = _unsigned(FEP["signed"])
    when = dt.datetime(2023, 2, 24, 23, 36, 38, 999, tzinfo=dt.UTC)
    assert add_proof(vector_doc, FEP["verificationMethod"], key, when) == FEP["signed"]
    ed_pem, multikey = keys.generate_ed25519()
    signed = add_proof(_note(), VM, ed_pem)
    assert verify_proof(signed, lambda m: keys.multikey_to_public(multikey))
    assert signed["proof"]["created"].endswith("Z")


# --------------------------------------------------------------------------- tampering


def _mutations() -> list[tuple[str, Any]]:
    def edit(path: list[str], value: Any) -> Any:
        def apply(doc: dict[str, Any]) -> None:
            target = doc
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
        return apply

    return [
        ("content changed", edit(["object", "content"], "Goodbye world")),
        ("number changed", edit(["object", "location", "latitude"], 25.273963)),
        ("field added", edit(["cc"], "https://evil.test/")),
        ("actor changed", edit(["actor"], "https://evil.test/users/mallory")),
        ("proof created changed", edit(["proof", "created"], "2023-02-24T23:36:39Z")),
        ("verificationMethod changed", edit(["proof", "verificationMethod"], "https://evil.test/k")),
        ("proof @context dropped", lambda doc: doc["proof"].pop("@context")),
        ("signature bit flipped", edit(["proof", "proofValue"], FEP["signed"]["proof"]["proofValue"][:-2] + "Lz")),
    ]


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_tampered_document_fails(name: str, mutate: Any) -> None:
    doc = copy.deepcopy(FEP["signed"])
    mutate(doc)
    with pytest.raises(ProofError):
        verify_proof(doc, _key_for)


def test_proof_context_must_prefix_the_document_context() -> None:
    doc = copy.deepcopy(FEP["signed"])
    doc["@context"] = list(reversed(doc["@context"]))
    with pytest.raises(ProofError, match="does not start with"):
        verify_proof(doc, _key_for)


def test_wrong_key_fails() -> None:
    _, other = keys.generate_ed25519()
    with pytest.raises(ProofError, match="does not verify"):
        verify_proof(FEP["signed"], lambda m: other)


@pytest.mark.parametrize(("change", "reason"), [
    ({"type": "Ed25519Signature2020"}, "type must be DataIntegrityProof"),
    ({"cryptosuite": "eddsa-rdfc-2022"}, "cryptosuite must be eddsa-jcs-2022"),
    ({"proofPurpose": "authentication"}, "proofPurpose must be assertionMethod"),
    ({"verificationMethod": None}, "no verificationMethod"),
    ({"proofValue": ""}, "no proofValue"),
    ({"proofValue": "u" + "A" * 86}, "multibase base58btc"),
    ({"proofValue": "z0OIl"}, "not valid base58btc"),
    ({"proofValue": "z3yZe7d"}, "not an Ed25519 signature"),
    ({"created": "yesterday"}, "not an XML Schema dateTime"),
])
def test_malformed_proofs_are_refused(change: dict[str, Any], reason: str) -> None:
    doc = copy.deepcopy(FEP["signed"])
    doc["proof"].update(change)
    with pytest.raises(ProofError, match=reason):
        verify_proof(doc, _key_for)


@pytest.mark.parametrize(("proof", "reason"), [
    (None, "has no proof"),
    ([FEP["signed"]["proof"]], "proof sets are not supported"),
    ("z42ff", "not an object"),
])
def test_missing_or_odd_proof_values_are_refused(proof: Any, reason: str) -> None:
    doc = _unsigned(FEP["signed"])
    if proof is not None:
        doc["proof"] = proof
    with pytest.raises(ProofError, match=reason):
        verify_proof(doc, _key_for)


def test_key_lookup_results_are_checked() -> None:
    with pytest.raises(ProofError, match="verification method key"):
        verify_proof(FEP["signed"], lambda m: "z6Mk-not-base58")
    rsa_public = keys.load_public(keys.generate_rsa()[1])
    with pytest.raises(ProofError, match="not an Ed25519 key"):
        verify_proof(FEP["signed"], lambda m: rsa_public)  # type: ignore[arg-type, return-value]


def test_add_proof_refuses_signed_documents_and_bad_input() -> None:
    with pytest.raises(ProofError, match="already has a proof"):
        add_proof(FEP["signed"], VM, KEY)
    with pytest.raises(ProofError, match="dateTime"):
        add_proof(_note(), VM, KEY, "24/02/2023")
    with pytest.raises(ProofError, match="canonicalised"):
        add_proof(dict(_note(), score=float("nan")), VM, KEY)
    with pytest.raises(keys.KeyFormatError):
        add_proof(_note(), VM, keys.generate_rsa()[0])


def test_add_proof_copies_and_leaves_the_input_alone() -> None:
    note = _note()
    before = copy.deepcopy(note)
    signed = add_proof(note, VM, KEY, "2026-11-25T10:00:00Z")
    assert note == before
    signed["@context"].append("https://example.test/mutated")
    assert signed["proof"]["@context"] == before["@context"]


def test_document_without_context_gets_a_proof_without_context() -> None:
    doc = {"id": "https://a.test/x", "type": "Note", "content": "hi"}
    signed = add_proof(doc, VM, KEY, "2026-11-25T10:00:00Z")
    assert "@context" not in signed["proof"]
    assert verify_proof(signed, _key_for)


# --------------------------------------------------------------------------- property-like loops


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(6 if depth < 3 else 4)
    if kind == 0:
        return rng.randint(-10**6, 10**6)
    if kind == 1:
        return "".join(rng.choice("aé€z \"\\\n😀<>&") for _ in range(rng.randint(0, 12)))
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return round(rng.uniform(-1000, 1000), rng.randint(0, 6))
    if kind == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {f"k{rng.randint(0, 99)}": _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_random_documents_sign_verify_and_any_change_fails() -> None:
    rng = random.Random(8)
    for i in range(50):
        doc = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"https://a.test/o/{i}",
               "type": "Note", "extra": _random_value(rng)}
        signed = add_proof(doc, VM, KEY, "2026-11-25T10:00:00Z")
        reparsed = json.loads(json.dumps(signed, indent=rng.choice([None, 2]), sort_keys=rng.random() < 0.5))
        assert verify_proof(reparsed, _key_for)
        reparsed["extra"] = [reparsed["extra"], i]
        with pytest.raises(ProofError, match="does not verify"):
            verify_proof(reparsed, _key_for)
