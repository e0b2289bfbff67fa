"""Filters v2 and v1: CRUD, privacy, validation, and filtering (warn, hide, expiry, whole words)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import update

from voisinage.models.db import write_session
from voisinage.models.events import Event
from voisinage.models.filters import Filter, FilterKeyword, FilterStatus
from voisinage.server.keys import EVENT_BUS
from voisinage.server.services.filtering import apply_filters

from .test_lists import follow, make_list
from .test_visibility import post


async def create_filter(rig: Any, who: str, **fields: Any) -> dict[str, Any]:
    body = {"title": "Bruit", "context": ["home", "public"], **fields}
    status, created = await rig.api(who).post("/api/v2/filters", json=body)
    assert status == 200, created
    return created


async def list_timeline_of(rig: Any, who: str, member: str) -> str:
    """A list of `who` with `member` in it; returns the list timeline's path."""
    await follow(rig, who, member)
    item = await make_list(rig, who)
    await rig.api(who).post(f"/api/v1/lists/{item['id']}/accounts", json={"account_ids": [rig[member].id]})
    return f"/api/v1/timelines/list/{item['id']}"


async def test_v2_crud_keywords_statuses_and_privacy(rig):
    api = rig.api("alder")
    created = await create_filter(rig, "alder", filter_action="hide", expires_in=3600,
                                  keywords_attributes=[{"keyword": "chat", "whole_word": True},
                                                       {"keyword": "vélo", "whole_word": False}])
    assert created["filter_action"] == "hide" and created["context"] == ["home", "public"]
    assert created["expires_at"] is not None
    assert [(k["keyword"], k["whole_word"]) for k in created["keywords"]] == [("chat", True), ("vélo", False)]
    fid = created["id"]
    chat_id = created["keywords"][0]["id"]
    status, body = await api.put(f"/api/v2/filters/{fid}", json={
        "title": "Moins de bruit", "context": ["thread"], "expires_in": "",
        "keywords_attributes": [{"id": chat_id, "_destroy": True}, {"keyword": "chien"}]})
    assert status == 200 and body["title"] == "Moins de bruit" and body["context"] == ["thread"]
    assert body["expires_at"] is None
    assert sorted(k["keyword"] for k in body["keywords"]) == ["chien", "vélo"]
    status, kw = await api.post(f"/api/v2/filters/{fid}/keywords", json={"keyword": "pluie", "whole_word": False})
    assert status == 200 and kw["whole_word"] is False
    status, kw = await api.put(f"/api/v2/filter_keywords/{kw['id']}", json={"keyword": "orage"})
    assert status == 200 and kw["keyword"] == "orage"
    assert (await api.get(f"/api/v2/filter_keywords/{kw['id']}"))[1]["keyword"] == "orage"
    assert len((await api.get(f"/api/v2/filters/{fid}/keywords"))[1]) == 3
    status, _ = await api.delete(f"/api/v2/filter_keywords/{kw['id']}")
    assert status == 200 and await rig.count(FilterKeyword) == 2
    mine = await post(rig, "alder", "Un statut")
    status, item = await api.post(f"/api/v2/filters/{fid}/statuses", json={"status_id": mine["id"]})
    assert status == 200 and item["status_id"] == mine["id"]
    assert (await api.get(f"/api/v2/filter_statuses/{item['id']}"))[1]["status_id"] == mine["id"]
    assert [s["id"] for s in (await api.get(f"/api/v2/filters/{fid}/statuses"))[1]] == [item["id"]]
    # nobody else sees or changes any of it
    other = rig.api("birch")
    assert (await other.get("/api/v2/filters"))[1] == []
    for method, path in (("GET", f"/api/v2/filters/{fid}"), ("PUT", f"/api/v2/filters/{fid}"),
                         ("DELETE", f"/api/v2/filters/{fid}"), ("GET", f"/api/v2/filters/{fid}/keywords"),
                         ("POST", f"/api/v2/filters/{fid}/keywords"),
                         ("GET", f"/api/v2/filter_keywords/{chat_id}"),
                         ("DELETE", f"/api/v2/filter_statuses/{item['id']}"),
                         ("GET", f"/api/v2/filter_statuses/{item['id']}"),
                         ("POST", f"/api/v2/filters/{fid}/statuses")):
        status, _ = await other.call(method, path, json={"keyword": "x", "title": "x", "status_id": mine["id"]})
        assert status == 404, (method, path)
    assert await rig.count(FilterKeyword) == 2 and await rig.count(FilterStatus) == 1
    assert (await rig.rows(Filter))[0].title == "Moins de bruit"
    assert (await rig.api().get("/api/v2/filters"))[0] == 401
    status, _ = await api.delete(f"/api/v2/filter_statuses/{item['id']}")
    assert status == 200 and await rig.count(FilterStatus) == 0
    status, _ = await api.delete(f"/api/v2/filters/{fid}")
    assert status == 200 and await rig.count(Filter) == 0 and await rig.count(FilterKeyword) == 0


async def test_bad_filter_input_stores_nothing(rig):
    api = rig.api("alder")
    bad = [{"context": ["home"]}, {"title": "T"}, {"title": "T", "context": []}, {"title": "T", "context": ["lol"]},
           {"title": " ", "context": ["home"]}, {"title": "T", "context": ["home"], "filter_action": "burn"},
           {"title": "T", "context": ["home"], "expires_in": "soon"},
           {"title": "T", "context": ["home"], "keywords_attributes": [{"keyword": ""}]},
           {"title": "T", "context": ["home"], "keywords_attributes": [{"keyword": "x" * 201}]}]
    for body in bad:
        status, _ = await api.post("/api/v2/filters", json=body)
        assert status == 422, body
    assert await rig.count(Filter) == 0 and await rig.count(FilterKeyword) == 0
    created = await create_filter(rig, "alder", keywords_attributes=[{"keyword": "chat"}])
    fid = created["id"]
    assert (await api.put(f"/api/v2/filters/{fid}", json={"context": ["nowhere"]}))[0] == 422
    assert (await api.put(f"/api/v2/filters/{fid}", json={"keywords_attributes": [{"id": "1"}]}))[0] == 404
    assert (await api.post(f"/api/v2/filters/{fid}/keywords", json={}))[0] == 422
    assert (await api.post(f"/api/v2/filters/{fid}/statuses", json={"status_id": "123"}))[0] == 404
    assert (await api.get("/api/v2/filters/999"))[0] == 404
    row = (await rig.rows(Filter))[0]
    assert row.contexts == ["home", "public"] and await rig.count(FilterKeyword) == 1
    assert await rig.count(FilterStatus) == 0
    # a status alder may not see cannot be filtered by id either
    secret = await post(rig, "cedar", "@dogwood entre nous", visibility="direct")
    assert (await api.post(f"/api/v2/filters/{fid}/statuses", json={"status_id": secret["id"]}))[0] == 404
    assert await rig.count(FilterStatus) == 0


async def test_warn_hide_and_expiry_on_a_list_timeline(rig):
    path = await list_timeline_of(rig, "alder", "cedar")
    cat = await post(rig, "cedar", "<b>Mon Chat</b> est perdu")
    word_inside = await post(rig, "cedar", "Un chaton à donner")
    bike = await post(rig, "cedar", "Rien", spoiler_text="vélo volé")
    plain = await post(rig, "cedar", "Bonne journée")
    warn = await create_filter(rig, "alder", keywords_attributes=[{"keyword": "chat", "whole_word": True}])
    hide = await create_filter(rig, "alder", title="Vélos", filter_action="hide",
                               keywords_attributes=[{"keyword": "VÉLO", "whole_word": False}])
    status, page = await rig.api("alder").get(path)
    assert status == 200
    by_id = {s["id"]: s for s in page}
    assert bike["id"] not in by_id  # hidden (the content warning matched, case-insensitively)
    assert set(by_id) == {cat["id"], word_inside["id"], plain["id"]}
    result = by_id[cat["id"]]["filtered"]
    assert [r["filter"]["id"] for r in result] == [warn["id"]] and result[0]["keyword_matches"] == ["chat"]
    assert result[0]["filter"]["filter_action"] == "warn"
    assert by_id[word_inside["id"]]["filtered"] == []  # whole word: "chaton" is not "chat"
    assert by_id[plain["id"]]["filtered"] == []
    # birch has no filters: same statuses, unfiltered, in her own list
    path_b = await list_timeline_of(rig, "birch", "cedar")
    status, page = await rig.api("birch").get(path_b)
    assert bike["id"] in {s["id"] for s in page} and all(s["filtered"] == [] for s in page)
    # expired filters do nothing; a filter outside the context does nothing
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(Filter).where(Filter.id == int(hide["id"]))
                              .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    status, _ = await rig.api("alder").put(f"/api/v2/filters/{warn['id']}", json={"context": ["notifications"]})
    assert status == 200
    status, page = await rig.api("alder").get(path)
    assert bike["id"] in {s["id"] for s in page} and all(s["filtered"] == [] for s in page)


async def test_status_filters_and_boosts_match(rig):
    original = await post(rig, "alder", "Fête du village")
    other = await post(rig, "alder", "Autre chose")
    status, boost = await rig.api("cedar").post(f"/api/v1/statuses/{original['id']}/reblog")
    assert status == 200
    flt = await create_filter(rig, "dogwood", keywords_attributes=[{"keyword": "fête"}])
    item = await create_filter(rig, "dogwood", title="Ce statut")
    await rig.api("dogwood").post(f"/api/v2/filters/{item['id']}/statuses", json={"status_id": other["id"]})
    async with rig.sessionmaker() as session:
        rendered = [dict(boost), dict(other), dict(original)]
        out = await apply_filters(session, rig["dogwood"].actor_id, rendered, "home")
    assert [r["filter"]["id"] for r in out[0]["filtered"]] == [flt["id"]]  # through the boost
    assert out[1]["filtered"][0]["status_matches"] == [other["id"]]
    assert out[1]["filtered"][0]["keyword_matches"] is None
    assert out[2]["filtered"][0]["keyword_matches"] == ["fête"]
    # accent-sensitive, as Mastodon: "fete" does not match "Fête"
    kw = (await rig.rows(FilterKeyword, FilterKeyword.filter_id == int(flt["id"])))[0]
    assert kw.keyword == "fête"
    status, _ = await rig.api("dogwood").put(f"/api/v2/filter_keywords/{kw.id}", json={"keyword": "fete"})
    assert status == 200
    async with rig.sessionmaker() as session:
        out = await apply_filters(session, rig["dogwood"].actor_id, [dict(original)], "home")
    assert out[0]["filtered"] == []


async def test_v1_filters_are_keywords(rig):
    api = rig.api("alder")
    status, v1 = await api.post("/api/v1/filters", json={"phrase": "travaux", "context": ["home"],
                                                          "irreversible": True, "whole_word": False})
    assert status == 200 and v1["phrase"] == "travaux" and v1["irreversible"] is True and v1["whole_word"] is False
    status, v2 = await api.get("/api/v2/filters")
    assert v2[0]["title"] == "travaux" and v2[0]["filter_action"] == "hide"
    assert v2[0]["keywords"][0]["id"] == v1["id"]
    status, body = await api.put(f"/api/v1/filters/{v1['id']}", json={"phrase": "chantier", "irreversible": False,
                                                                       "context": ["home", "thread"]})
    assert status == 200 and body["phrase"] == "chantier" and body["irreversible"] is False
    assert body["context"] == ["home", "thread"]
    assert [f["id"] for f in (await api.get("/api/v1/filters"))[1]] == [v1["id"]]
    assert (await rig.api("birch").get(f"/api/v1/filters/{v1['id']}"))[0] == 404
    assert (await rig.api("birch").delete(f"/api/v1/filters/{v1['id']}"))[0] == 404
    for bad in ({"context": ["home"]}, {"phrase": "x"}, {"phrase": "x", "context": ["bad"]},
                {"phrase": "x", "context": ["home"], "irreversible": "perhaps"}):
        assert (await api.post("/api/v1/filters", json=bad))[0] == 422, bad
    assert await rig.count(Filter) == 1
    # a filter with two keywords cannot change its settings through v1
    await api.post(f"/api/v2/filters/{v2[0]['id']}/keywords", json={"keyword": "grue"})
    assert (await api.put(f"/api/v1/filters/{v1['id']}", json={"irreversible": True}))[0] == 422
    assert (await rig.rows(Filter))[0].action == "warn"
    status, _ = await api.delete(f"/api/v1/filters/{v1['id']}")
    assert status == 200 and await rig.count(Filter) == 1 and await rig.count(FilterKeyword) == 1
    last = (await api.get("/api/v1/filters"))[1][0]
    await api.delete(f"/api/v1/filters/{last['id']}")
    assert await rig.count(Filter) == 0


async def test_changes_publish_filters_changed_to_the_owner(rig):
    bus = rig.app[EVENT_BUS]
    sub = bus.subscribe()
    try:
        created = await create_filter(rig, "alder")
        event: Event = await asyncio.wait_for(sub.queue.get(), 5)
        assert event.kind == "filters_changed" and event.audience == (rig["alder"].actor_id,)
        assert event.object_id == int(created["id"])
        status, _ = await rig.api("alder").post("/api/v2/filters", json={"title": "x", "context": ["nope"]})
        assert status == 422 and sub.queue.empty()
    finally:
        bus.unsubscribe(sub)
