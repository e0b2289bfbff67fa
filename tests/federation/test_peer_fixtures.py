"""Real signatures captured from bovine-herd and fediverse-pasture (tests/fixtures/peers/README.md).

The captures store JSON bodies parsed; the bytes on the wire were Python's ``json.dumps`` with its
default separators (checked below against Content-Length and Digest). Their Date headers are old, so
each verification freezes ``now`` at the request's own Date.

bovine-herd's key is in herd_actor_alice.json. fediverse-pasture's actor documents were not
captured; pasture_recovered_public_keys.json holds its keys, derived from the captured signatures
(see the note in that file).
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from voisinage.federation.signatures import SignatureError, key_id_of, verify_request

PEERS = Path(__file__).parents[1] / "fixtures" / "peers"
HERD_ACTOR = json.loads((PEERS / "herd_actor_alice.json").read_text())
PASTURE_KEYS: dict[str, str] = json.loads(
    (PEERS / "pasture_recovered_public_keys.json").read_text())["publicKeyPem"]
KEYS = dict(PASTURE_KEYS, **{HERD_ACTOR["publicKey"]["id"]: HERD_ACTOR["publicKey"]["publicKeyPem"]})


def _load(name: str) -> list[dict[str, Any]]:
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in (PEERS / name).read_text().splitlines() if line.strip()]
    return list(json.loads((PEERS / name).read_text()))


def _wire_body(request: dict[str, Any]) -> bytes:
    body = request["body"]
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def _path(request: dict[str, Any]) -> str:
    return str(request.get("path") or request["url"])


def _is_signed(request: dict[str, Any]) -> bool:
    return any(name.lower() == "signature" for name in request["headers"])


def _signed(*names: str) -> list[dict[str, Any]]:
    return [r for name in names for r in _load(name) if _is_signed(r)]


def _verify(request: dict[str, Any], body: bytes | None = None, path: str | None = None) -> Any:
    key_id, scheme = key_id_of(request["headers"])
    assert scheme == "cavage"
    now = email.utils.parsedate_to_datetime(request["headers"]["Date"])
    return verify_request(request["method"], path or _path(request), request["headers"],
                          _wire_body(request) if body is None else body, KEYS[key_id], now=now)


SIGNED = _signed("herd_follow_create.pretty.json", "pasture_send_create_note.pretty.json",
                 "verify_actor_requests.jsonl")
VERIFIABLE = [r for r in SIGNED if key_id_of(r["headers"])[0] in KEYS]


def _id(request: dict[str, Any]) -> str:
    return f"{request['method']} {_path(request)} by {key_id_of(request['headers'])[0]}"


def test_every_herd_and_pasture_send_request_is_verifiable() -> None:
    herd_and_pasture = _signed("herd_follow_create.pretty.json", "pasture_send_create_note.pretty.json")
    assert len(herd_and_pasture) == 5
    assert all(r in VERIFIABLE for r in herd_and_pasture)
    assert len(VERIFIABLE) == 13  # plus 8 of the verify_actor battery


@pytest.mark.parametrize("request_", [r for r in SIGNED if r["method"] == "POST"], ids=_id)
def test_wire_body_matches_content_length_and_digest(request_: dict[str, Any]) -> None:
    body = _wire_body(request_)
    assert len(body) == int(request_["headers"]["Content-Length"])
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert request_["headers"]["Digest"] == f"sha-256={digest}"  # bovine's lower-case name


@pytest.mark.parametrize("request_", VERIFIABLE, ids=_id)
def test_captured_signature_verifies(request_: dict[str, Any]) -> None:
    verified = _verify(request_)
    assert verified.key_id == key_id_of(request_["headers"])[0]
    if request_["method"] == "POST":
        assert verified.signed_headers == ("(request-target)", "host", "date", "digest", "content-type")
    else:
        assert verified.signed_headers == ("(request-target)", "host", "date", "accept")


@pytest.mark.parametrize("request_", [r for r in VERIFIABLE if r["method"] == "POST"], ids=_id)
def test_one_tampered_body_byte_fails(request_: dict[str, Any]) -> None:
    body = bytearray(_wire_body(request_))
    for index in (0, len(body) // 2, len(body) - 1):
        tampered = bytearray(body)
        tampered[index] ^= 0x01
        with pytest.raises(SignatureError, match="Digest does not match"):
            _verify(request_, bytes(tampered))


@pytest.mark.parametrize("request_", VERIFIABLE, ids=_id)
def test_changed_path_or_accept_fails(request_: dict[str, Any]) -> None:
    with pytest.raises(SignatureError, match="signature does not match"):
        _verify(request_, path=_path(request_) + "x")
    if request_["method"] == "GET":
        headers = dict(request_["headers"], Accept="text/html")
        with pytest.raises(SignatureError, match="signature does not match"):
            _verify(dict(request_, headers=headers))


def test_captured_signatures_go_stale_after_five_minutes_and_the_skew() -> None:
    request = VERIFIABLE[0]
    key_id, _ = key_id_of(request["headers"])
    sent = email.utils.parsedate_to_datetime(request["headers"]["Date"])
    args = (request["method"], _path(request), request["headers"], _wire_body(request), KEYS[key_id])
    assert verify_request(*args, now=sent + dt.timedelta(minutes=64)).key_id == key_id
    with pytest.raises(SignatureError, match="too old"):
        verify_request(*args, now=sent + dt.timedelta(minutes=66))


def test_herd_key_id_is_the_actor_public_key() -> None:
    herd = _signed("herd_follow_create.pretty.json")
    assert {key_id_of(r["headers"])[0] for r in herd} == {HERD_ACTOR["publicKey"]["id"]}
    assert HERD_ACTOR["publicKey"]["owner"] == HERD_ACTOR["id"]


UNSIGNED = [r for r in _load("verify_actor_requests.jsonl") if not _is_signed(r)]


@pytest.mark.parametrize("request_", UNSIGNED, ids=lambda r: f"{r['method']} {r['url']}")
def test_verify_actor_unsigned_requests_are_refused(request_: dict[str, Any]) -> None:
    with pytest.raises(SignatureError, match="not signed"):
        key_id_of(request_["headers"])
    with pytest.raises(SignatureError, match="not signed"):
        verify_request(request_["method"], request_["url"], request_["headers"],
                       request_["body"].encode(), HERD_ACTOR["publicKey"]["publicKeyPem"])


def test_verify_actor_battery_has_unsigned_posts() -> None:
    posts = [r for r in UNSIGNED if r["method"] == "POST"]
    assert len(posts) == 2 and all(json.loads(r["body"])["type"] == "EchoRequest" for r in posts)
