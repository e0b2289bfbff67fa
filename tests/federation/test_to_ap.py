"""Shapes of what we send: actors, Notes with FEP-8b32 proofs, activities; never as:Public."""

from __future__ import annotations

import copy
import datetime as dt
import functools
from typing import Any

import pytest

from voisinage.federation import to_ap
from voisinage.federation.keys import generate_ed25519, generate_rsa
from voisinage.federation.proofs import ProofError, verify_proof
from voisinage.federation.vocab import PUBLIC_ALIASES
from voisinage.models.actor import GROUP, PERSON, Actor
from voisinage.models.media import MediaAttachment
from voisinage.models.poll import Poll
from voisinage.models.post import DIRECT, PRIVATE, PUBLIC, UNLISTED, Post

BASE = "https://a.test"
WHEN = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@functools.cache
def keys() -> tuple[str, str, str, str]:
    rsa_private, rsa_public = generate_rsa()
    ed_private, ed_public = generate_ed25519()
    return rsa_private, rsa_public, ed_private, ed_public


def local_actor(name: str, kind: str = PERSON) -> Actor:
    rsa_private, rsa_public, ed_private, ed_public = keys()
    uri = f"{BASE}/villages/{name}" if kind == GROUP else f"{BASE}/users/{name}"
    return Actor(id=hash(name) & 0xFFFF, username=name, domain="", kind=kind, uri=uri, url=uri,
                 inbox_uri=f"{uri}/inbox", outbox_uri=f"{uri}/outbox", followers_uri=f"{uri}/followers",
                 shared_inbox_uri=f"{BASE}/inbox", display_name=name.title(), note="<p>hi</p>", locked=False,
                 discoverable=True, fields=[], public_key_pem=rsa_public, private_key_pem=rsa_private,
                 key_id=f"{uri}#main-key", ed25519_private_pem=ed_private, ed25519_public_multikey=ed_public,
                 created_at=WHEN)


def remote_actor(name: str) -> Actor:
    uri = f"https://b.test/users/{name}"
    return Actor(id=hash(name) & 0xFFFF, username=name, domain="b.test", kind=PERSON, uri=uri,
                 inbox_uri=f"{uri}/inbox", followers_uri=f"{uri}/followers")


def make_post(visibility: str, author: Actor, audience: Actor | None) -> Post:
    return Post(id=7, uri=f"{author.uri}/statuses/7", author_id=author.id, local=True, visibility=visibility,
                audience_id=audience.id if audience else None, origin_author_id=author.id, content="<p>hello</p>",
                spoiler_text="", sensitive=False, created_at=WHEN, language="fr")


def find_public(value: Any) -> bool:
    if isinstance(value, str):
        return value in PUBLIC_ALIASES
    if isinstance(value, dict):
        return any(find_public(v) for v in value.values())
    if isinstance(value, list):
        return any(find_public(v) for v in value)
    return False


def key_lookup(author: Actor) -> Any:
    def lookup(method: str) -> str:
        if method != f"{author.uri}#ed25519-key":
            raise ProofError("unknown method")
        assert author.ed25519_public_multikey
        return author.ed25519_public_multikey
    return lookup


def note(visibility: str, mentions: list[Actor] | None = None) -> tuple[dict[str, Any], Actor, Actor]:
    author, village = local_actor("alder"), local_actor("north", GROUP)
    doc = to_ap.post_to_note(make_post(visibility, author, village), author, mentions=mentions or [],
                             tags=["annonce"], audience=village, in_reply_to_uri=None, base_url=BASE)
    return doc, author, village


def test_minimal_and_full_person() -> None:
    alder = local_actor("alder")
    minimal = to_ap.actor_to_ap(alder, full=False, village_name=None, moderators=[])
    assert set(minimal) == {"@context", "id", "type", "preferredUsername", "inbox", "outbox", "followers",
                            "endpoints", "publicKey"}
    full = to_ap.actor_to_ap(alder, full=True, village_name=None, moderators=[])
    assert full["type"] == "Person" and full["name"] == "Alder" and full["summary"] == "<p>hi</p>"
    assert full["assertionMethod"][0]["publicKeyMultibase"] == alder.ed25519_public_multikey
    assert full["publicKey"] == {"id": f"{alder.uri}#main-key", "owner": alder.uri,
                                 "publicKeyPem": alder.public_key_pem}


def test_group_has_fep_1b12_fields() -> None:
    village = local_actor("north", GROUP)
    doc = to_ap.actor_to_ap(village, full=True, village_name="Nord", moderators=[f"{BASE}/users/alder"])
    assert doc["type"] == "Group" and doc["name"] == "Nord"
    assert doc["manuallyApprovesFollowers"] is True
    assert doc["attributedTo"] == [f"{BASE}/users/alder"] and doc["moderators"] == [f"{BASE}/users/alder"]
    assert doc["outbox"] == f"{village.uri}/outbox" and doc["followers"] == f"{village.uri}/followers"
    assert doc["endpoints"]["sharedInbox"] == f"{BASE}/inbox"
    assert not find_public(doc)


def test_public_note_addressing_and_proof() -> None:
    doc, author, village = note(PUBLIC)
    assert doc["type"] == "Note" and doc["attributedTo"] == author.uri
    assert doc["to"] == [village.followers_uri]
    assert doc["cc"] == [author.followers_uri]
    assert doc["audience"] == village.uri
    assert doc["published"] == "2026-11-25T12:00:00Z" and doc["contentMap"] == {"fr": "<p>hello</p>"}
    assert {"type": "Hashtag", "href": f"{BASE}/tags/annonce", "name": "#annonce"} in doc["tag"]
    assert doc["proof"]["verificationMethod"] == f"{author.uri}#ed25519-key"
    assert verify_proof(doc, key_lookup(author)) is True
    assert not find_public(doc)


def test_tampered_note_fails_proof() -> None:
    doc, author, _ = note(PUBLIC)
    for change in ({"content": "<p>changed</p>"}, {"to": ["https://evil.test/followers"]}):
        tampered = copy.deepcopy(doc)
        tampered.update(change)
        with pytest.raises(ProofError):
            verify_proof(tampered, key_lookup(author))


def test_private_and_direct_addressing() -> None:
    rowan = remote_actor("rowan")
    doc, author, _ = note(PRIVATE, [rowan])
    assert doc["to"] == [author.followers_uri] and doc["cc"] == [] and "audience" not in doc
    assert {"type": "Mention", "href": rowan.uri, "name": "@rowan@b.test"} in doc["tag"]
    doc, author, _ = note(DIRECT, [rowan])
    assert doc["to"] == [rowan.uri] and doc["cc"] == []
    assert not find_public(doc)
    with pytest.raises(ValueError):
        note(UNLISTED)


def test_activities() -> None:
    doc, author, village = note(PUBLIC)
    create = to_ap.create_of(doc, author)
    assert create["type"] == "Create" and create["id"] == f"{doc['id']}/activity" and create["object"] == doc
    assert create["to"] == doc["to"] and create["audience"] == village.uri
    announce = to_ap.announce_of(village, doc, f"{village.uri}/statuses/8/activity")
    assert announce["actor"] == village.uri and announce["object"] == doc and announce["cc"] == doc["cc"]
    update = to_ap.update_of(doc, author)
    assert update["type"] == "Update" and update["id"] != create["id"]
    delete = to_ap.delete_of(doc["id"], author, to_ap.addressing_of(doc))
    assert delete["object"] == {"id": doc["id"], "type": "Tombstone"} and delete["to"] == doc["to"]
    rowan = remote_actor("rowan")
    follow = to_ap.follow_of(f"{author.uri}#follows/1", author, rowan)
    assert follow["object"] == rowan.uri and follow["to"] == [rowan.uri]
    undo = to_ap.undo_of(follow, author)
    assert undo["object"]["id"] == follow["id"] and "@context" not in undo["object"] and undo["to"] == [rowan.uri]
    incoming = {"id": "https://b.test/f/1", "type": "Follow", "actor": rowan.uri, "object": village.uri}
    accept = to_ap.accept_of(incoming, village)
    assert accept["type"] == "Accept" and accept["object"] == incoming and accept["to"] == [rowan.uri]
    assert to_ap.reject_of(incoming, village)["id"] != accept["id"]
    like = to_ap.like_of(f"{author.uri}#likes/1", author, "https://b.test/n/1", {"to": [rowan.uri]})
    assert like["object"] == "https://b.test/n/1" and like["to"] == [rowan.uri]
    person = to_ap.actor_to_ap(author, full=True, village_name=None, moderators=[])
    update_person = to_ap.person_update_of(person, author)
    assert update_person["object"]["id"] == author.uri and update_person["to"] == [author.followers_uri]
    for activity in (create, announce, update, delete, follow, undo, accept, like, update_person):
        assert not find_public(activity)


def media_row(description: str, blurhash: str | None) -> MediaAttachment:
    return MediaAttachment(id=3, actor_id=1, post_id=7, kind="image", file_key="ab" * 16, content_type="image/jpeg",
                           preview_content_type="image/jpeg", width=1600, height=1200, description=description,
                           focus_x=0.25, focus_y=-0.5, blurhash=blurhash, processed=True)


def test_note_with_media_carries_mastodon_documents_under_the_proof() -> None:
    author = local_actor("alder")
    attachments = [to_ap.attachment_of(media_row("Un vélo rouge", "UCF~K@%M00Rj"), f"{BASE}/media/ab/1.jpg"),
                   to_ap.attachment_of(media_row("", None), f"{BASE}/media/ab/2.jpg")]
    doc = to_ap.post_to_note(make_post(PRIVATE, author, None), author, mentions=[], tags=[], audience=None,
                             in_reply_to_uri=None, base_url=BASE, attachments=attachments)
    assert doc["type"] == "Note" and doc["attachment"] == [
        {"type": "Document", "mediaType": "image/jpeg", "url": f"{BASE}/media/ab/1.jpg", "name": "Un vélo rouge",
         "blurhash": "UCF~K@%M00Rj", "width": 1600, "height": 1200, "focalPoint": [0.25, -0.5]},
        {"type": "Document", "mediaType": "image/jpeg", "url": f"{BASE}/media/ab/2.jpg", "name": None,
         "width": 1600, "height": 1200, "focalPoint": [0.25, -0.5]}]
    assert verify_proof(doc, key_lookup(author)) is True
    tampered = copy.deepcopy(doc)
    tampered["attachment"][0]["name"] = "autre chose"
    with pytest.raises(ProofError):
        verify_proof(tampered, key_lookup(author))


def poll_row(multiple: bool, hide_totals: bool = False, closed: bool = False) -> Poll:
    return Poll(id=5, post_id=7, author_id=1, options=["Oui", "Non", "Peut-être"], multiple=multiple,
                hide_totals=hide_totals, expires_at=WHEN + dt.timedelta(days=1),
                closed_at=WHEN + dt.timedelta(hours=2) if closed else None, remote_counts=None)


def test_poll_is_a_question_with_counts_end_and_voters() -> None:
    author = local_actor("alder")
    question = to_ap.question_of(poll_row(multiple=False), [2, 0, 1], 3)
    doc = to_ap.post_to_note(make_post(PRIVATE, author, None), author, mentions=[], tags=[], audience=None,
                             in_reply_to_uri=None, base_url=BASE, question=question)
    assert doc["type"] == "Question" and "anyOf" not in doc and "closed" not in doc
    assert doc["oneOf"] == [{"type": "Note", "name": name, "replies": {"type": "Collection", "totalItems": votes}}
                            for name, votes in (("Oui", 2), ("Non", 0), ("Peut-être", 1))]
    assert doc["endTime"] == "2026-11-26T12:00:00Z" and doc["votersCount"] == 3
    assert verify_proof(doc, key_lookup(author)) is True
    update = to_ap.question_update_of(doc, author)
    assert update["type"] == "Update" and update["object"] is doc and update["to"] == doc["to"]
    later = to_ap.question_update_of(
        to_ap.post_to_note(make_post(PRIVATE, author, None), author, mentions=[], tags=[], audience=None,
                           in_reply_to_uri=None, base_url=BASE, question=to_ap.question_of(poll_row(False), [2, 1, 1], 4)),
        author)
    assert later["id"] != update["id"]  # new counts, new activity: receivers do not drop it as seen


def test_multiple_closed_and_hidden_polls() -> None:
    closed = to_ap.question_of(poll_row(multiple=True, closed=True), [1, 1, 0], 1)
    assert "oneOf" not in closed and [o["name"] for o in closed["anyOf"]] == ["Oui", "Non", "Peut-être"]
    assert closed["closed"] == "2026-11-25T14:00:00Z"
    # hidden totals are hidden by apps, not on the wire: partners get the real counts, as from Mastodon
    hidden = to_ap.question_of(poll_row(multiple=False, hide_totals=True), [4, 2, 0], 6)
    assert [o["replies"]["totalItems"] for o in hidden["oneOf"]] == [4, 2, 0] and hidden["votersCount"] == 6
    shown = to_ap.question_of(poll_row(multiple=False, hide_totals=True, closed=True), [4, 2, 0], 6)
    assert [o["replies"]["totalItems"] for o in shown["oneOf"]] == [4, 2, 0]
