"""Timelines: home paging through Link headers, the commune / nearby feeds, category tag feeds."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from .test_visibility import post, shown_ids


def next_link(api: Any) -> str | None:
    link = api.last.headers.get("Link", "")
    for part in link.split(","):
        if 'rel="next"' in part:
            return part.split(">")[0].strip().lstrip("<")
    return None


def prev_link(api: Any) -> str | None:
    link = api.last.headers.get("Link", "")
    for part in link.split(","):
        if 'rel="prev"' in part:
            return part.split(">")[0].strip().lstrip("<")
    return None


async def page_through(rig: Any, who: str, path: str) -> tuple[list[str], list[str]]:
    """Follow `next` links to the end; returns the ids seen and the links followed."""
    api = rig.api(who)
    ids: list[str] = []
    links: list[str] = []
    url: str | None = path
    for _ in range(100):
        status, page = await api.get(url.replace(rig.base_url, ""))
        assert status == 200
        ids += [s["id"] for s in page]
        url = next_link(api)
        if url is None:
            return ids, links
        links.append(url)
    raise AssertionError("the Link header never stopped")


async def test_home_pages_back_through_fifty_statuses(rig):
    posted = [(await post(rig, "alder", f"Message {i}"))["id"] for i in range(50)]
    ids, links = await page_through(rig, "alder", "/api/v1/timelines/home?limit=7")
    assert len(ids) == 50 and len(set(ids)) == 50
    assert ids == sorted(posted, key=int, reverse=True)
    assert len(links) == 7  # 8 pages of at most 7; no next link after the last one
    assert all("limit=7" in link for link in links)
    # birch (north) sees the village's announces of them, as boosts, also 50 unique.
    ids, _ = await page_through(rig, "birch", "/api/v1/timelines/home?limit=40")
    assert len(ids) == 50 and len(set(ids)) == 50


async def test_home_min_id_and_since_id(rig):
    posted = [(await post(rig, "alder", f"M{i}"))["id"] for i in range(6)]
    api = rig.api("alder")
    status, page = await api.get("/api/v1/timelines/home", params={"min_id": posted[1], "limit": "2"})
    assert [s["id"] for s in page] == [posted[3], posted[2]]
    assert prev_link(api) is not None and f"min_id={posted[3]}" in prev_link(api)
    status, page = await api.get("/api/v1/timelines/home", params={"since_id": posted[3]})
    assert [s["id"] for s in page] == [posted[5], posted[4]]
    status, page = await api.get("/api/v1/timelines/home", params={"max_id": posted[0]})
    assert status == 200 and page == [] and next_link(api) is None


async def test_public_local_links_keep_local_true(rig):
    for i in range(5):
        await post(rig, "cedar" if i % 2 else "alder", f"Public {i}")
    ids, links = await page_through(rig, "dogwood", "/api/v1/timelines/public?local=true&limit=2")
    assert len(ids) == 5 and len(set(ids)) == 5
    assert links and all(parse_qs(urlsplit(link).query).get("local") == ["true"] for link in links)


async def test_public_feeds_show_originals_only_and_remote_is_empty_without_partners(rig):
    first = await post(rig, "alder", "Original")
    status, _ = await rig.api("cedar").post(f"/api/v1/statuses/{first['id']}/reblog")
    assert status == 200
    for params in ({}, {"local": "true"}):
        status, body = await rig.api("birch").get("/api/v1/timelines/public", params=params)
        assert status == 200 and [s["id"] for s in body] == [first["id"]]
    status, body = await rig.api("birch").get("/api/v1/timelines/public", params={"remote": "true"})
    assert status == 200 and body == []
    status, body = await rig.api("birch").get("/api/v1/timelines/public", params={"only_media": "true"})
    assert status == 200 and body == []


async def test_bad_paging_parameters_are_refused(rig):
    for params in ({"max_id": "abc"}, {"local": "perhaps"}, {"since_id": "-5"}):
        status, body = await rig.api("alder").get("/api/v1/timelines/public", params=params)
        assert status == 422 and "error" in body


async def test_category_feed_gathers_synonyms(rig):
    annonce = await post(rig, "alder", "Vélo à vendre #annonce")
    zoekertje = await post(rig, "cedar", "Fiets #Zoekertje")
    anzeige = await post(rig, "dogwood", "Fahrrad #Kleinanzeige")
    te_koop = await post(rig, "birch", "Boeken #te_koop")
    event = await post(rig, "alder", "Fête #Événement")
    other = await post(rig, "alder", "Rien à voir #jardin")
    ads = {annonce["id"], zoekertje["id"], anzeige["id"], te_koop["id"]}
    for tag in ("annonce", "zoekertje", "ANZEIGE", "forsale", "te_koop"):
        status, body = await rig.api("birch").get(f"/api/v1/timelines/tag/{tag}")
        assert status == 200 and {s["id"] for s in body} == ads, tag
    for tag in ("evenement", "événement", "Veranstaltung", "event"):
        status, body = await rig.api("cedar").get(f"/api/v1/timelines/tag/{tag}")
        assert {s["id"] for s in body} == {event["id"]}, tag
    status, body = await rig.api("cedar").get("/api/v1/timelines/tag/jardin")
    assert [s["id"] for s in body] == [other["id"]]
    status, body = await rig.api("cedar").get("/api/v1/timelines/tag/nothing_here")
    assert status == 200 and body == []


async def test_tag_feed_any_all_none_and_no_boosts(rig):
    both = await post(rig, "alder", "#annonce #evenement brocante")
    ad = await post(rig, "alder", "#annonce seul")
    help_ = await post(rig, "cedar", "#hulp gezocht")
    status, _ = await rig.api("birch").post(f"/api/v1/statuses/{ad['id']}/reblog")
    api = rig.api("dogwood")
    status, body = await api.get("/api/v1/timelines/tag/annonce", params={"any[]": ["aide"]})
    assert [s["id"] for s in body] == [help_["id"], ad["id"], both["id"]]
    assert all(s["reblog"] is None for s in body)
    status, body = await api.get("/api/v1/timelines/tag/annonce", params={"all[]": ["event"]})
    assert [s["id"] for s in body] == [both["id"]]
    status, body = await api.get("/api/v1/timelines/tag/annonce", params={"none[]": ["veranstaltung"]})
    assert [s["id"] for s in body] == [ad["id"]]
    status, body = await api.get("/api/v1/timelines/tag/aide", params={"local": "true"})
    assert [s["id"] for s in body] == [help_["id"]]


async def test_tag_feed_respects_visibility(rig):
    private = await post(rig, "alder", "#annonce pour mes abonnés", visibility="private")
    unlisted = await post(rig, "alder", "#annonce pour le village", visibility="unlisted")
    status, body = await rig.api("birch").get("/api/v1/timelines/tag/annonce")
    assert shown_ids(body) == {unlisted["id"]}
    status, body = await rig.api("cedar").get("/api/v1/timelines/tag/annonce")
    assert body == []
    status, body = await rig.api("alder").get("/api/v1/timelines/tag/annonce")
    assert shown_ids(body) == {unlisted["id"], private["id"]}


def test_canonical_folds_case_accents_and_synonyms():
    from voisinage.models.categories import CATEGORIES, canonical

    assert set(CATEGORIES) == {"annonce", "aide", "evenement", "perdu", "recommandation", "info"}
    expected = {"Zoekertje": "annonce", "te_koop": "annonce", "Kleinanzeige": "annonce", "forsale": "annonce",
                "hilfe": "aide", "HELP": "aide", "hulp": "aide", "Événement": "evenement",
                "evenementen": "evenement", "Veranstaltung": "evenement", "trouvé": "perdu",
                "Gefunden": "perdu", "lost": "perdu", "Empfehlung": "recommandation", "tip": "recommandation",
                "Gemeente": "info", "mededeling": "info", "Café": "cafe", "jardin": "jardin"}
    for tag, category in expected.items():
        assert canonical(tag) == category, tag


async def test_odd_tags_answer_empty_not_errors(rig):
    await post(rig, "alder", "#annonce")
    for tag in ("%00", "x" * 300, "%23annonce", "caf%C3%A9"):
        status, body = await rig.api("birch").get(f"/api/v1/timelines/tag/{tag}")
        assert status == 200 and isinstance(body, list), tag
    status, body = await rig.api("birch").get("/api/v1/timelines/tag/%23annonce")
    assert len(body) == 1
    status, body = await rig.api("birch").get("/api/v1/timelines/tag/x", params={"any[]": "a\x00b"})
    assert status == 200 and body == []


async def test_home_fills_its_pages_past_many_hidden_rows(rig):
    """The home page is read from the home rows in batches: when the newest rows are all hidden (a mute
    since the fan-out), later batches still fill the page, and paging goes on to the end."""
    mine = []
    for i in range(7):
        status, body = await rig.api("birch").post("/api/v1/statuses", json={"status": f"birch {i}"})
        assert status == 200
        mine.append(body["id"])
    for i in range(60):
        assert (await rig.api("alder").post("/api/v1/statuses", json={"status": f"alder {i}"}))[0] == 200
    assert (await rig.api("birch").post(f"/api/v1/accounts/{rig['alder'].id}/mute"))[0] == 200
    seen: list[str] = []
    params: dict[str, str] = {"limit": "3"}
    for _ in range(5):
        status, page = await rig.api("birch").get("/api/v1/timelines/home", params=params)
        assert status == 200
        assert all((s["reblog"] or s)["account"]["id"] != rig["alder"].id for s in page)
        seen += [s["id"] for s in page]
        if len(page) < 3:
            break
        params = {"limit": "3", "max_id": page[-1]["id"]}
    assert seen == list(reversed(mine))
    # and upwards from the oldest: min_id pages come in order too
    status, page = await rig.api("birch").get("/api/v1/timelines/home", params={"limit": "2", "min_id": mine[0]})
    assert [s["id"] for s in page] == [mine[2], mine[1]]
