"""Where one feature shows inside another: reports inside notifications, blocks inside who-favourited."""

from __future__ import annotations

from .test_reports import set_role


async def test_an_admin_report_notification_carries_the_report(rig):
    await set_role(rig, "dogwood", "admin")
    status, post = await rig.api("cedar").post("/api/v1/statuses", json={"status": "Annonce douteuse"})
    assert status == 200
    status, report = await rig.api("alder").post("/api/v1/reports", json={
        "account_id": rig["cedar"].id, "status_ids": [post["id"]], "comment": "arnaque", "category": "spam"})
    assert status == 200, report
    status, notes = await rig.api("dogwood").get("/api/v1/notifications", params={"types[]": "admin.report"})
    assert status == 200 and len(notes) == 1
    assert notes[0]["report"] == report
    assert notes[0]["account"]["username"] == "alder"


async def test_who_favourited_hides_accounts_blocked_either_way(rig):
    status, post = await rig.api("alder").post("/api/v1/statuses", json={"status": "Qui aime ?"})
    assert status == 200
    for who in ("birch", "cedar"):
        await rig.api(who).post(f"/api/v1/statuses/{post['id']}/favourite")
        await rig.api(who).post(f"/api/v1/statuses/{post['id']}/reblog")
    await rig.api("dogwood").post(f"/api/v1/accounts/{rig['cedar'].id}/block")
    _, favs = await rig.api("dogwood").get(f"/api/v1/statuses/{post['id']}/favourited_by")
    _, boosts = await rig.api("dogwood").get(f"/api/v1/statuses/{post['id']}/reblogged_by")
    assert [a["username"] for a in favs] == ["birch"]
    assert [a["username"] for a in boosts] == ["birch"]
    _, favs = await rig.api("alder").get(f"/api/v1/statuses/{post['id']}/favourited_by")
    assert sorted(a["username"] for a in favs) == ["birch", "cedar"]
