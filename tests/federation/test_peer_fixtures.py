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


# -- hand-written payloads of other servers (README "Written by hand") ---------------------------

from voisinage.federation.actors import parse_actor  # noqa: E402
from voisinage.federation.dispatch import find_handler  # noqa: E402
from voisinage.federation.from_ap import parse_note  # noqa: E402
from voisinage.federation.vocab import NOTE_TYPES, first, types_of  # noqa: E402

NOTE_FILES = sorted((PEERS / "notes").glob("*.json"))
ACTOR_FILES = sorted((PEERS / "actors").glob("*.json"))


def _note_of(document: dict[str, Any]) -> dict[str, Any]:
    """The note inside an activity (Lemmy: Announce{Create{Page}}), or the document itself."""
    while not types_of(document) & NOTE_TYPES:
        document = first(document["object"])
    return document


@pytest.mark.parametrize("path", NOTE_FILES, ids=lambda p: p.name)
def test_every_written_note_parses_and_has_a_handler(path: Path) -> None:
    document = json.loads(path.read_text())
    note = parse_note(_note_of(document))
    assert note.uri.startswith("https://b.test/") and note.author_uri.startswith("https://b.test/")
    if not types_of(document) & NOTE_TYPES:  # an activity (one fixture is a bare note)
        assert find_handler(document) is not None
    assert all(m.url.startswith("https://") for m in note.attachments) and len(note.attachments) <= 4


def test_written_notes_cover_media_and_polls() -> None:
    notes = {p.name: parse_note(_note_of(json.loads(p.read_text()))) for p in NOTE_FILES}
    with_media = {name for name, note in notes.items() if note.attachments}
    with_polls = {name for name, note in notes.items() if note.poll is not None}
    assert with_media == {"mastodon_create_note_media.json", "gotosocial_create_note_media.json",
                          "takahe_create_note_media.json", "lemmy_create_page_image.json"}
    assert with_polls == {"mastodon_create_question.json", "mastodon_update_question.json",
                          "gotosocial_create_question.json"}


def _actor(name: str) -> Any:
    doc = json.loads((PEERS / "actors" / name).read_text())
    return parse_actor(doc, doc["id"])


@pytest.mark.parametrize("path", ACTOR_FILES, ids=lambda p: p.name)
def test_every_written_actor_parses(path: Path) -> None:
    fields = _actor(path.name)
    assert fields.inbox_uri.startswith("https://b.test/") and fields.fields
    assert all("<script" not in f["value"] and set(f) == {"name", "value", "verified_at"} for f in fields.fields)


def test_mastodon_profile_fields_and_emoji_shortcode() -> None:
    actor = _actor("mastodon_person_fields.json")
    assert actor.display_name == "Cédric Lambot :potager:"  # custom emoji shortcodes stay text
    assert [f["name"] for f in actor.fields] == ["Site", "Village", "Ruches", "Pronoms"]
    site = actor.fields[0]["value"]
    assert 'href="https://miel.example"' in site and 'class="invisible"' in site and "target" not in site
    assert actor.fields[1]["value"] == "Vaux-sous-Chèvremont" and actor.fields[1]["verified_at"] is None
    assert "#<span>miel</span>" in actor.note


def test_gotosocial_six_fields_are_all_kept_and_name_is_one_line() -> None:
    actor = _actor("gotosocial_person_fields.json")  # remote profiles keep up to 20 fields
    assert [f["name"] for f in actor.fields] == ["Quartier", "Site", "Matrix", "Langues", "Chien", "Vélo"]
    assert actor.display_name == "Hazel :blobfox: Noisetier"
    assert "<script" not in actor.note and "Noisetière" in actor.note


def test_takahe_fields_with_schema_iris() -> None:
    actor = _actor("takahe_person_fields.json")
    assert [(f["name"], f["value"]) for f in actor.fields] == [("Atelier", "rue Haute 3"),
                                                               ("Horaires", "mar-sam 9h-17h")]


def test_hostile_profile_is_cut_and_cleaned() -> None:
    doc = json.loads((PEERS / "actors" / "mastodon_person_fields.json").read_text())
    doc.update(name="\x00Cé\u0007dric " + "x" * 10_000, summary='<img src=x onerror="alert(1)">' + "s" * 50_000,
               attachment=[{"type": "PropertyValue", "name": "n" * 5000,
                            "value": '<a href="javascript:alert(1)">x</a>\x00' + "v" * 5000},
                           {"type": "PropertyValue", "name": "", "value": "no name"},
                           {"type": "PropertyValue", "name": "no value", "value": {"@value": "x"}},
                           "not an object"] + [{"type": "PropertyValue", "name": f"f{i}", "value": "v"}
                                               for i in range(100)])
    actor = parse_actor(doc, doc["id"])
    assert actor.display_name.startswith("Cédric x") and len(actor.display_name) == 200
    assert "\x00" not in actor.display_name and "\x07" not in actor.display_name
    assert "<img" not in actor.note and "onerror" not in actor.note and len(actor.note) <= 20_000
    assert len(actor.fields) == 20 and [f["name"] for f in actor.fields[1:]] == [f"f{i}" for i in range(19)]
    first_field = actor.fields[0]
    assert len(first_field["name"]) == 2047 and "javascript" not in first_field["value"]
    assert "\x00" not in first_field["value"] and len(first_field["value"]) < 2100
