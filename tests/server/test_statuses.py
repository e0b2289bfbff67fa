"""/api/v1/statuses: posting (text, mentions, tags, replies, idempotency), reading, context, delete,
favourites and boosts, and refusing bad input without storing anything."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update

from voisinage.models.actor import Actor
from voisinage.models.base import utcnow
from voisinage.models.db import write_session
from voisinage.models.follow import Follow
from voisinage.models.interaction import Favourite
from voisinage.models.meta import IdempotentResult
from voisinage.models.notification import Notification
from voisinage.models.post import Mention, Post, PostTag
from voisinage.models.timeline import HomeEntry
from voisinage.server.keys import ENGINE

from ..rig.statements import recorded_statements
from .test_media import encode, png_with_alpha, two_colour, upload
from .test_visibility import can_get, follow, home, post, shown_ids


async def counts(rig: Any) -> tuple[int, ...]:
    return tuple([await rig.count(m) for m in (Post, Mention, PostTag, HomeEntry, Notification, Favourite,
                                                IdempotentResult)])


async def actor(rig: Any, actor_id: int) -> Actor:
    return (await rig.rows(Actor, Actor.id == actor_id))[0]


async def one_post(rig: Any, post_id: str) -> Post:
    return (await rig.rows(Post, Post.id == int(post_id)))[0]


# --- posting --------------------------------------------------------------------------------------

async def test_post_renders_mentions_tags_and_links_safely(rig):
    body = await post(rig, "alder", "Salut @birch et @north@a.test ! Vélo #À_Vendre #Zoekertje\n"
                                    "https://example.org/velo. <script>alert(1)</script> @nobody@far.example",
                      spoiler_text="annonce", language="fr")
    html = body["content"]
    assert '<a href="https://a.test/users/birch" class="u-url mention"' in html
    assert '@<span>north</span>' in html and 'href="https://a.test/villages/north"' in html
    assert 'class="mention hashtag"' in html and 'href="https://a.test/tags/zoekertje"' in html
    assert '<a href="https://example.org/velo" rel="nofollow noopener noreferrer">' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<br>" in html
    assert "@nobody@far.example" in html and "far.example\"" not in html
    assert {m["username"] for m in body["mentions"]} == {"birch", "north"}
    assert {t["name"] for t in body["tags"]} == {"à_vendre", "zoekertje"}
    assert body["spoiler_text"] == "annonce" and body["sensitive"] is True and body["language"] == "fr"
    assert body["visibility"] == "public" and body["application"]["name"] == "rig"
    tags = {(t.name, t.canonical) for t in await rig.rows(PostTag, PostTag.post_id == int(body["id"]))}
    assert tags == {("à_vendre", "annonce"), ("zoekertje", "annonce")}
    author = await actor(rig, rig["alder"].actor_id)
    assert author.statuses_count == 1 and author.last_status_at is not None


async def test_a_posts_counters_are_its_last_statements(rig):
    """An UPDATE holds its row until the commit, and every post of a village updates the village's row:
    the counters come last, so that a village's posts do not wait on each other's whole transaction
    (PostgreSQL). A reply: the author's, the village's, then the parent's counter, in that order."""
    parent = await post(rig, "birch", "Qui a une échelle ?")
    with recorded_statements(rig.app[ENGINE]) as seen:
        await post(rig, "alder", "Moi ! @birch", in_reply_to_id=parent["id"])
    writes = [" ".join(s.split()).upper() for s in seen if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    counters = [w for w in writes if w.startswith("UPDATE") and ("STATUSES_COUNT" in w or "REPLIES_COUNT" in w)]
    assert len(counters) == 3 and writes[-3:] == counters, writes
    assert not [w for w in counters if " IN (" in w]  # one row each: see test_concurrent_first_posts...
    assert ["REPLIES_COUNT" in w for w in counters] == [False, False, True]
    assert (await actor(rig, rig["alder"].actor_id)).statuses_count == 1
    assert (await actor(rig, rig.village_ids["north"])).statuses_count == 2
    assert (await one_post(rig, parent["id"])).replies_count == 1


async def test_a_new_posts_answer_takes_its_author_from_the_counters_update(rig):
    """The author's row comes back from the post's `statuses_count` UPDATE (RETURNING): a post that
    mentions no one reads no account after its commit, and its account shows the new count."""
    await post(rig, "alder", "Premier")
    with recorded_statements(rig.app[ENGINE]) as seen:
        body = await post(rig, "alder", "Deuxième")
    assert body["account"]["statuses_count"] == 2 and body["account"]["id"] == str(rig["alder"].actor_id)
    assert body["account"]["last_status_at"] is not None
    reads = [" ".join(s.split()) for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert not [s for s in reads if s.startswith("SELECT actors.id, actors.username")], reads
    status, shown = await rig.api("alder").get(f"/api/v1/statuses/{body['id']}")
    assert status == 200 and shown["account"] == body["account"]


async def test_a_new_posts_answer_is_the_status_read_back(rig):
    """POST answers from what posting stored instead of reading the post back: it must be the entity
    GET gives, whatever the post carries (mentions out of id order, tags, a long tag cut to its stored
    length, a reply, media attached out of upload order, a poll, each visibility)."""
    uploads = []
    for data in (encode(two_colour(), "JPEG"), png_with_alpha()):
        status, media = await upload(rig, "alder", data, description="vélo")
        assert status == 200, media
        uploads.append(media["id"])
    first = await post(rig, "birch", "Qui prête une remorque ?")
    cases = [
        {"status": f"@birch @north@a.test vélo #Vélo #annonce #{'x' * 120}", "spoiler_text": "cw", "language": "fr"},
        {"status": "Moi @birch", "in_reply_to_id": first["id"]},
        {"status": "photos", "media_ids": uploads[::-1], "sensitive": True},
        {"status": "Quel jour ?", "poll": {"options": ["samedi", "dimanche"], "expires_in": 3600}},
        {"status": "@birch rien que toi", "visibility": "direct"},
        {"status": "abonnés", "visibility": "private"},
        {"status": "discret", "visibility": "unlisted"},
    ]
    for fields in cases:
        body = await post(rig, "alder", fields.pop("status"), **fields)
        status, again = await rig.api("alder").get(f"/api/v1/statuses/{body['id']}")
        assert status == 200 and again == body, fields
    assert len(body["account"]) > 5 and body["account"]["statuses_count"] == len(cases)


async def test_post_uses_the_default_visibility_and_creates_the_village_announce(rig):
    body = await post(rig, "alder", "Bonjour")
    assert body["visibility"] == "public"
    announces = await rig.rows(Post, Post.reblog_of_id == int(body["id"]))
    assert len(announces) == 1
    announce = announces[0]
    assert announce.author_id == rig.village_ids["north"] and announce.reblog
    assert announce.visibility == "public" and announce.audience_id == rig.village_ids["north"]
    assert announce.origin_author_id == rig["alder"].actor_id
    assert announce.uri.endswith(f"/statuses/{announce.id}/activity")
    village = await actor(rig, rig.village_ids["north"])
    assert village.statuses_count == 1
    # The village's announce is no resident's boost: not counted, nobody notified of it.
    assert (await one_post(rig, body["id"])).reblogs_count == 0
    assert await rig.count(Notification, Notification.kind == "reblog") == 0


async def test_a_post_is_in_each_home_once_and_its_announce_asks_no_home_who_has_it(rig):
    """A village post reaches each reader once: its author, a member who follows the author and a
    follower of its hashtag who also follows the village get the post, a follower of the village only
    the village's announce. Posting knows whom the post reached: the announce reads no home for it."""
    await follow(rig, "birch", rig["alder"].actor_id)
    status, body = await rig.api("dogwood").post("/api/v1/tags/annonce/follow")
    assert status == 200, body
    for reader in ("dogwood", "cedar"):
        await follow(rig, reader, rig.village_ids["north"])
    with recorded_statements(rig.app[ENGINE]) as seen:
        body = await post(rig, "alder", "Vélo à donner #annonce")
    (announce,) = await rig.rows(Post, Post.reblog_of_id == int(body["id"]))
    rows = await rig.rows(HomeEntry, HomeEntry.shown_id == int(body["id"]))
    homes = {owner: [row.post_id for row in rows if row.owner_id == owner] for owner in {row.owner_id for row in rows}}
    assert homes == {rig["alder"].actor_id: [int(body["id"])], rig["birch"].actor_id: [int(body["id"])],
                     rig["dogwood"].actor_id: [int(body["id"])], rig["cedar"].actor_id: [announce.id]}
    assert not [s for s in seen if " ".join(s.split()).startswith("SELECT home_entries.owner_id FROM home_entries")]


async def test_a_boost_reaches_followers_who_show_boosts_and_lack_the_original(rig):
    """A resident's boost goes to the booster's home and their followers' who show boosts
    (`show_reblogs`) and do not have the original already. On PostgreSQL the followers and their homes
    are one statement (`timeline.followers_into_homes`), on SQLite the two it replaces."""
    alder, birch, cedar, dogwood = (rig[name].actor_id for name in ("alder", "birch", "cedar", "dogwood"))
    await follow(rig, "birch", alder)
    await follow(rig, "birch", dogwood)  # has the original: never a boost row
    async with write_session(rig.sessionmaker) as session:
        session.add(Follow(follower_id=cedar, target_id=dogwood, state="accepted", show_reblogs=False))
    first = await post(rig, "alder", "Pommes à donner")
    second = await post(rig, "alder", "Poires à donner")
    status, _ = await rig.api("dogwood").post(f"/api/v1/statuses/{first['id']}/reblog")
    assert status == 200
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(Follow).where(Follow.follower_id == cedar).values(show_reblogs=True))
    with recorded_statements(rig.app[ENGINE]) as seen:
        status, _ = await rig.api("dogwood").post(f"/api/v1/statuses/{second['id']}/reblog")
    assert status == 200

    async def homes(shown: str) -> dict[int, bool]:  # reader -> has the post itself (or a boost of it)
        return {row.owner_id: row.post_id == int(shown)
                for row in await rig.rows(HomeEntry, HomeEntry.shown_id == int(shown))}

    assert await homes(first["id"]) == {alder: True, birch: True, dogwood: False}
    assert await homes(second["id"]) == {alder: True, birch: True, dogwood: False, cedar: False}
    into_homes = [" ".join(s.split()) for s in seen if "INSERT INTO home_entries" in s]
    assert len(into_homes) == 1, into_homes
    if rig.app[ENGINE].dialect.name == "postgresql":
        assert "FROM follows" in into_homes[0]
        assert not [s for s in seen if " ".join(s.split()).startswith("SELECT follows.follower_id")]


async def test_private_and_direct_posts_have_no_announce(rig):
    for visibility in ("private", "direct"):
        body = await post(rig, "alder", f"@birch {visibility}", visibility=visibility)
        assert await rig.count(Post, Post.reblog_of_id == int(body["id"])) == 0
        assert (await one_post(rig, body["id"])).audience_id is None


async def test_a_reply_stays_in_its_village_and_never_widens(rig):
    await follow(rig, "cedar", rig["alder"].actor_id)
    parent = await post(rig, "alder", "Qui a vu mon chat ? #perdu")
    reply = await post(rig, "cedar", "@alder je l'ai vu", in_reply_to_id=parent["id"])
    row = await one_post(rig, reply["id"])
    assert row.audience_id == rig.village_ids["north"]  # the thread's village, not cedar's (south)
    assert row.thread_id == int(parent["id"]) and reply["in_reply_to_id"] == parent["id"]
    assert reply["in_reply_to_account_id"] == rig["alder"].id
    announce = (await rig.rows(Post, Post.reblog_of_id == row.id))[0]
    assert announce.author_id == rig.village_ids["north"]
    assert (await one_post(rig, parent["id"])).replies_count == 1
    private = await post(rig, "alder", "Pour mes abonnés", visibility="private")
    answer = await post(rig, "cedar", "@alder bien reçu", visibility="public", in_reply_to_id=private["id"])
    assert answer["visibility"] == "private"
    assert (await one_post(rig, answer["id"])).audience_id is None
    direct = await post(rig, "alder", "@cedar secret", visibility="direct")
    answer = await post(rig, "cedar", "@alder ok", visibility="unlisted", in_reply_to_id=direct["id"])
    assert answer["visibility"] == "direct"


async def test_idempotency_key_returns_the_same_status_and_creates_nothing_new(rig):
    api = rig.api("alder")
    headers = {"Idempotency-Key": "abc-123"}
    status, first = await api.post("/api/v1/statuses", json={"status": "Une fois"}, headers=headers)
    assert status == 200
    before = await counts(rig)
    status, second = await api.post("/api/v1/statuses", json={"status": "Une fois"}, headers=headers)
    assert status == 200 and second["id"] == first["id"]
    assert await counts(rig) == before
    # Another resident's same key is theirs; a new key is a new post.
    status, other = await rig.api("birch").post("/api/v1/statuses", json={"status": "Une fois"}, headers=headers)
    assert status == 200 and other["id"] != first["id"]
    status, third = await api.post("/api/v1/statuses", json={"status": "Une fois"},
                                   headers={"Idempotency-Key": "other"})
    assert status == 200 and third["id"] != first["id"]
    # After an hour the key is forgotten.
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(IdempotentResult).values(
            created_at=utcnow() - dt.timedelta(hours=1, minutes=1)))
    status, later = await api.post("/api/v1/statuses", json={"status": "Une fois"}, headers=headers)
    assert status == 200 and later["id"] != first["id"]
    # alder's expired keys were pruned on the way ("abc-123" and "other"); birch's wait for birch.
    assert await rig.count(IdempotentResult, IdempotentResult.actor_id == rig["alder"].actor_id) == 1


async def test_form_bodies_work_too(rig):
    status, body = await rig.api("alder").post("/api/v1/statuses", data={"status": "Formulaire",
                                                                         "visibility": "unlisted"})
    assert status == 200 and body["visibility"] == "unlisted"


async def test_bad_input_is_refused_and_nothing_is_stored(rig):
    target = await post(rig, "alder", "Cible")
    private = await post(rig, "cedar", "Privé", visibility="private")
    before = await counts(rig)
    api = rig.api("alder")
    cases = [
        {},
        {"status": ""},
        {"status": "   \n "},
        {"status": "x" * 501},
        {"status": "x" * 400, "spoiler_text": "y" * 101},
        {"status": ["a", "b"]},
        {"status": {"a": 1}},
        {"status": "ok", "visibility": "everyone"},
        {"status": "ok", "visibility": 3},
        {"status": "ok", "in_reply_to_id": "999999999"},
        {"status": "ok", "in_reply_to_id": "abc"},
        {"status": "ok", "in_reply_to_id": private["id"]},  # not visible to alder
        {"status": "ok", "media_ids": ["123"]},
        {"status": "ok", "poll": {"options": ["a"], "expires_in": 3600}},
        {"status": "ok", "sensitive": "maybe"},
        {"status": "ok", "language": "not a language"},
        {"status": "ok", "scheduled_at": "2030-01-01T00:00:00Z"},
    ]
    for payload in cases:
        status, body = await api.post("/api/v1/statuses", json=payload)
        assert 400 <= status < 500 and "error" in body, payload
    status, body = await api.post("/api/v1/statuses", json={"status": "ok", "media_ids": ["1"]})
    assert body["error"].endswith("media that cannot be attached")
    status, body = await api.post("/api/v1/statuses", json={"status": "ok", "poll": {"options": ["a"]}})
    assert "at least 2 options" in body["error"]
    status, _ = await api.call("POST", "/api/v1/statuses", data=b"{not json",
                               headers={"Content-Type": "application/json"})
    assert status == 400
    status, _ = await rig.api().post("/api/v1/statuses", json={"status": "anonyme"})
    assert status == 401
    assert await counts(rig) == before
    # NUL characters are dropped (PostgreSQL text cannot hold them), not an error.
    nul = await post(rig, "alder", "a\x00b", spoiler_text="c\x00")
    assert nul["content"] == "<p>ab</p>" and nul["spoiler_text"] == "c"
    # A 500-character post is fine; links count as 23 characters.
    assert (await post(rig, "alder", "x" * 500))["id"]
    assert (await post(rig, "alder", "y" * 470 + " https://example.org/" + "z" * 100))["id"]
    assert target["id"]


async def test_bad_ids_on_every_status_endpoint(rig):
    await post(rig, "alder", "Là")
    before = await counts(rig)
    api = rig.api("alder")
    for bad in ("999999999", "abc", "-1", "1" * 25):
        for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/context"), ("POST", "/favourite"),
                               ("POST", "/unfavourite"), ("POST", "/reblog"), ("POST", "/unreblog"),
                               ("GET", "/favourited_by"), ("GET", "/reblogged_by")):
            status, body = await api.call(method, f"/api/v1/statuses/{bad}{suffix}")
            assert status == 404 and body == {"error": "Record not found"}, (method, bad, suffix)
    assert await counts(rig) == before


# --- reading --------------------------------------------------------------------------------------

async def test_context_lists_visible_ancestors_and_descendants_in_order(rig):
    root = await post(rig, "alder", "Racine")
    a = await post(rig, "birch", "A", in_reply_to_id=root["id"])
    a1 = await post(rig, "alder", "A1", in_reply_to_id=a["id"])
    b = await post(rig, "cedar", "B", in_reply_to_id=root["id"])
    hidden = await post(rig, "birch", "caché", in_reply_to_id=a["id"], visibility="private")
    status, context = await rig.api("cedar").get(f"/api/v1/statuses/{a1['id']}/context")
    assert status == 200
    assert [s["id"] for s in context["ancestors"]] == [root["id"], a["id"]]
    assert context["descendants"] == []
    status, context = await rig.api("cedar").get(f"/api/v1/statuses/{root['id']}/context")
    assert [s["id"] for s in context["descendants"]] == [a["id"], a1["id"], b["id"]]
    status, context = await rig.api("birch").get(f"/api/v1/statuses/{root['id']}/context")
    assert [s["id"] for s in context["descendants"]] == [a["id"], a1["id"], hidden["id"], b["id"]]



async def test_a_threads_context_costs_the_same_statements_at_any_depth(rig):
    """Ancestors come from the thread's visible posts, read once with the descendants: a reply six levels
    down costs what a reply two levels down does (one statement per parent before)."""
    chain = [await post(rig, "alder", "Qui prête une échelle ?")]
    for level in range(6):
        chain.append(await post(rig, ("birch", "alder")[level % 2], f"réponse {level}",
                                in_reply_to_id=chain[-1]["id"]))

    async def context_of(status: dict[str, Any], reader: str = "cedar") -> tuple[int, dict[str, Any]]:
        with recorded_statements(rig.app[ENGINE]) as seen:
            code, body = await rig.api(reader).get(f"/api/v1/statuses/{status['id']}/context")
        assert code == 200, body
        return len(seen), body

    await context_of(chain[1])  # the reader's token and the accounts cached, as for the next two
    shallow, near = await context_of(chain[2])
    deep, far = await context_of(chain[6])
    assert [s["id"] for s in near["ancestors"]] == [c["id"] for c in chain[:2]]
    assert [s["id"] for s in far["ancestors"]] == [c["id"] for c in chain[:6]]
    assert deep <= shallow, (shallow, deep)
    hidden = await post(rig, "birch", "entre nous", in_reply_to_id=chain[6]["id"], visibility="private")
    below = await post(rig, "birch", "et après ?", in_reply_to_id=hidden["id"])
    _, whole = await context_of(below, "birch")
    assert [s["id"] for s in whole["ancestors"]] == [c["id"] for c in chain] + [hidden["id"]]
    _, seen_by_cedar = await context_of(chain[5])  # cedar does not follow birch: the private reply is not there
    assert [s["id"] for s in seen_by_cedar["descendants"]] == [chain[6]["id"]]

# --- deleting -------------------------------------------------------------------------------------

async def test_delete_removes_the_post_everywhere_and_gives_back_its_text(rig):
    await follow(rig, "cedar", rig["alder"].actor_id)
    await follow(rig, "dogwood", rig["cedar"].actor_id)
    parent = await post(rig, "birch", "Parent")
    body = await post(rig, "alder", "@birch à effacer #annonce", in_reply_to_id=parent["id"])
    post_id = int(body["id"])
    status, _ = await rig.api("cedar").post(f"/api/v1/statuses/{body['id']}/reblog")
    assert status == 200
    status, _ = await rig.api("birch").post(f"/api/v1/statuses/{body['id']}/favourite")
    assert status == 200
    assert await rig.count(Notification, Notification.post_id == post_id) >= 2
    # Someone else may not delete it: 403 when they see it.
    status, _ = await rig.api("birch").delete(f"/api/v1/statuses/{body['id']}")
    assert status == 403
    assert await rig.count(Post, Post.id == post_id) == 1
    status, deleted = await rig.api("alder").delete(f"/api/v1/statuses/{body['id']}")
    assert status == 200 and deleted["id"] == body["id"] and deleted["text"] == "@birch à effacer #annonce"
    assert await rig.count(Post, Post.id == post_id) == 0
    assert await rig.count(Post, Post.reblog_of_id == post_id) == 0  # cedar's boost and the announce
    assert await rig.count(HomeEntry, HomeEntry.shown_id == post_id) == 0
    assert await rig.count(Notification, Notification.post_id == post_id) == 0
    assert await rig.count(Notification, Notification.kind == "reblog") == 0
    assert await rig.count(Favourite, Favourite.post_id == post_id) == 0
    assert (await actor(rig, rig["alder"].actor_id)).statuses_count == 0
    assert (await actor(rig, rig["cedar"].actor_id)).statuses_count == 0
    assert (await actor(rig, rig.village_ids["north"])).statuses_count == 1  # the parent's announce only
    assert (await one_post(rig, parent["id"])).replies_count == 0
    for who in ("alder", "birch", "cedar", "dogwood"):
        assert body["id"] not in shown_ids(await home(rig, who))
        assert not await can_get(rig, who, body["id"])
    status, _ = await rig.api("alder").delete(f"/api/v1/statuses/{body['id']}")
    assert status == 404


async def test_delete_of_an_invisible_post_is_404(rig):
    private = await post(rig, "cedar", "secret", visibility="private")
    status, _ = await rig.api("alder").delete(f"/api/v1/statuses/{private['id']}")
    assert status == 404
    assert await rig.count(Post, Post.id == int(private["id"])) == 1


# --- favourites and boosts ------------------------------------------------------------------------

async def test_favourite_is_idempotent_counted_and_notified(rig):
    body = await post(rig, "alder", "Aimez-moi")
    api = rig.api("birch")
    for _ in range(2):
        status, fav = await api.post(f"/api/v1/statuses/{body['id']}/favourite")
        assert status == 200 and fav["favourited"] is True and fav["favourites_count"] == 1
    assert await rig.count(Favourite) == 1
    notes = await rig.rows(Notification, Notification.kind == "favourite")
    assert [(n.recipient_id, n.from_actor_id) for n in notes] == [(rig["alder"].actor_id, rig["birch"].actor_id)]
    status, people = await rig.api("cedar").get(f"/api/v1/statuses/{body['id']}/favourited_by")
    assert status == 200 and [p["username"] for p in people] == ["birch"]
    for _ in range(2):
        status, unfav = await api.post(f"/api/v1/statuses/{body['id']}/unfavourite")
        assert status == 200 and unfav["favourited"] is False and unfav["favourites_count"] == 0
    assert await rig.count(Favourite) == 0
    assert await rig.count(Notification, Notification.kind == "favourite") == 0


async def test_favourite_needs_a_visible_status(rig):
    private = await post(rig, "alder", "Privé", visibility="private")
    status, _ = await rig.api("birch").post(f"/api/v1/statuses/{private['id']}/favourite")
    assert status == 404
    assert await rig.count(Favourite) == 0


async def test_reblog_notifies_the_author_only_for_a_residents_boost(rig):
    body = await post(rig, "alder", "Partagez")
    assert await rig.count(Notification, Notification.kind == "reblog") == 0  # the village's announce
    status, boost = await rig.api("cedar").post(f"/api/v1/statuses/{body['id']}/reblog")
    assert status == 200 and boost["reblog"]["reblogs_count"] == 1
    status, again = await rig.api("cedar").post(f"/api/v1/statuses/{body['id']}/reblog")
    assert status == 200 and again["id"] == boost["id"]
    # Boosting the boost means boosting the original.
    status, via_boost = await rig.api("cedar").post(f"/api/v1/statuses/{boost['id']}/reblog")
    assert via_boost["id"] == boost["id"]
    notes = await rig.rows(Notification, Notification.kind == "reblog")
    assert [(n.recipient_id, n.from_actor_id, n.post_id) for n in notes] == [
        (rig["alder"].actor_id, rig["cedar"].actor_id, int(body["id"]))]
    status, people = await rig.api("birch").get(f"/api/v1/statuses/{body['id']}/reblogged_by")
    assert [p["username"] for p in people] == ["cedar"]  # not the village
    status, original = await rig.api("cedar").post(f"/api/v1/statuses/{body['id']}/unreblog")
    assert status == 200 and original["id"] == body["id"] and original["reblogged"] is False
    assert original["reblogs_count"] == 0
    assert await rig.count(Post, Post.id == int(boost["id"])) == 0
    assert await rig.count(Notification, Notification.kind == "reblog") == 0
    assert (await actor(rig, rig["cedar"].actor_id)).statuses_count == 0


async def test_favourited_by_pages_with_link_headers(rig):
    body = await post(rig, "alder", "Populaire")
    names = [f"fan{i}" for i in range(5)]
    for name in names:
        await rig.add_resident(name, "south")
        status, _ = await rig.api(name).post(f"/api/v1/statuses/{body['id']}/favourite")
        assert status == 200
    api = rig.api("alder")
    seen: list[str] = []
    url = f"/api/v1/statuses/{body['id']}/favourited_by?limit=2"
    for _ in range(5):
        status, page = await api.get(url)
        assert status == 200
        seen += [p["username"] for p in page]
        link = api.last.headers.get("Link", "")
        if 'rel="next"' not in link:
            break
        url = link.split(">")[0].lstrip("<").replace(rig.base_url, "")
    assert sorted(seen) == names and len(seen) == 5


def test_links_count_as_23_characters():
    from voisinage.server.services.text import count_characters

    assert count_characters("abc") == 3
    assert count_characters("see https://example.org/" + "a" * 200 + ".") == 4 + 23 + 1


async def test_empty_optional_fields_are_accepted(rig):
    status, body = await rig.api("alder").post("/api/v1/statuses", json={
        "status": "Sans extras", "poll": None, "media_ids": [], "spoiler_text": "", "in_reply_to_id": None,
        "sensitive": None, "language": None, "scheduled_at": None, "visibility": None})
    assert status == 200, body
    assert body["visibility"] == "public" and body["sensitive"] is False


async def test_get_a_boost_shows_the_boost_with_its_original(rig):
    original = await post(rig, "alder", "Un post")
    status, boost = await rig.api("cedar").post(f"/api/v1/statuses/{original['id']}/reblog")
    status, body = await rig.api("dogwood").get(f"/api/v1/statuses/{boost['id']}")
    assert status == 200 and body["id"] == boost["id"] and body["reblog"]["id"] == original["id"]
    assert body["account"]["username"] == "cedar" and body["reblog"]["content"] == original["content"]


async def test_posting_and_deleting_send_live_events(rig):
    import asyncio

    from voisinage.server.keys import EVENT_BUS

    bus = rig.app[EVENT_BUS]
    sub = bus.subscribe()
    try:
        body = await post(rig, "alder", "@birch vélo #Zoekertje")
        status, _ = await rig.api("alder").delete(f"/api/v1/statuses/{body['id']}")
        assert status == 200
        events = []
        while len(events) < 5:
            events.append(await asyncio.wait_for(sub.queue.get(), timeout=5))
    finally:
        bus.unsubscribe(sub)
    post_id = int(body["id"])
    update = next(e for e in events if e.kind == "update" and e.object_id == post_id)
    assert {"public", "public:local", "hashtag:annonce", "hashtag:local:annonce"} <= set(update.streams)
    note = next(e for e in events if e.kind == "notification")
    assert note.audience == (rig["birch"].actor_id,)
    announce = next(e for e in events if e.kind == "update" and e.object_id != post_id)
    assert {(e.kind, e.object_id) for e in events} >= {("delete", post_id), ("delete", announce.object_id)}


async def test_concurrent_boosts_and_favourites_make_one_each(rig):
    import asyncio

    body = await post(rig, "alder", "Vite")
    api = rig.api("cedar")
    results = await asyncio.gather(*[api.post(f"/api/v1/statuses/{body['id']}/reblog") for _ in range(4)],
                                   *[api.post(f"/api/v1/statuses/{body['id']}/favourite") for _ in range(4)])
    assert all(status == 200 for status, _ in results)
    assert await rig.count(Post, Post.author_id == rig["cedar"].actor_id) == 1
    assert await rig.count(Favourite) == 1
    row = await one_post(rig, body["id"])
    assert row.reblogs_count == 1 and row.favourites_count == 1


async def test_the_same_idempotency_key_at_once_makes_one_post(rig):
    import asyncio

    api = rig.api("alder")
    results = await asyncio.gather(*[api.post("/api/v1/statuses", json={"status": "Une seule fois"},
                                              headers={"Idempotency-Key": "race"}) for _ in range(4)])
    assert all(status == 200 for status, _ in results)
    assert len({body["id"] for _, body in results}) == 1
    assert await rig.count(Post, Post.author_id == rig["alder"].actor_id) == 1
    assert (await actor(rig, rig["alder"].actor_id)).statuses_count == 1
