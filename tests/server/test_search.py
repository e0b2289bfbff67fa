"""Search v2: accounts, hashtags and statuses, never a status the caller may not see."""

from __future__ import annotations

from .test_visibility import post


async def search(rig, who, **params):
    status, body = await rig.api(who).get("/api/v2/search", params=params)
    assert status == 200, body
    return body


async def test_accounts_by_name_and_username(rig):
    body = await search(rig, "alder", q="cedre", type="accounts")
    assert [a["id"] for a in body["accounts"]] == [rig["cedar"].id]  # "Cèdre", accents folded
    body = await search(rig, "alder", q="dogw")
    assert rig["dogwood"].id in [a["id"] for a in body["accounts"]]
    body = await search(rig, "alder", q="@someone@elsewhere.example", resolve="true")
    assert body["accounts"] == []
    body = await search(rig, "alder", q="nord", type="accounts")
    assert str(rig.village_ids["north"]) in [a["id"] for a in body["accounts"]]


async def test_statuses_only_those_the_viewer_may_see(rig):
    public = await post(rig, "alder", "Marché aux puces dimanche")
    unlisted = await post(rig, "alder", "Marché du nord pour les voisins", visibility="unlisted")
    direct = await post(rig, "alder", "@birch marché secret", visibility="direct")
    await post(rig, "alder", "Autre chose")
    cedar = await search(rig, "cedar", q="marché", type="statuses")
    assert [s["id"] for s in cedar["statuses"]] == [public["id"]]
    birch = await search(rig, "birch", q="MARCHE", type="statuses")  # case and accents folded
    assert [s["id"] for s in birch["statuses"]] == [direct["id"], unlisted["id"], public["id"]]
    dogwood = await search(rig, "dogwood", q="marché nord")
    assert dogwood["statuses"] == []
    birch = await search(rig, "birch", q="marché nord")  # every word must appear
    assert [s["id"] for s in birch["statuses"]] == [unlisted["id"]]
    by_author = await search(rig, "birch", q="marché", account_id=rig["cedar"].id)
    assert by_author["statuses"] == []
    by_author = await search(rig, "birch", q="marché", account_id=rig["alder"].id)
    assert len(by_author["statuses"]) == 3
    paged = await search(rig, "birch", q="marché", type="statuses", limit="1", offset="1")
    assert [s["id"] for s in paged["statuses"]] == [unlisted["id"]]


async def test_hashtags(rig):
    await post(rig, "alder", "Vide-grenier #brocante")
    await post(rig, "cedar", "Secret #brocantesecrete", visibility="direct")
    body = await search(rig, "birch", q="#broc", type="hashtags")
    assert [t["name"] for t in body["hashtags"]] == ["brocante"]
    assert body["hashtags"][0]["history"] == [] and body["hashtags"][0]["url"].endswith("/tags/brocante")
    body = await search(rig, "birch", q="annon", type="hashtags")
    assert [t["name"] for t in body["hashtags"]] == ["annonce"]
    await post(rig, "alder", "Concert #Événement")
    body = await search(rig, "birch", q="even", type="hashtags")
    assert "evenement" in [t["name"] for t in body["hashtags"]]
    body = await search(rig, "birch", q="#évén", type="hashtags")
    assert "événement" in [t["name"] for t in body["hashtags"]]


async def test_bad_search_requests(rig):
    api = rig.api("alder")
    assert (await rig.api().get("/api/v2/search", params={"q": "x"}))[0] == 401
    assert (await api.get("/api/v2/search"))[0] == 422
    assert (await api.get("/api/v2/search", params={"q": "x", "type": "places"}))[0] == 422
    assert (await api.get("/api/v2/search", params={"q": "x", "limit": "abc"}))[0] == 422
    assert (await api.get("/api/v1/search", params={"q": "x"}))[0] == 404
