"""How partners follow our polls and we theirs, across the pair rig (a.test and b.test, real
signatures): new counts go out at most once a minute per poll (the maintenance round sends what
waited, with a clock the test moves), the end always goes; hidden totals are hidden by the API only;
closing a partner's poll notifies our voters only; a partner's poll without an end has none here.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select, update

from voisinage.models.actor import Actor
from voisinage.models.base import utcnow
from voisinage.models.db import write_session
from voisinage.models.notification import Notification
from voisinage.models.poll import Poll, PollVote
from voisinage.models.post import Post
from voisinage.server.services import maintenance
from voisinage.server.services.posting import close_expired_polls

from ..rig.pair import Pair
from .test_exchange import follow, post, remote_copy, sent_since
from .test_media_polls_exchange import (
    a_poll_seen_by_cedar,
    actor_row,
    b_poll_seen_by_alder,
    create,
    note_by,
    send,
    status_on,
    vote,
)


async def poll_row(commune: object, post_id: int) -> Poll:
    (row,) = await commune.rows(Poll, Poll.post_id == post_id)  # type: ignore[attr-defined]
    return row


async def maintenance_round(pair: Pair, now: dt.datetime) -> dict[str, int]:
    return await maintenance.run_once(pair.a.sessionmaker, Path(pair.a.settings.media.path), now=now)


async def birch_vote(pair: Pair, original: Post, choice: int) -> None:
    """birch (a.test) follows alder, so sees the followers-only poll, and votes in it."""
    code, body = await pair.a.api("birch").post(f"/api/v1/accounts/{pair.a['alder'].actor_id}/follow")
    assert code == 200, body
    code, body = await vote(pair.a, "birch", (await status_on(pair.a, "birch", original.id))["poll"]["id"], [choice])
    assert code == 200, body


def totals(sent: object) -> list[int]:
    return [o["replies"]["totalItems"] for o in sent.json["object"]["oneOf"]]  # type: ignore[attr-defined]


async def test_votes_are_sent_at_most_once_a_minute_and_the_end_always(pair: Pair) -> None:
    original, copy = await a_poll_seen_by_cedar(pair, ["Oui", "Non"])
    await follow(pair.b, "dogwood", "@alder@a.test")
    await pair.drain()
    copy_poll_id = (await status_on(pair.b, "cedar", copy.id))["poll"]["id"]
    mark = len(pair.network.sent)
    code, body = await vote(pair.b, "cedar", copy_poll_id, [0])  # a partner's vote: counted, sent at once
    assert code == 200, body
    await pair.drain()
    (first,) = sent_since(pair, mark, "b.test", "Update")
    assert totals(first) == [1, 0]
    started = (await poll_row(pair.a, original.id)).federated_at
    assert started is not None
    # two more votes within the minute, one from each side: counted, nothing sent yet
    mark = len(pair.network.sent)
    code, body = await vote(pair.b, "dogwood", copy_poll_id, [1])
    assert code == 200, body
    await birch_vote(pair, original, 1)
    await pair.drain()
    assert sent_since(pair, mark, "b.test", "Update") == []
    row = await poll_row(pair.a, original.id)
    assert row.update_pending is True and row.federated_at == started
    own = (await status_on(pair.a, "alder", original.id))["poll"]
    assert [o["votes_count"] for o in own["options"]] == [1, 2]  # counted here all the same
    # a round before the minute is up sends nothing; the first one after sends the counts once
    assert (await maintenance_round(pair, started + dt.timedelta(seconds=30)))["poll_updates"] == 0
    await pair.drain()
    assert sent_since(pair, mark, "b.test", "Update") == []
    later = started + dt.timedelta(seconds=61)
    assert (await maintenance_round(pair, later))["poll_updates"] == 1
    await pair.drain()
    (second,) = sent_since(pair, mark, "b.test", "Update")
    assert totals(second) == [1, 2] and second.json["object"]["votersCount"] == 3
    assert second.status == 202 and "proof" in second.json["object"]
    seen = (await status_on(pair.b, "cedar", copy.id))["poll"]
    assert [o["votes_count"] for o in seen["options"]] == [1, 2] and seen["voters_count"] == 3
    row = await poll_row(pair.a, original.id)
    assert row.update_pending is False and row.federated_at == later
    # nothing new: the next rounds send nothing
    mark = len(pair.network.sent)
    assert (await maintenance_round(pair, later + dt.timedelta(minutes=5)))["poll_updates"] == 0
    # the end goes even a moment after the last counts were sent
    async with write_session(pair.a.sessionmaker) as session:
        await session.execute(update(Poll).where(Poll.post_id == original.id).values(
            expires_at=later + dt.timedelta(seconds=5)))
    done = await maintenance_round(pair, later + dt.timedelta(seconds=10))
    assert done["polls"] == 1 and done["poll_updates"] == 0
    await pair.drain()
    (end,) = sent_since(pair, mark, "b.test", "Update")
    assert "closed" in end.json["object"] and totals(end) == [1, 2]
    ended = (later + dt.timedelta(seconds=10)).replace(microsecond=0)
    assert (await poll_row(pair.b, copy.id)).expires_at == ended  # b.test ends it then


async def test_a_vote_waiting_when_the_poll_ends_goes_with_the_end(pair: Pair) -> None:
    original, copy = await a_poll_seen_by_cedar(pair, ["Oui", "Non"])
    copy_poll_id = (await status_on(pair.b, "cedar", copy.id))["poll"]["id"]
    assert (await vote(pair.b, "cedar", copy_poll_id, [0]))[0] == 200
    await pair.drain()
    mark = len(pair.network.sent)
    await birch_vote(pair, original, 1)
    await pair.drain()
    assert sent_since(pair, mark, "b.test", "Update") == []
    async with write_session(pair.a.sessionmaker) as session:
        await session.execute(update(Poll).where(Poll.post_id == original.id).values(
            expires_at=utcnow() - dt.timedelta(seconds=1)))
    async with write_session(pair.a.sessionmaker) as session:
        assert await close_expired_polls(session) == 1
    await pair.drain()
    (end,) = sent_since(pair, mark, "b.test", "Update")
    assert "closed" in end.json["object"] and totals(end) == [1, 1]
    row = await poll_row(pair.a, original.id)
    assert row.update_pending is False
    assert (await maintenance_round(pair, utcnow() + dt.timedelta(minutes=2)))["poll_updates"] == 0


async def test_hidden_totals_cross_for_real_and_stay_hidden_in_our_api(pair: Pair) -> None:
    await follow(pair.b, "cedar", "@alder@a.test")
    await pair.drain()
    original = await post(pair.a, "alder", status="Sondage", visibility="private",
                          poll={"options": ["Oui", "Non"], "expires_in": 86400, "hide_totals": True})
    await pair.drain()
    copy = await remote_copy(pair.b, original.uri)
    assert copy is not None
    mark = len(pair.network.sent)
    code, body = await vote(pair.b, "cedar", (await status_on(pair.b, "cedar", copy.id))["poll"]["id"], [1])
    assert code == 200, body
    await pair.drain()
    (sent,) = sent_since(pair, mark, "b.test", "Update")
    assert totals(sent) == [0, 1] and sent.json["object"]["votersCount"] == 1  # the real counts on the wire
    own = (await status_on(pair.a, "alder", original.id))["poll"]
    assert [o["votes_count"] for o in own["options"]] == [None, None] and own["expired"] is False
    async with write_session(pair.a.sessionmaker) as session:
        await session.execute(update(Poll).where(Poll.post_id == original.id).values(
            expires_at=utcnow() - dt.timedelta(seconds=1)))
    own = (await status_on(pair.a, "alder", original.id))["poll"]  # ended: shown
    assert [o["votes_count"] for o in own["options"]] == [0, 1] and own["expired"] is True


async def test_closing_a_partner_poll_notifies_our_voters_only(pair: Pair) -> None:
    original, copy = await b_poll_seen_by_alder(pair, ["Samedi", "Dimanche"])
    code, body = await vote(pair.a, "alder", (await status_on(pair.a, "alder", copy.id))["poll"]["id"], [0])
    assert code == 200, body
    await pair.drain()
    async with write_session(pair.a.sessionmaker) as session:
        await session.execute(update(Poll).where(Poll.post_id == copy.id).values(
            expires_at=utcnow() - dt.timedelta(seconds=1)))
    mark = len(pair.network.sent)
    async with write_session(pair.a.sessionmaker) as session:
        assert await close_expired_polls(session) == 1
    await pair.drain()
    notes = await pair.a.rows(Notification, Notification.kind == "poll")
    assert [n.recipient_id for n in notes] == [pair.a["alder"].actor_id]
    assert notes[0].from_actor_id == copy.author_id and notes[0].post_id == copy.id
    assert sent_since(pair, mark, "b.test") == []  # not ours: nothing announced


async def test_closing_our_poll_notifies_the_author_and_our_voters_not_partners(pair: Pair) -> None:
    original, copy = await a_poll_seen_by_cedar(pair, ["Oui", "Non"])
    assert (await vote(pair.b, "cedar", (await status_on(pair.b, "cedar", copy.id))["poll"]["id"], [0]))[0] == 200
    await birch_vote(pair, original, 1)
    await pair.drain()
    (cedar_here,) = await pair.a.rows(Actor, Actor.uri == (await actor_row(pair.b, "cedar")).uri)
    assert await pair.a.count(PollVote, PollVote.actor_id == cedar_here.id) == 1  # the partner's vote counted
    async with write_session(pair.a.sessionmaker) as session:
        await session.execute(update(Poll).where(Poll.post_id == original.id).values(
            expires_at=utcnow() - dt.timedelta(seconds=1)))
    async with write_session(pair.a.sessionmaker) as session:
        assert await close_expired_polls(session) == 1
    notes = await pair.a.rows(Notification, Notification.kind == "poll")
    assert sorted(n.recipient_id for n in notes) == sorted([pair.a["alder"].actor_id, pair.a["birch"].actor_id])
    assert await pair.a.count(Notification, Notification.recipient_id == cedar_here.id) == 0


async def test_partner_poll_without_end_has_none_here(pair: Pair) -> None:
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    cedar = await actor_row(pair.b, "cedar")
    note = note_by(cedar, type="Question", oneOf=[{"type": "Note", "name": "A"}, {"type": "Note", "name": "B"}])
    await send(pair.b, "cedar", create(cedar.uri, note), "a.test")
    await pair.drain()
    copy = await remote_copy(pair.a, note["id"])
    assert copy is not None
    assert (await poll_row(pair.a, copy.id)).expires_at is None
    poll = (await status_on(pair.a, "alder", copy.id))["poll"]
    assert poll["expires_at"] is None and poll["expired"] is False
    # years later it is still open: not closed, and a resident may vote in it
    assert (await maintenance_round(pair, utcnow() + dt.timedelta(days=20 * 365)))["polls"] == 0
    mark = len(pair.network.sent)
    code, body = await vote(pair.a, "alder", poll["id"], [1])
    assert code == 200, body
    assert body["expires_at"] is None and body["own_votes"] == [1]
    await pair.drain()
    (sent,) = sent_since(pair, mark, "b.test", "Create")
    assert sent.json["object"]["name"] == "B" and sent.json["object"]["inReplyTo"] == note["id"]
    async with pair.a.sessionmaker() as session:
        assert await session.scalar(select(Poll.closed_at).where(Poll.post_id == copy.id)) is None
