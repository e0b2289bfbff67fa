"""Polls: created with a status, voted once, results (hidden until the end if asked), closing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update

from voisinage.models.base import utcnow
from voisinage.models.db import write_session
from voisinage.models.notification import Notification
from voisinage.models.poll import Poll, PollVote
from voisinage.models.post import Post
from voisinage.server.services.posting import close_expired_polls

from .test_visibility import post


async def counts(rig: Any) -> tuple[int, int, int]:
    return (await rig.count(Post), await rig.count(Poll), await rig.count(PollVote))


async def make_poll(rig: Any, who: str = "alder", **poll: Any) -> dict[str, Any]:
    body = await post(rig, who, "Quel jour pour la fête ?",
                      poll={"options": ["samedi", "dimanche", "lundi"], "expires_in": 3600, **poll})
    return body["poll"]


async def vote(rig: Any, who: str, poll_id: str, *choices: int) -> tuple[int, Any]:
    return await rig.api(who).post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [str(c) for c in choices]})


async def test_create_poll_with_json_and_form(rig):
    poll = await make_poll(rig)
    assert [o["title"] for o in poll["options"]] == ["samedi", "dimanche", "lundi"]
    assert poll["expired"] is False and poll["multiple"] is False and poll["votes_count"] == 0
    assert poll["voted"] is True and poll["own_votes"] == [] and poll["emojis"] == []
    expires = dt.datetime.fromisoformat(poll["expires_at"])
    assert abs((expires - utcnow()).total_seconds() - 3600) < 60
    status, body = await rig.api("birch").post("/api/v1/statuses", data=[
        ("status", "Sondage"), ("poll[options][]", "oui"), ("poll[options][]", "non"),
        ("poll[expires_in]", "300"), ("poll[multiple]", "true")])
    assert status == 200, body
    assert body["poll"]["multiple"] is True and [o["title"] for o in body["poll"]["options"]] == ["oui", "non"]
    status, seen = await rig.api("cedar").get(f"/api/v1/polls/{poll['id']}")
    assert status == 200 and seen["voted"] is False and seen["options"][0]["votes_count"] == 0


async def test_invalid_polls_are_refused_and_nothing_is_stored(rig):
    before = await counts(rig)
    api = rig.api("alder")
    for poll in ({"options": ["seule"], "expires_in": 3600},
                 {"options": ["a", "b", "c", "d", "e"], "expires_in": 3600},
                 {"options": ["a", "x" * 51], "expires_in": 3600},
                 {"options": ["a", ""], "expires_in": 3600},
                 {"options": ["a", "a"], "expires_in": 3600},
                 {"options": ["a", "b"], "expires_in": 299},
                 {"options": ["a", "b"], "expires_in": 31 * 24 * 3600},
                 {"options": ["a", "b"]},
                 {"options": ["a", "b"], "expires_in": "demain"},
                 {"options": ["a", "b"], "expires_in": 600, "multiple": "peut-être"},
                 "oui"):
        status, body = await api.post("/api/v1/statuses", json={"status": "Sondage", "poll": poll})
        assert status == 422 and "error" in body, poll
    assert await counts(rig) == before


async def test_vote_once_and_results(rig):
    poll = await make_poll(rig)
    status, voted = await vote(rig, "birch", poll["id"], 1)
    assert status == 200, voted
    assert voted["voted"] is True and voted["own_votes"] == [1]
    assert voted["votes_count"] == 1 and voted["voters_count"] == 1
    assert [o["votes_count"] for o in voted["options"]] == [0, 1, 0]
    before = await counts(rig)
    for who, choices in (("birch", (0,)), ("cedar", (0, 1)), ("cedar", (3,)), ("cedar", ()), ("alder", (0,))):
        status, body = await vote(rig, who, poll["id"], *choices)
        assert status == 422 and "error" in body, (who, choices)
    status, body = await rig.api("cedar").post(f"/api/v1/polls/{poll['id']}/votes", json={"choices": ["x"]})
    assert status == 422
    assert await counts(rig) == before
    status, voted = await vote(rig, "cedar", poll["id"], 1)
    assert status == 200 and [o["votes_count"] for o in voted["options"]] == [0, 2, 0]


async def test_multiple_choice_poll_counts_voters_once(rig):
    poll = await make_poll(rig, multiple=True)
    status, voted = await vote(rig, "birch", poll["id"], 0, 2)
    assert status == 200 and voted["own_votes"] == [0, 2]
    status, voted = await vote(rig, "cedar", poll["id"], 2)
    assert status == 200
    assert voted["votes_count"] == 3 and voted["voters_count"] == 2
    assert [o["votes_count"] for o in voted["options"]] == [1, 0, 2]


async def test_hidden_totals_until_the_end_and_closing_notifies(rig):
    poll = await make_poll(rig, hide_totals=True)
    status, voted = await vote(rig, "birch", poll["id"], 0)
    assert status == 200
    assert [o["votes_count"] for o in voted["options"]] == [None, None, None] and voted["votes_count"] == 1
    async with write_session(rig.sessionmaker) as session:
        assert await close_expired_polls(session, utcnow()) == 0  # not over yet
    assert await rig.count(Notification, Notification.kind == "poll") == 0
    async with write_session(rig.sessionmaker) as session:
        assert await close_expired_polls(session, utcnow() + dt.timedelta(hours=2)) == 1
    async with write_session(rig.sessionmaker) as session:
        assert await close_expired_polls(session, utcnow() + dt.timedelta(hours=3)) == 0  # once only
    told = {n.recipient_id for n in await rig.rows(Notification, Notification.kind == "poll")}
    assert told == {rig["alder"].actor_id, rig["birch"].actor_id}
    status, ended = await rig.api("cedar").get(f"/api/v1/polls/{poll['id']}")
    assert status == 200 and ended["expired"] is True
    assert [o["votes_count"] for o in ended["options"]] == [1, 0, 0]
    status, _ = await vote(rig, "cedar", poll["id"], 1)
    assert status == 422
    assert await rig.count(PollVote) == 1
    status, notes = await rig.api("birch").get("/api/v1/notifications")
    assert notes[0]["type"] == "poll" and notes[0]["status"]["poll"]["expired"] is True


async def test_an_ended_poll_is_closed_when_read(rig):
    poll = await make_poll(rig)
    status, _ = await vote(rig, "birch", poll["id"], 2)
    assert status == 200
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(Poll).where(Poll.id == int(poll["id"]))
                              .values(expires_at=utcnow() - dt.timedelta(minutes=1)))
    status, _ = await vote(rig, "cedar", poll["id"], 1)
    assert status == 422
    status, ended = await rig.api("cedar").get(f"/api/v1/polls/{poll['id']}")
    assert status == 200 and ended["expired"] is True
    assert (await rig.rows(Poll, Poll.id == int(poll["id"])))[0].closed_at is not None
    assert {n.recipient_id for n in await rig.rows(Notification, Notification.kind == "poll")} == {
        rig["alder"].actor_id, rig["birch"].actor_id}


async def test_invisible_polls_answer_404(rig):
    poll = await make_poll(rig, "cedar", multiple=False)
    status, body = await rig.api("cedar").post("/api/v1/statuses", json={
        "status": "Entre abonnés", "visibility": "private",
        "poll": {"options": ["a", "b"], "expires_in": 600}})
    assert status == 200
    hidden = body["poll"]["id"]
    status, _ = await rig.api("alder").get(f"/api/v1/polls/{hidden}")
    assert status == 404
    status, _ = await vote(rig, "alder", hidden, 0)
    assert status == 404
    status, _ = await rig.api("alder").get("/api/v1/polls/999999999")
    assert status == 404
    assert await rig.count(PollVote) == 0
    status, seen = await rig.api("alder").get(f"/api/v1/polls/{poll['id']}")
    assert status == 200 and seen["id"] == poll["id"]
