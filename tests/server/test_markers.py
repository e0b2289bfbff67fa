"""Markers: saved per resident (JSON or form), versioned, private to their owner."""

from __future__ import annotations

from voisinage.models.markers import Marker


async def test_markers_persist_and_count_versions(rig):
    api = rig.api("alder")
    status, body = await api.get("/api/v1/markers", params=[("timeline[]", "home"), ("timeline[]", "notifications")])
    assert status == 200 and body == {}
    status, body = await api.post("/api/v1/markers", json={"home": {"last_read_id": "105"}})
    assert status == 200 and body["home"]["last_read_id"] == "105" and body["home"]["version"] == 1
    assert body["home"]["updated_at"].endswith("Z")
    status, body = await api.post("/api/v1/markers", data={"home[last_read_id]": "110",
                                                          "notifications[last_read_id]": "7"})
    assert status == 200 and body["home"]["version"] == 2 and body["notifications"]["version"] == 1
    status, body = await api.get("/api/v1/markers", params=[("timeline[]", "home"), ("timeline[]", "notifications")])
    assert body["home"]["last_read_id"] == "110" and body["notifications"]["last_read_id"] == "7"
    status, body = await api.get("/api/v1/markers", params={"timeline[]": "notifications"})
    assert set(body) == {"notifications"}
    # another resident sees none of alder's markers
    status, body = await rig.api("birch").get("/api/v1/markers", params={"timeline[]": "home"})
    assert status == 200 and body == {}
    assert (await rig.api().get("/api/v1/markers"))[0] == 401


async def test_bad_markers_store_nothing(rig):
    api = rig.api("alder")
    for body in ({}, {"home": {"last_read_id": "abc"}}, {"home": "12"}, {"home": {}},
                 {"public": {"last_read_id": "1"}}):
        status, _ = await api.post("/api/v1/markers", json=body)
        assert status == 422, body
    assert await rig.count(Marker) == 0
    await api.post("/api/v1/markers", json={"home": {"last_read_id": "5"}})
    status, _ = await api.post("/api/v1/markers", json={"home": {"last_read_id": "5"}, "notifications": {"last_read_id": "x"}})
    assert status == 422
    rows = await rig.rows(Marker)
    assert len(rows) == 1 and rows[0].version == 1
