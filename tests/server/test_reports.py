"""Reports: stored with statuses and rules, moderators of the village and admins notified, bad input."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.notification import Notification
from voisinage.models.report import Report
from voisinage.server.api.reports import list_reports, reports_to_api

from .test_visibility import post


async def set_role(rig: Any, who: str, role: str) -> None:
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(Actor).where(Actor.id == rig[who].actor_id).values(role=role))


async def test_report_is_stored_and_reaches_the_right_moderators(rig):
    await rig.add_resident("elm", "south")
    await set_role(rig, "elm", "moderator")      # moderator of cedar's village: notified
    await set_role(rig, "birch", "moderator")    # moderator of north: not notified
    await set_role(rig, "dogwood", "admin")      # admins: notified
    bad = await post(rig, "cedar", "Achetez mes montres")
    status, body = await rig.api("alder").post("/api/v1/reports", json={
        "account_id": rig["cedar"].id, "status_ids": [bad["id"]], "comment": "Publicité",
        "category": "violation", "rule_ids": ["3"], "forward": True})
    assert status == 200, body
    assert body["category"] == "violation" and body["rule_ids"] == ["3"] and body["status_ids"] == [bad["id"]]
    assert body["action_taken"] is False and body["forwarded"] is False and body["comment"] == "Publicité"
    assert body["target_account"]["id"] == rig["cedar"].id and body["created_at"].endswith("Z")
    rows = await rig.rows(Report)
    assert len(rows) == 1 and rows[0].reporter_id == rig["alder"].actor_id and rows[0].status_ids == [int(bad["id"])]
    notes = await rig.rows(Notification, Notification.kind == "admin.report")
    assert {n.recipient_id for n in notes} == {rig["elm"].actor_id, rig["dogwood"].actor_id}
    assert all(n.report_id == rows[0].id and n.from_actor_id == rig["alder"].actor_id for n in notes)
    async with rig.sessionmaker() as session:
        assert [r.id for r in await list_reports(session)] == [rows[0].id]
    # a second report is a second notification, not folded into the first
    status, body = await rig.api("alder").post("/api/v1/reports", data={"account_id": rig["cedar"].id,
                                                                       "comment": "Encore"})
    assert status == 200 and body["category"] == "other" and body["rule_ids"] is None
    assert await rig.count(Notification, Notification.kind == "admin.report") == 4


async def test_bad_reports_store_nothing(rig):
    await rig.add_resident("elm", "south")
    await set_role(rig, "elm", "admin")
    theirs = await post(rig, "cedar", "Message")
    someone_else = await post(rig, "birch", "Autre")
    north_only = await post(rig, "birch", "Nord seulement", visibility="unlisted")
    hidden = await post(rig, "cedar", "@dogwood secret", visibility="direct")
    api = rig.api("alder")
    cases = [
        (422, {}),
        (404, {"account_id": "999999"}),
        (422, {"account_id": rig["alder"].id}),
        (422, {"account_id": rig["cedar"].id, "comment": "x" * 1001}),
        (422, {"account_id": rig["cedar"].id, "rule_ids": ["9"]}),
        (422, {"account_id": rig["cedar"].id, "category": "gossip"}),
        (422, {"account_id": rig["cedar"].id, "category": "violation"}),
        (422, {"account_id": rig["cedar"].id, "status_ids": [someone_else["id"]]}),
        (422, {"account_id": rig["cedar"].id, "status_ids": [hidden["id"]]}),
        (422, {"account_id": rig["cedar"].id, "status_ids": ["123"]}),
        (422, {"account_id": rig["cedar"].id, "status_ids": [theirs["id"], "abc"]}),
    ]
    for expected, body in cases:
        status, answer = await api.post("/api/v1/reports", json=body)
        assert status == expected, (body, answer)
    # cedar (south) cannot attach birch's unlisted north post she cannot see
    status, _ = await rig.api("cedar").post("/api/v1/reports", json={"account_id": rig["birch"].id,
                                                                    "status_ids": [north_only["id"]]})
    assert status == 422
    assert await rig.count(Report) == 0 and await rig.count(Notification, Notification.kind == "admin.report") == 0
    assert (await rig.api().post("/api/v1/reports", json={"account_id": rig["cedar"].id}))[0] == 401


async def test_reports_to_api_renders_the_notification_field(rig):
    await set_role(rig, "dogwood", "admin")
    status, body = await rig.api("alder").post("/api/v1/reports", json={"account_id": rig["cedar"].id})
    assert status == 200
    note = (await rig.rows(Notification, Notification.kind == "admin.report"))[0]
    async with rig.sessionmaker() as session:
        rendered = await reports_to_api(session, [note.report_id], rig.base_url)
    assert rendered[note.report_id] == body
