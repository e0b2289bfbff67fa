"""What a partner sends besides text, across the pair rig (a.test and b.test, real signatures): media
attachments, polls and the votes in them both ways, mentions of actors not known yet, and profiles.

Photos and polls are made for real through the client API on one side and cross as our notes carry
them (`attachment`, `Question`, Update{Question} when votes come in or the poll ends). Shapes our
own notes never take (other peers' fixtures, hostile documents, forged ballots) are written by hand
and signed by b.test's own actor through b.test's outbox: `send` below. What arrived is read from
the receiving side's API and rows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from voisinage.federation import outbox
from voisinage.federation.to_ap import iso
from voisinage.models.actor import Actor
from voisinage.models.base import utcnow
from voisinage.models.db import write_session
from voisinage.models.media import MediaAttachment
from voisinage.models.poll import Poll, PollVote
from voisinage.models.post import Mention, Post
from voisinage.server.services.posting import close_expired_polls

from ..rig.pair import Pair
from ..server.test_status_media import upload_photo
from .test_exchange import follow, home_uris, local_row, post, remote_copy, sent_since

NOTES = Path(__file__).parents[1] / "fixtures" / "peers" / "notes"
AS = "https://www.w3.org/ns/activitystreams"
_serial = itertools.count(1)


def fixture(name: str) -> dict[str, Any]:
    return json.loads((NOTES / name).read_text())


async def actor_row(commune: Any, name: str) -> Actor:
    async with commune.sessionmaker() as session:
        actor = await session.get(Actor, commune[name].actor_id)
    assert actor is not None
    return actor


async def send(commune: Any, who: str, activity: dict[str, Any], to_host: str) -> None:
    """`who` of `commune` delivers `activity` to `to_host`'s shared inbox (signed, through the outbox)."""
    async with write_session(commune.sessionmaker) as session:
        signer = await session.get(Actor, commune[who].actor_id)
        assert signer is not None
        await outbox.publish(session, Pair.ctx(commune), activity, signer, [f"https://{to_host}/inbox"])


def create(actor_uri: str, note: dict[str, Any]) -> dict[str, Any]:
    return {"@context": AS, "id": f"{note['id']}/activity", "type": "Create", "actor": actor_uri,
            "to": note.get("to"), "object": note}


def note_by(actor: Actor, **fields: Any) -> dict[str, Any]:
    """A Mastodon-shaped Note by `actor`, addressed to its followers."""
    return {"id": f"{actor.uri}/statuses/crafted-{next(_serial)}", "type": "Note", "attributedTo": actor.uri,
            "to": [actor.followers_uri], "content": "<p>Bonjour</p>", "published": iso(dt.datetime.now(dt.UTC)),
            **fields}


async def status_on(commune: Any, who: str, post_id: int) -> dict[str, Any]:
    code, body = await commune.api(who).get(f"/api/v1/statuses/{post_id}")
    assert code == 200, body
    return body


async def poll_post(commune: Any, who: str, options: list[str], multiple: bool = False) -> Post:
    return await post(commune, who, status="Sondage du quartier", visibility="private",
                      poll={"options": options, "expires_in": 86400, "multiple": multiple})


async def vote(commune: Any, who: str, poll_id: str, choices: list[int]) -> tuple[int, Any]:
    return await commune.api(who).post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [str(c) for c in choices]})


async def poll_crossing(pair: Pair, author_host: str, author: str, reader: str, options: list[str],
                        multiple: bool = False) -> tuple[Post, Post]:
    """`author` on `author_host` makes a poll that `reader` (on the other commune, a follower) receives:
    (the author's row, the reader's copy)."""
    home, away = pair.commune(author_host), pair.b if author_host == "a.test" else pair.a
    await follow(away, reader, f"@{author}@{author_host}")
    await pair.drain()
    original = await poll_post(home, author, options, multiple)
    await pair.drain()
    copy = await remote_copy(away, original.uri)
    assert copy is not None
    return original, copy


async def b_poll_seen_by_alder(pair: Pair, options: list[str], multiple: bool = False) -> tuple[Post, Post]:
    return await poll_crossing(pair, "b.test", "cedar", "alder", options, multiple)


async def a_poll_seen_by_cedar(pair: Pair, options: list[str], multiple: bool = False) -> tuple[Post, Post]:
    return await poll_crossing(pair, "a.test", "alder", "cedar", options, multiple)


# -- media ----------------------------------------------------------------------------------------


async def test_media_of_a_partner_note_show_in_the_api(pair: Pair) -> None:
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    activity = fixture("mastodon_create_note_media.json")  # ids are cedar's on b.test
    await send(pair.b, "cedar", activity, "a.test")
    await pair.drain()
    copy = await remote_copy(pair.a, activity["object"]["id"])
    assert copy is not None
    status = await status_on(pair.a, "alder", copy.id)
    image, video = status["media_attachments"]
    url = activity["object"]["attachment"][0]["url"]
    assert image["url"] == image["preview_url"] == image["remote_url"] == url
    assert image["type"] == "image" and image["description"] == "Une table en chêne devant un garage"
    assert image["blurhash"] == "UCF~K@%M00Rj~qt7IUof_3ayRjj[t7ofWBWB"
    assert image["meta"]["original"] == {"width": 1600, "height": 1200, "size": "1600x1200", "aspect": 4 / 3}
    assert image["meta"]["focus"] == {"x": 0.25, "y": -0.5}
    assert video["type"] == "video" and video["description"] is None and video["url"].endswith(".mp4")
    code, home = await pair.a.api("alder").get("/api/v1/timelines/home")
    assert code == 200 and [len(s["media_attachments"]) for s in home if s["uri"] == copy.uri] == [2]
    # nothing is downloaded: no request went to the media host
    assert not [s for s in pair.network.sent if "files.b.test" in s.url]


async def test_hostile_attachments_store_nothing_bad(pair: Pair) -> None:
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    cedar = await actor_row(pair.b, "cedar")
    bad = [{"type": "Image", "url": u, "mediaType": "image/png"} for u in (
        "javascript:alert(1)", "data:image/png;base64,AAAA", "https://b.test/x\x07.png", " javascript:x",
        "https://b.test/" + "a" * 2000)]
    good = [{"type": "Image", "url": f"https://b.test/{i}.png", "mediaType": "image/png", "name": "\x07" + "n" * 2000,
             "blurhash": "<script>alert(1)</script>", "width": -5, "focalPoint": "0,0"} for i in range(50)]
    note = note_by(cedar, attachment=bad + good)  # (a NUL anywhere: the inbox refuses the body)
    await send(pair.b, "cedar", create(cedar.uri, note), "a.test")
    await pair.drain()
    copy = await remote_copy(pair.a, note["id"])
    assert copy is not None  # the note itself is kept
    rows = await pair.a.rows(MediaAttachment, MediaAttachment.post_id == copy.id)
    assert sorted(r.remote_url for r in rows) == [f"https://b.test/{i}.png" for i in range(4)]
    assert all(len(r.description) == 1500 and "\x07" not in r.description and r.blurhash is None
               and r.width == 0 for r in rows)
    assert await pair.a.count(MediaAttachment) == 4  # nothing else stored anywhere
    status = await status_on(pair.a, "alder", copy.id)
    assert len(status["media_attachments"]) == 4 and "javascript" not in json.dumps(status)


async def test_photo_posted_through_the_api_shows_on_the_partner(pair: Pair) -> None:
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    media_id = await upload_photo(pair.b, "cedar", "Des poireaux du jardin")
    mark = len(pair.network.sent)
    original = await post(pair.b, "cedar", status="Récolte", visibility="private", media_ids=[media_id])
    await pair.drain()
    own = await status_on(pair.b, "cedar", original.id)
    (sent,) = sent_since(pair, mark, "a.test", "Create")
    (document,) = sent.json["object"]["attachment"]
    assert document == {"type": "Document", "mediaType": "image/jpeg", "url": own["media_attachments"][0]["url"],
                        "name": "Des poireaux du jardin", "blurhash": own["media_attachments"][0]["blurhash"],
                        "width": 32, "height": 24, "focalPoint": [0.0, 0.0]}
    assert document["url"].startswith(pair.b.base_url + "/media/") and "proof" in sent.json["object"]
    copy = await remote_copy(pair.a, original.uri)
    assert copy is not None and original.uri in await home_uris(pair.a, "alder")
    (image,) = (await status_on(pair.a, "alder", copy.id))["media_attachments"]
    assert image["url"] == image["remote_url"] == document["url"] and image["type"] == "image"
    assert image["description"] == "Des poireaux du jardin" and image["blurhash"] == document["blurhash"]
    assert image["meta"]["original"]["width"] == 32 and image["meta"]["focus"] == {"x": 0.0, "y": 0.0}


async def test_edit_replaces_media_and_delete_removes_them(pair: Pair) -> None:
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    first, second = await upload_photo(pair.b, "cedar", "avant"), await upload_photo(pair.b, "cedar", "après")
    original = await post(pair.b, "cedar", status="Le potager", visibility="private", media_ids=[first])
    await pair.drain()
    code, body = await pair.b.api("cedar").put(f"/api/v1/statuses/{original.id}",
                                               json={"status": "Le potager, plus tard", "media_ids": [second]})
    assert code == 200, body
    await pair.drain()
    copy = await remote_copy(pair.a, original.uri)
    assert copy is not None and copy.edited_at is not None
    rows = await pair.a.rows(MediaAttachment)
    assert [(r.remote_url, r.description) for r in rows] == [(body["media_attachments"][0]["url"], "après")]
    code, _ = await pair.b.api("cedar").delete(f"/api/v1/statuses/{original.id}")
    assert code == 200
    await pair.drain()
    assert await remote_copy(pair.a, original.uri) is None and await pair.a.count(MediaAttachment) == 0


# -- polls ----------------------------------------------------------------------------------------


async def test_partner_poll_shows_and_a_local_vote_reaches_its_author(pair: Pair) -> None:
    original, copy = await b_poll_seen_by_alder(pair, ["Samedi", "Dimanche"])
    status = await status_on(pair.a, "alder", copy.id)
    poll = status["poll"]
    assert [o["title"] for o in poll["options"]] == ["Samedi", "Dimanche"] and poll["votes_count"] == 0
    assert poll["expired"] is False and poll["voted"] is False and poll["multiple"] is False
    assert status["edited_at"] is None
    mark = len(pair.network.sent)
    code, body = await vote(pair.a, "alder", poll["id"], [1])
    assert code == 200, body
    assert body["voted"] is True and body["own_votes"] == [1] and body["options"][1]["votes_count"] == 1
    await pair.drain()
    (sent,) = sent_since(pair, mark, "b.test", "Create")
    cedar = await actor_row(pair.b, "cedar")
    assert sent.url == cedar.inbox_uri and sent.status == 202
    vote_note = sent.json["object"]
    assert vote_note["name"] == "Dimanche" and vote_note["inReplyTo"] == original.uri
    assert vote_note["to"] == [cedar.uri] and sent.json["to"] == [cedar.uri] and "content" not in vote_note
    assert "cc" not in sent.json and "cc" not in vote_note
    # counted on b.test, in cedar's own poll, and not stored as a post there
    code, own = await pair.b.api("cedar").get(f"/api/v1/statuses/{original.id}")
    assert own["poll"]["votes_count"] == 1 and own["poll"]["options"][1]["votes_count"] == 1
    assert await pair.b.count(Post, Post.uri == vote_note["id"]) == 0
    # b.test sent its new counts back (Update{Question}): our vote is not counted twice
    (update_sent,) = sent_since(pair, mark, "a.test", "Update")
    assert update_sent.json["object"]["type"] == "Question" and update_sent.json["object"]["votersCount"] == 1
    poll = (await status_on(pair.a, "alder", copy.id))["poll"]
    assert [o["votes_count"] for o in poll["options"]] == [0, 1] and poll["voters_count"] == 1
    assert poll["own_votes"] == [1] and (await status_on(pair.a, "alder", copy.id))["edited_at"] is None
    code, again = await vote(pair.a, "alder", poll["id"], [0])
    assert code == 422  # one vote per account, as for local polls


async def test_multiple_choice_vote_sends_one_note_per_option(pair: Pair) -> None:
    original, copy = await b_poll_seen_by_alder(pair, ["Soupe", "Tarte", "Fromage"], multiple=True)
    poll_id = (await status_on(pair.a, "alder", copy.id))["poll"]["id"]
    mark = len(pair.network.sent)
    code, body = await vote(pair.a, "alder", poll_id, [0, 2])
    assert code == 200 and body["voters_count"] == 1 and body["votes_count"] == 2
    await pair.drain()
    assert sorted(s.json["object"]["name"] for s in sent_since(pair, mark, "b.test", "Create")) == ["Fromage", "Soupe"]
    code, own = await pair.b.api("cedar").get(f"/api/v1/statuses/{original.id}")
    assert [o["votes_count"] for o in own["poll"]["options"]] == [1, 0, 1] and own["poll"]["voters_count"] == 1


async def test_partner_votes_count_in_our_poll_once(pair: Pair) -> None:
    original, copy = await a_poll_seen_by_cedar(pair, ["Oui", "Non"])
    poll_id = (await status_on(pair.b, "cedar", copy.id))["poll"]["id"]
    code, body = await vote(pair.b, "cedar", poll_id, [0])
    assert code == 200, body
    await pair.drain()
    code, own = await pair.a.api("alder").get(f"/api/v1/statuses/{original.id}")
    assert [o["votes_count"] for o in own["poll"]["options"]] == [1, 0] and own["poll"]["voters_count"] == 1
    # a.test sent its new counts back (Update{Question})
    poll = (await status_on(pair.b, "cedar", copy.id))["poll"]
    assert [o["votes_count"] for o in poll["options"]] == [1, 0] and poll["voters_count"] == 1
    assert poll["own_votes"] == [0]
    # the same voter again, for the other option, with a new activity id: still one vote
    mark = len(pair.network.sent)
    cedar = await actor_row(pair.b, "cedar")
    again = {"id": f"{cedar.uri}#votes/replayed", "type": "Note", "name": "Non", "attributedTo": cedar.uri,
             "to": (await actor_row(pair.a, "alder")).uri, "inReplyTo": original.uri}
    await send(pair.b, "cedar", create(cedar.uri, again), "a.test")
    await pair.drain()
    a_poll = (await pair.a.rows(Poll, Poll.post_id == original.id))[0]
    votes = await pair.a.rows(PollVote, PollVote.poll_id == a_poll.id)
    assert [(v.choice, v.actor_id) for v in votes] == [(0, votes[0].actor_id)] and len(votes) == 1
    assert await pair.a.count(Post, Post.author_id == votes[0].actor_id) == 0  # votes are not posts
    assert sent_since(pair, mark, "b.test", "Update") == []  # nothing counted, nothing to announce


async def test_local_votes_and_the_end_of_our_poll_reach_the_partner(pair: Pair) -> None:
    original, copy = await a_poll_seen_by_cedar(pair, ["Oui", "Non"])
    code, body = await pair.a.api("birch").post(f"/api/v1/accounts/{pair.a['alder'].actor_id}/follow")
    assert code == 200, body
    poll_id = (await status_on(pair.a, "birch", original.id))["poll"]["id"]
    mark = len(pair.network.sent)
    code, body = await vote(pair.a, "birch", poll_id, [1])  # a resident of a.test votes in alder's poll
    assert code == 200, body
    await pair.drain()
    (sent,) = sent_since(pair, mark, "b.test", "Update")
    question = sent.json["object"]
    assert question["type"] == "Question" and question["id"] == original.uri and "proof" in question
    assert [o["replies"]["totalItems"] for o in question["oneOf"]] == [0, 1] and "closed" not in question
    poll = (await status_on(pair.b, "cedar", copy.id))["poll"]
    assert [o["votes_count"] for o in poll["options"]] == [0, 1] and poll["expired"] is False
    assert (await status_on(pair.b, "cedar", copy.id))["edited_at"] is None  # new counts are not an edit
    # the poll ends on a.test: b.test learns it, with the final counts
    async with write_session(pair.a.sessionmaker) as session:
        await session.execute(update(Poll).where(Poll.post_id == original.id).values(
            expires_at=utcnow() - dt.timedelta(minutes=1)))
    async with write_session(pair.a.sessionmaker) as session:
        assert await close_expired_polls(session) == 1
    mark = len(pair.network.sent)
    await pair.drain()
    (sent,) = sent_since(pair, mark, "b.test", "Update")
    assert "closed" in sent.json["object"] and sent.json["object"]["votersCount"] == 1
    poll = (await status_on(pair.b, "cedar", copy.id))["poll"]
    assert poll["expired"] is True and [o["votes_count"] for o in poll["options"]] == [0, 1]
    code, _ = await vote(pair.b, "cedar", poll["id"], [0])
    assert code == 422  # ended on b.test too


async def test_votes_refused_store_nothing(pair: Pair) -> None:
    original, _ = await a_poll_seen_by_cedar(pair, ["Oui", "Non"])
    alder = await actor_row(pair.a, "alder")
    dogwood = await actor_row(pair.b, "dogwood")
    cedar = await actor_row(pair.b, "cedar")

    def ballot(voter: Actor, name: str, target: str = original.uri) -> dict[str, Any]:
        return create(voter.uri, {"id": f"{voter.uri}#votes/{next(_serial)}", "type": "Note", "name": name,
                                  "attributedTo": voter.uri, "to": alder.uri, "inReplyTo": target})

    await send(pair.b, "dogwood", ballot(dogwood, "Oui"), "a.test")  # does not follow alder: may not see it
    await send(pair.b, "cedar", ballot(cedar, "Peut-être"), "a.test")  # no such option
    await send(pair.b, "cedar", ballot(cedar, "Oui", "https://a.test/users/alder/statuses/1"), "a.test")  # no poll
    await pair.drain()
    async with write_session(pair.a.sessionmaker) as session:  # the poll ends
        await session.execute(update(Poll).where(Poll.post_id == original.id).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    await send(pair.b, "cedar", ballot(cedar, "Oui"), "a.test")  # too late
    await pair.drain()
    assert await pair.a.count(PollVote) == 0
    assert await pair.a.count(Post, Post.author_id.in_(
        select(Actor.id).where(Actor.domain == "b.test"))) == 0  # no vote became a post


async def test_hostile_questions_keep_the_note_without_a_bad_poll(pair: Pair) -> None:
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    cedar = await actor_row(pair.b, "cedar")
    many = note_by(cedar, type="Question", oneOf=[{"type": "Note", "name": f"o{i}"} for i in range(500)])
    huge = note_by(cedar, type="Question", anyOf=[{"type": "Note", "name": "Oui"}, {"type": "Note", "name": "N" * 100_000}])
    counts = note_by(cedar, type="Question", oneOf=[
        {"type": "Note", "name": "Oui\x1b", "replies": {"totalItems": 2**40}},
        {"type": "Note", "name": "Non", "replies": {"totalItems": "12"}}])
    for note in (many, huge, counts):
        await send(pair.b, "cedar", create(cedar.uri, note), "a.test")
    await pair.drain()
    for note in (many, huge):
        copy = await remote_copy(pair.a, note["id"])
        assert copy is not None and await pair.a.count(Poll, Poll.post_id == copy.id) == 0
    copy = await remote_copy(pair.a, counts["id"])
    (poll,) = await pair.a.rows(Poll, Poll.post_id == copy.id)
    assert poll.options == ["Oui", "Non"] and poll.remote_counts == [0, 0]
    assert (await status_on(pair.a, "alder", copy.id))["poll"]["options"][0]["title"] == "Oui"


# -- mentions -------------------------------------------------------------------------------------


async def test_unknown_mentions_are_resolved_from_partners_and_capped(pair: Pair) -> None:
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    cedar = await actor_row(pair.b, "cedar")
    dogwood = await actor_row(pair.b, "dogwood")
    alder = await actor_row(pair.a, "alder")
    tags = [{"type": "Mention", "href": u} for u in (
        alder.uri, dogwood.uri, "https://b.test/users/ghost", "https://c.test/users/stranger")]
    tags += [{"type": "Mention", "href": f"https://b.test/users/ghost{i}"} for i in range(15)]
    note = note_by(cedar, tag=tags, content="<p>@alder @dogwood</p>")
    mark = len(pair.network.sent)
    await send(pair.b, "cedar", create(cedar.uri, note), "a.test")
    await pair.drain()
    copy = await remote_copy(pair.a, note["id"])
    assert copy is not None  # failed fetches dropped the mentions, not the note
    status = await status_on(pair.a, "alder", copy.id)
    assert sorted(m["acct"] for m in status["mentions"]) == ["alder", "dogwood@b.test"]
    assert await pair.a.count(Mention, Mention.post_id == copy.id) == 2
    fetched = [s.url for s in pair.network.sent[mark:] if s.method == "GET" and "/users/" in s.url]
    # ten candidates: dogwood, ghost, the stranger (not a partner: no request) and seven more ghosts
    assert fetched[0] == dogwood.uri and len(fetched) == 9
    assert not [u for u in fetched if "c.test" in u]  # never a request to a non-partner
    assert [n for n in (await pair.a.api("alder").get("/api/v1/notifications"))[1]
            if n["type"] == "mention" and n["status"]["uri"] == copy.uri]


# -- profiles -------------------------------------------------------------------------------------


async def test_profile_fields_and_note_cross_and_update(pair: Pair) -> None:
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    code, me = await pair.b.api("cedar").get("/api/v1/accounts/verify_credentials")
    village = me["source"]["fields"][:1]  # the verified Village field, managed by b.test
    code, body = await pair.b.api("cedar").patch("/api/v1/accounts/update_credentials", json={
        "display_name": "Cédric :potager:", "note": "Apiculteur, voir https://miel.example",
        "fields_attributes": [*village, {"name": "Ruches", "value": "12"}, {"name": "Site", "value": "https://miel.example"}]})
    assert code == 200, body
    await pair.drain()
    cedar_uri = (await actor_row(pair.b, "cedar")).uri
    (copy,) = await pair.a.rows(Actor, Actor.uri == cedar_uri)
    code, account = await pair.a.api("alder").get(f"/api/v1/accounts/{copy.id}")
    assert code == 200 and account["display_name"] == "Cédric :potager:"
    assert "Apiculteur" in account["note"] and 'href="https://miel.example"' in account["note"]
    names = [f["name"] for f in account["fields"]]
    assert names[-2:] == ["Ruches", "Site"] and all(f["verified_at"] is None for f in account["fields"])
    assert 'href="https://miel.example"' in account["fields"][-1]["value"]
    code, body = await pair.b.api("cedar").patch("/api/v1/accounts/update_credentials", json={
        "fields_attributes": [*village, {"name": "Ruches", "value": "14"}]})
    assert code == 200, body
    await pair.drain()
    code, account = await pair.a.api("alder").get(f"/api/v1/accounts/{copy.id}")
    assert [f["value"] for f in account["fields"] if f["name"] == "Ruches"] == ["14"]
    assert "Site" not in [f["name"] for f in account["fields"]]


async def test_question_with_media_keeps_both(pair: Pair) -> None:
    """A partner Question with an image (Mastodon refuses both, others allow it): both are kept."""
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    cedar = await actor_row(pair.b, "cedar")
    end = iso(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    note = note_by(cedar, type="Question", endTime=end, oneOf=[{"type": "Note", "name": "A"}, {"type": "Note", "name": "B"}],
                   attachment={"type": "Document", "mediaType": "image/jpeg", "url": "https://b.test/p.jpg"})
    await send(pair.b, "cedar", create(cedar.uri, note), "a.test")
    await pair.drain()
    copy = await remote_copy(pair.a, note["id"])
    status = await status_on(pair.a, "alder", copy.id)
    assert status["poll"]["expires_at"].startswith(end[:16]) and len(status["media_attachments"]) == 1
    row = await local_row(pair.a, Post, copy.id)
    assert row.content == "<p>Bonjour</p>"
