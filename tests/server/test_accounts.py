"""The accounts API: own profile (verify/update credentials), other accounts, their statuses, lookup, search.

Posts are inserted as rows (with the audience fields models/post.py documents), so these tests do not
depend on the posting service.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from voisinage.models.actor import Actor
from voisinage.models.base import utcnow
from voisinage.models.categories import canonical
from voisinage.models.db import write_session
from voisinage.models.ids import new_id
from voisinage.models.post import (
    DIRECT,
    PRIVATE,
    PUBLIC,
    UNLISTED,
    Mention,
    Post,
    PostTag,
)
from voisinage.models.resident import Resident
from voisinage.models.uris import announce_uri

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- helpers shared with test_relationships.py -------------------------------------------------------

def actor_id_of(rig: Any, who: str) -> int:
    """A resident of the cast by name, or a village by slug."""
    return rig[who].actor_id if who in rig.people else rig.village_ids[who]


async def insert_post(rig: Any, author: str, *, visibility: str = PUBLIC, text: str = "bonjour",
                      reply_to: int | None = None, tags: tuple[str, ...] = (),
                      mentions: tuple[str, ...] = ()) -> int:
    """A post row as the posting service would store it (audience: the author's village, if any)."""
    author_id = actor_id_of(rig, author)
    async with write_session(rig.sessionmaker) as session:
        actor = await session.get(Actor, author_id)
        audience = None
        if visibility in (PUBLIC, UNLISTED):
            audience = rig.village_ids[rig[author].village]
        parent = await session.get(Post, reply_to) if reply_to else None
        post_id = new_id()
        session.add(Post(id=post_id, uri=f"{actor.uri}/statuses/{post_id}", url=f"{actor.uri}/statuses/{post_id}",
                         author_id=author_id, local=True, visibility=visibility, audience_id=audience,
                         origin_author_id=author_id, content=f"<p>{text}</p>", source=text,
                         in_reply_to_id=reply_to, in_reply_to_account_id=parent.author_id if parent else None))
        await session.flush()
        for tag in tags:
            session.add(PostTag(post_id=post_id, name=tag, canonical=canonical(tag)))
        for name in mentions:
            session.add(Mention(post_id=post_id, actor_id=actor_id_of(rig, name)))
    return post_id


async def insert_boost(rig: Any, booster: str, post_id: int) -> int:
    """A boost row (a village's Announce, or a resident's reblog) carrying the original's audience."""
    booster_id = actor_id_of(rig, booster)
    async with write_session(rig.sessionmaker) as session:
        actor = await session.get(Actor, booster_id)
        original = await session.get(Post, post_id)
        boost_id = new_id()
        session.add(Post(id=boost_id, uri=announce_uri(actor.uri, boost_id), author_id=booster_id, local=True,
                         visibility=original.visibility, audience_id=original.audience_id,
                         origin_author_id=original.author_id, reblog=True, reblog_of_id=post_id))
    return boost_id


async def post_and_announce(rig: Any, author: str, **kw: Any) -> tuple[int, int]:
    """A resident's post and its home village's announce of it."""
    post_id = await insert_post(rig, author, **kw)
    return post_id, await insert_boost(rig, rig[author].village, post_id)


def local_path(url: str) -> str:
    """A URL of the instance under test, as a path the test client can call."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def next_link(header: str | None) -> str | None:
    """The `rel="next"` URL of a Link header, if any."""
    for part in (header or "").split(","):
        if 'rel="next"' in part:
            return local_path(part.split(";")[0].strip()[1:-1])
    return None


async def profile_snapshot(rig: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Everything update_credentials may change, as stored."""
    actor_id = rig[name].actor_id
    async with rig.sessionmaker() as session:
        actor = await session.get(Actor, actor_id)
        resident = await session.get(Resident, actor_id)
        return ({k: getattr(actor, k) for k in ("display_name", "note", "note_source", "fields", "locked",
                                                "discoverable", "bot", "avatar_url", "header_url")},
                {k: getattr(resident, k) for k in ("default_visibility", "default_sensitive",
                                                   "default_language", "locale")})


# -- verify_credentials --------------------------------------------------------------------------

async def test_verify_credentials_shows_the_verified_profile(rig):
    status, me = await rig.api("alder").get("/api/v1/accounts/verify_credentials")
    assert status == 200
    assert me["id"] == rig["alder"].id and isinstance(me["id"], str)
    assert (me["username"], me["acct"], me["display_name"]) == ("alder", "alder", "Alder Aulne")
    assert me["group"] is False and me["locked"] is False and me["bot"] is False
    assert me["following_count"] == 1 and me["followers_count"] == 0  # the home village
    village = me["fields"][0]
    assert (village["name"], village["value"]) == ("Village", "Nord") and village["verified_at"]
    source = me["source"]
    assert source["privacy"] == "public" and source["sensitive"] is False
    assert source["note"] == "" and source["follow_requests_count"] == 0
    assert source["fields"][0]["name"] == "Village" and source["fields"][0]["verified_at"]
    for key in ("avatar", "avatar_static", "header", "header_static"):
        assert me[key].startswith("https://a.test/")


async def test_default_avatar_and_header_are_real_png_images(rig):
    _, me = await rig.api("alder").get("/api/v1/accounts/verify_credentials")
    for key in ("avatar", "header"):
        response = await rig.client.get(local_path(me[key]))
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert (await response.read()).startswith(PNG_SIGNATURE)


async def test_verify_credentials_needs_a_token(rig):
    status, body = await rig.api().get("/api/v1/accounts/verify_credentials")
    assert status == 401 and "error" in body


async def test_follow_requests_count_counts_pending_requests(rig):
    await rig.api("birch").patch("/api/v1/accounts/update_credentials", json={"locked": True})
    await rig.api("cedar").post(f"/api/v1/accounts/{rig['birch'].id}/follow")
    _, me = await rig.api("birch").get("/api/v1/accounts/verify_credentials")
    assert me["source"]["follow_requests_count"] == 1 and me["locked"] is True


# -- other accounts --------------------------------------------------------------------------------

async def test_a_village_account_is_a_locked_group(rig):
    status, village = await rig.api("cedar").get(f"/api/v1/accounts/{rig.village_ids['north']}")
    assert status == 200
    assert village["group"] is True and village["locked"] is True
    assert (village["username"], village["acct"], village["display_name"]) == ("north", "north", "Nord")
    assert village["followers_count"] == 2  # alder and birch, its members
    assert village["avatar"].endswith("/static/avatar.png")


async def test_get_account_of_a_resident(rig):
    status, account = await rig.api("cedar").get(f"/api/v1/accounts/{rig['alder'].id}")
    assert status == 200
    assert account["id"] == rig["alder"].id and account["group"] is False
    assert "source" not in account


@pytest.mark.parametrize("bad_id", ["123", "abc", "99999999999999999999"])
async def test_unknown_account_is_404(rig, bad_id):
    status, body = await rig.api("alder").get(f"/api/v1/accounts/{bad_id}")
    assert status == 404 and body["error"]


async def test_suspended_account_is_404(rig):
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(Actor).where(Actor.id == rig["dogwood"].actor_id).values(suspended_at=utcnow()))
    status, _ = await rig.api("alder").get(f"/api/v1/accounts/{rig['dogwood'].id}")
    assert status == 404
    status, _ = await rig.api("alder").get(f"/api/v1/accounts/{rig['dogwood'].id}/statuses")
    assert status == 404


# -- update_credentials: each parameter --------------------------------------------------------------

async def test_update_display_name_and_note(rig):
    note = "Jardinier à Nord.\nJe prête ma tondeuse: https://example.org/tondeuse.\n\n<script>alert(1)</script>"
    status, me = await rig.api("alder").patch("/api/v1/accounts/update_credentials",
                                              json={"display_name": "  Alder   Aulne-Dupont ", "note": note})
    assert status == 200
    assert me["display_name"] == "Alder Aulne-Dupont"
    assert me["source"]["note"] == note
    assert "<script>" not in me["note"] and "&lt;script&gt;" in me["note"]
    assert '<a href="https://example.org/tondeuse"' in me["note"] and "<br>" in me["note"]
    assert 'rel="nofollow noopener noreferrer"' in me["note"]
    assert me["note"].count("<p>") == 2
    actor, _ = await profile_snapshot(rig, "alder")
    assert actor["display_name"] == "Alder Aulne-Dupont" and actor["note_source"] == note


async def test_update_flags_source_and_locale_with_a_form(rig):
    status, me = await rig.api("alder").patch("/api/v1/accounts/update_credentials", data={
        "locked": "true", "discoverable": "false", "bot": "true", "source[privacy]": "unlisted",
        "source[sensitive]": "1", "source[language]": "nl", "locale": "de"})
    assert status == 200
    assert me["locked"] is True and me["discoverable"] is False and me["bot"] is False
    assert me["source"]["privacy"] == "unlisted" and me["source"]["sensitive"] is True
    assert me["source"]["language"] == "nl"
    actor, resident = await profile_snapshot(rig, "alder")
    assert actor["locked"] is True and actor["discoverable"] is False and actor["bot"] is False
    assert resident == {"default_visibility": "unlisted", "default_sensitive": True,
                        "default_language": "nl", "locale": "de"}


async def test_update_source_as_json_object(rig):
    status, me = await rig.api("birch").patch("/api/v1/accounts/update_credentials",
                                              json={"source": {"privacy": "private", "sensitive": False}})
    assert status == 200 and me["source"]["privacy"] == "private"
    _, resident = await profile_snapshot(rig, "birch")
    assert resident["default_visibility"] == "private"


async def test_update_fields_as_a_list_keeps_the_village_field_first(rig):
    fields = [{"name": "Village", "value": "Nord"}, {"name": "Métier", "value": "Menuisier"},
              {"name": "Site", "value": "https://alder.example"}, {"name": "", "value": ""}]
    status, me = await rig.api("alder").patch("/api/v1/accounts/update_credentials",
                                              json={"fields_attributes": fields})
    assert status == 200
    assert [f["name"] for f in me["fields"]] == ["Village", "Métier", "Site"]
    assert me["fields"][0]["verified_at"] and me["fields"][1]["verified_at"] is None
    assert '<a href="https://alder.example"' in me["fields"][2]["value"]
    assert me["source"]["fields"][2]["value"] == "alder.example"  # the text, as apps edit it


async def test_update_fields_as_rails_form_indexes(rig):
    status, me = await rig.api("alder").patch("/api/v1/accounts/update_credentials", data={
        "fields_attributes[0][name]": "Village", "fields_attributes[0][value]": "Nord",
        "fields_attributes[1][name]": "Hobby", "fields_attributes[1][value]": "Vélo"})
    assert status == 200
    assert [(f["name"], f["value"]) for f in me["fields"]] == [("Village", "Nord"), ("Hobby", "Vélo")]
    actor, _ = await profile_snapshot(rig, "alder")
    assert actor["fields"][1] == {"name": "Hobby", "value": "Vélo", "verified_at": None}


async def test_update_fields_ignores_a_claimed_verified_at(rig):
    fields = {"0": {"name": "Village", "value": "Nord"},
              "1": {"name": "Maire", "value": "oui", "verified_at": "2024-01-01T00:00:00.000Z"}}
    status, me = await rig.api("alder").patch("/api/v1/accounts/update_credentials",
                                              json={"fields_attributes": fields})
    assert status == 200 and me["fields"][1]["verified_at"] is None


async def test_clearing_the_note(rig):
    await rig.api("alder").patch("/api/v1/accounts/update_credentials", json={"note": "Bonjour"})
    status, me = await rig.api("alder").patch("/api/v1/accounts/update_credentials", json={"note": ""})
    assert status == 200 and me["note"] == "" and me["source"]["note"] == ""


# -- update_credentials: each bad input changes nothing --------------------------------------------

FIVE_FIELDS = [{"name": "Village", "value": "Nord"}] + [{"name": f"F{i}", "value": "x"} for i in range(4)]

BAD_UPDATES = {
    "blank display name": {"display_name": "   "},
    "101 chars": {"display_name": "a" * 101},
    "display name not a string": {"display_name": ["Alder"]},
    "note too long": {"note": "n" * 501},
    "five fields": {"fields_attributes": FIVE_FIELDS},
    "village field dropped": {"fields_attributes": [{"name": "Métier", "value": "Menuisier"}]},
    "village field edited": {"fields_attributes": [{"name": "Village", "value": "Sud"}]},
    "village field renamed": {"fields_attributes": [{"name": "Quartier", "value": "Nord"}]},
    "second village field": {"fields_attributes": [{"name": "Village", "value": "Nord"},
                                                   {"name": "village", "value": "Sud"}]},
    "fields not a list": {"fields_attributes": "Village: Nord"},
    "field not an object": {"fields_attributes": ["Village"]},
    "field value too long": {"fields_attributes": [{"name": "Village", "value": "Nord"},
                                                   {"name": "x", "value": "v" * 256}]},
    "bad privacy": {"source": {"privacy": "everyone"}},
    "privacy not a string": {"source": {"privacy": 3.5}},
    "source not an object": {"source": "public"},
    "bad sensitive": {"source": {"sensitive": "maybe"}},
    "bad language": {"source": {"language": "french!"}},
    "bad locked": {"locked": "perhaps"},
    "bad discoverable": {"discoverable": [True]},
    "bad locale": {"locale": "xx"},
    "good name, bad privacy": {"display_name": "Someone Else", "source": {"privacy": "world"}},
    "good note, five fields": {"note": "changed", "fields_attributes": FIVE_FIELDS},
}


@pytest.mark.parametrize("body", BAD_UPDATES.values(), ids=list(BAD_UPDATES))
async def test_bad_update_is_422_and_changes_nothing(rig, body):
    before = await profile_snapshot(rig, "alder")
    status, answer = await rig.api("alder").patch("/api/v1/accounts/update_credentials", json=body)
    assert status == 422, answer
    assert answer["error"].startswith("Validation failed")
    assert await profile_snapshot(rig, "alder") == before


async def test_a_broken_avatar_is_refused_and_changes_nothing(rig):
    import aiohttp

    before = await profile_snapshot(rig, "alder")
    form = aiohttp.FormData()
    form.add_field("display_name", "Changed Name")
    form.add_field("avatar", b"\x89PNG\r\n\x1a\nxx", filename="me.png", content_type="image/png")
    status, answer = await rig.api("alder").patch("/api/v1/accounts/update_credentials", data=form)
    assert status == 422 and "avatar" in answer["error"]
    assert await profile_snapshot(rig, "alder") == before


def _photo(size: tuple[int, int], gps: bool = False) -> bytes:
    import io

    from PIL import Image

    image = Image.new("RGB", size, "orange")
    exif = Image.Exif()
    if gps:
        exif[0x8825] = {1: "N", 2: (50.0, 35.0, 0.0)}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


async def test_avatar_and_header_uploads_are_cropped_and_stripped(rig):
    import io

    import aiohttp
    from PIL import Image

    form = aiohttp.FormData()
    form.add_field("display_name", "Alder Aulne")
    form.add_field("source[privacy]", "unlisted")
    form.add_field("avatar", _photo((900, 600), gps=True), filename="me.jpg", content_type="image/jpeg")
    form.add_field("header", _photo((2000, 1000)), filename="top.jpg", content_type="image/jpeg")
    status, account = await rig.api("alder").patch("/api/v1/accounts/update_credentials", data=form)
    assert status == 200, account
    assert account["source"]["privacy"] == "unlisted"
    for key, size in (("avatar", (400, 400)), ("header", (1500, 500))):
        url = account[key]
        assert "/media/" in url and account[f"{key}_static"] == url
        async with rig.client.get(url.replace(rig.base_url, "")) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "image/jpeg"
            image = Image.open(io.BytesIO(await response.read()))
        assert image.size == size
        assert 0x8825 not in image.getexif()
    status, seen = await rig.api("cedar").get(f"/api/v1/accounts/{rig['alder'].id}")
    assert seen["avatar"] == account["avatar"]


async def test_a_bad_field_with_a_good_avatar_changes_nothing(rig):
    import aiohttp

    before = await profile_snapshot(rig, "alder")
    form = aiohttp.FormData()
    form.add_field("display_name", " ")
    form.add_field("avatar", _photo((500, 500)), filename="me.jpg", content_type="image/jpeg")
    status, _ = await rig.api("alder").patch("/api/v1/accounts/update_credentials", data=form)
    assert status == 422
    assert await profile_snapshot(rig, "alder") == before


async def test_update_credentials_needs_the_write_scope(rig):
    token = await rig.token_for(rig["alder"].actor_id, scopes="read")
    before = await profile_snapshot(rig, "alder")
    status, _ = await rig.api().patch("/api/v1/accounts/update_credentials", json={"display_name": "X Y"},
                                      headers={"Authorization": f"Bearer {token}"})
    assert status == 403
    assert await profile_snapshot(rig, "alder") == before


# -- account statuses ------------------------------------------------------------------------------

async def test_village_statuses_follow_the_visibility_rule(rig):
    public, public_announce = await post_and_announce(rig, "alder", visibility=PUBLIC, text="public")
    unlisted, unlisted_announce = await post_and_announce(rig, "alder", visibility=UNLISTED, text="village only")
    north = rig.village_ids["north"]
    status, seen_by_birch = await rig.api("birch").get(f"/api/v1/accounts/{north}/statuses")
    assert status == 200
    assert [s["id"] for s in seen_by_birch] == [str(unlisted_announce), str(public_announce)]
    assert seen_by_birch[0]["reblog"]["id"] == str(unlisted)
    assert seen_by_birch[0]["account"]["group"] is True
    _, seen_by_cedar = await rig.api("cedar").get(f"/api/v1/accounts/{north}/statuses")
    assert [s["id"] for s in seen_by_cedar] == [str(public_announce)]
    assert seen_by_cedar[0]["reblog"]["id"] == str(public)


async def test_resident_statuses_hide_what_the_viewer_may_not_see(rig):
    public = await insert_post(rig, "alder", visibility=PUBLIC)
    unlisted = await insert_post(rig, "alder", visibility=UNLISTED)
    private = await insert_post(rig, "alder", visibility=PRIVATE)
    await insert_post(rig, "alder", visibility=DIRECT, mentions=("cedar",))
    path = f"/api/v1/accounts/{rig['alder'].id}/statuses"
    _, by_birch = await rig.api("birch").get(path)
    assert [s["id"] for s in by_birch] == [str(unlisted), str(public)]
    _, by_cedar = await rig.api("cedar").get(path)
    assert [s["id"] for s in by_cedar] == [str(public)]
    _, by_alder = await rig.api("alder").get(path)
    assert [s["id"] for s in by_alder] == [str(private), str(unlisted), str(public)]


async def test_exclude_replies_and_exclude_reblogs(rig):
    first = await insert_post(rig, "birch", text="question")
    own = await insert_post(rig, "alder", text="start")
    reply = await insert_post(rig, "alder", text="answer", reply_to=first)
    thread = await insert_post(rig, "alder", text="continued", reply_to=own)
    boost = await insert_boost(rig, "alder", first)
    path = f"/api/v1/accounts/{rig['alder'].id}/statuses"
    _, everything = await rig.api("birch").get(path)
    assert [s["id"] for s in everything] == [str(boost), str(thread), str(reply), str(own)]
    _, no_replies = await rig.api("birch").get(path, params={"exclude_replies": "true"})
    assert [s["id"] for s in no_replies] == [str(boost), str(thread), str(own)]
    _, no_boosts = await rig.api("birch").get(path, params={"exclude_reblogs": "1"})
    assert [s["id"] for s in no_boosts] == [str(thread), str(reply), str(own)]
    _, neither = await rig.api("birch").get(path, params={"exclude_replies": "true", "exclude_reblogs": "true"})
    assert [s["id"] for s in neither] == [str(thread), str(own)]


async def test_only_media_pinned_and_tagged(rig):
    tagged = await insert_post(rig, "alder", tags=("annonce",))
    synonym = await insert_post(rig, "alder", tags=("zoekertje",))
    await insert_post(rig, "alder", tags=("aide",))
    await insert_post(rig, "alder")
    path = f"/api/v1/accounts/{rig['alder'].id}/statuses"
    _, by_tag = await rig.api("birch").get(path, params={"tagged": "Annonce"})
    assert [s["id"] for s in by_tag] == [str(synonym), str(tagged)]
    _, by_synonym = await rig.api("birch").get(path, params={"tagged": "#forsale"})
    assert [s["id"] for s in by_synonym] == [str(synonym), str(tagged)]
    assert (await rig.api("birch").get(path, params={"only_media": "true"}))[1] == []
    assert (await rig.api("birch").get(path, params={"pinned": "true"}))[1] == []


async def test_account_statuses_pages_with_a_link_header(rig):
    ids = [await insert_post(rig, "alder", text=f"n{i}") for i in range(3)]
    api = rig.api("birch")
    path = f"/api/v1/accounts/{rig['alder'].id}/statuses"
    _, first = await api.get(path, params={"limit": "2"})
    assert [s["id"] for s in first] == [str(ids[2]), str(ids[1])]
    following = next_link(api.last.headers.get("Link"))
    assert following is not None and f"max_id={ids[1]}" in following
    _, second = await api.get(following)
    assert [s["id"] for s in second] == [str(ids[0])]
    assert next_link(api.last.headers.get("Link")) is None
    _, newer = await api.get(path, params={"min_id": str(ids[0]), "limit": "1"})
    assert [s["id"] for s in newer] == [str(ids[1])]


async def test_account_statuses_of_an_unknown_account_is_404(rig):
    status, _ = await rig.api("birch").get("/api/v1/accounts/42/statuses")
    assert status == 404


# -- lookup --------------------------------------------------------------------------------------

@pytest.mark.parametrize("acct", ["alder", "@alder", "ALDER", "alder@a.test", "@alder@A.TEST"])
async def test_lookup_finds_a_resident(rig, acct):
    status, account = await rig.api("cedar").get("/api/v1/accounts/lookup", params={"acct": acct})
    assert status == 200 and account["id"] == rig["alder"].id


async def test_lookup_finds_a_village(rig):
    status, account = await rig.api("cedar").get("/api/v1/accounts/lookup", params={"acct": "north@a.test"})
    assert status == 200 and account["id"] == str(rig.village_ids["north"]) and account["group"] is True


@pytest.mark.parametrize("acct", ["nobody", "alder@b.test", "@", "alder@"])
async def test_lookup_unknown_is_404(rig, acct):
    status, body = await rig.api("cedar").get("/api/v1/accounts/lookup", params={"acct": acct})
    assert status == 404 and body["error"]


async def test_lookup_without_acct_is_422(rig):
    status, _ = await rig.api("cedar").get("/api/v1/accounts/lookup")
    assert status == 422


# -- search --------------------------------------------------------------------------------------

async def search(rig: Any, who: str, **params: str) -> list[str]:
    status, found = await rig.api(who).get("/api/v1/accounts/search", params=params)
    assert status == 200, found
    return [a["acct"] for a in found]


async def test_search_by_display_name_ignores_case_and_accents(rig):
    assert await search(rig, "alder", q="cedre") == ["cedar"]
    assert await search(rig, "alder", q="CÈDRE") == ["cedar"]
    assert await search(rig, "alder", q="bouleau") == ["birch"]


async def test_search_by_username_and_villages(rig):
    assert await search(rig, "alder", q="dogw") == ["dogwood"]
    assert await search(rig, "alder", q="nord") == ["north"]
    assert await search(rig, "alder", q="sud") == ["south"]
    assert await search(rig, "alder", q="@birch@a.test") == ["birch"]
    assert await search(rig, "alder", q="birch@elsewhere.test") == []


async def test_search_ranks_the_exact_username_first_and_limits(rig):
    await rig.add_resident("ced", "north", display_name="Zoé Martin")
    assert (await search(rig, "alder", q="ced"))[:2] == ["ced", "cedar"]
    assert await search(rig, "alder", q="ced", limit="1") == ["ced"]
    assert await search(rig, "alder", q="ced", limit="1", offset="1") == ["cedar"]


async def test_search_following_only(rig):
    await rig.api("alder").post(f"/api/v1/accounts/{rig['cedar'].id}/follow")
    assert await search(rig, "alder", q="r", following="true") == ["cedar", "north"]
    assert "birch" in await search(rig, "alder", q="r")


async def test_search_hides_undiscoverable_and_suspended_accounts(rig):
    await rig.api("birch").patch("/api/v1/accounts/update_credentials", json={"discoverable": False})
    assert await search(rig, "alder", q="bouleau") == []
    assert await search(rig, "alder", q="bir") == []
    assert await search(rig, "alder", q="birch") == ["birch"]
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(Actor).where(Actor.id == rig["cedar"].actor_id).values(suspended_at=utcnow()))
    assert await search(rig, "alder", q="cedar") == []


async def test_search_needs_q(rig):
    status, _ = await rig.api("alder").get("/api/v1/accounts/search")
    assert status == 422
    assert await search(rig, "alder", q="%") == []
