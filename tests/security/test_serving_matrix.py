"""Authorized fetch as a table: every kind of object we serve, every visibility, every kind of caller.

Callers: unsigned; a signature that does not verify (signed for another path); an actor of a
non-partner host; of a blocked partner; a partner with no follower; a partner whose actor follows the
village; follows the author; is mentioned. Each refusal is checked for its status AND for carrying
none of the post's text; each 200 for `Cache-Control: private`.
"""

from __future__ import annotations

from typing import Any

import orjson

from voisinage.federation.signatures import sign_request
from voisinage.federation.vocab import AP_ACCEPT
from voisinage.models.db import write_session
from voisinage.models.instance import Instance
from voisinage.models.post import Mention

from ..federation.partner_helpers import Remote, add_remote, follow, loaded_key

VISIBILITIES = ("public", "unlisted", "private", "direct")
# caller -> the visibilities it may fetch (everything else: 404; unsigned and bad signatures: 401)
MAY_SEE = {
    "stranger": set(), "blocked": set(), "partner": set(), "village follower": {"public"},
    "author follower": {"public", "private"}, "mentioned": {"direct"},
}
MINIMAL_KEYS = {"@context", "id", "type", "preferredUsername", "inbox", "outbox", "followers", "endpoints",
                "publicKey"}


def signed(caller: Remote, path: str) -> dict[str, str]:
    """Signed GET headers for `path` on a.test, as `caller`."""
    return sign_request("GET", f"https://a.test{path}", {"Accept": AP_ACCEPT}, b"", caller.key_id,
                        loaded_key(caller.private_pem))


async def fetch(rig: Any, path: str, headers: dict[str, str] | None) -> tuple[int, str, Any]:
    async with rig.client.get(path, headers=headers or {"Accept": AP_ACCEPT}) as response:
        return response.status, await response.text(), response.headers


async def callers(rig: Any) -> dict[str, Remote]:
    """One remote actor per kind of caller, each on its own host (the host decides what it may see)."""
    made = {
        "stranger": await add_remote(rig.sessionmaker, "stranger.test", partner=False),
        "blocked": await add_remote(rig.sessionmaker, "blocked.test"),
        "partner": await add_remote(rig.sessionmaker, "partner.test"),
        "village follower": await add_remote(rig.sessionmaker, "village.test"),
        "author follower": await add_remote(rig.sessionmaker, "author.test"),
        "mentioned": await add_remote(rig.sessionmaker, "mention.test"),
    }
    for name in ("stranger", "blocked", "village follower"):
        await follow(rig.sessionmaker, made[name].actor_id, rig.village_ids["north"])
    for name in ("stranger", "blocked", "author follower"):
        await follow(rig.sessionmaker, made[name].actor_id, rig["alder"].actor_id)
    async with write_session(rig.sessionmaker) as session:
        (await session.get(Instance, "blocked.test")).blocked = True
    return made


async def test_each_post_visibility_against_each_caller(rig: Any) -> None:
    who = await callers(rig)
    posts: dict[str, str] = {}
    for visibility in VISIBILITIES:
        status, body = await rig.api("alder").post("/api/v1/statuses", json={
            "status": f"secret-{visibility} @birch", "visibility": visibility})
        assert status == 200, body
        posts[visibility] = body["id"]
    async with write_session(rig.sessionmaker) as session:
        for visibility in VISIBILITIES:  # the mentioned caller is named in every post
            session.add(Mention(post_id=int(posts[visibility]), actor_id=who["mentioned"].actor_id))
    for visibility, post_id in posts.items():
        for suffix in ("", "/activity"):
            path = f"/users/alder/statuses/{post_id}{suffix}"
            secret = f"secret-{visibility}"
            status, text, _ = await fetch(rig, path, None)
            assert status == 401 and secret not in text, (path, "unsigned")
            status, text, _ = await fetch(rig, path, signed(who["partner"], f"/users/alder/statuses/{post_id}x"))
            assert status == 401 and secret not in text, (path, "bad signature")
            for name, caller in who.items():
                status, text, headers = await fetch(rig, path, signed(caller, path))
                if visibility in MAY_SEE[name]:
                    assert status == 200 and secret in text, (path, name, status)
                    assert headers["Cache-Control"].startswith("private"), (path, name)
                else:
                    assert status == 404 and secret not in text, (path, name, status)


async def test_outboxes_and_collections_show_each_caller_only_its_share(rig: Any) -> None:
    who = await callers(rig)
    for visibility in VISIBILITIES:
        status, _ = await rig.api("alder").post("/api/v1/statuses", json={
            "status": f"secret-{visibility}", "visibility": visibility})
        assert status == 200
    for owner in ("/users/alder", "/villages/north"):
        for collection in ("outbox", "followers", "following"):
            if owner.startswith("/villages") and collection == "following":
                continue
            path = f"{owner}/{collection}"
            status, text, _ = await fetch(rig, path, None)
            assert status == 401 and "secret" not in text and ".test/users/" not in text, path
            for name in ("stranger", "blocked"):
                status, text, _ = await fetch(rig, path, signed(who[name], path))
                assert status == 404 and "secret" not in text and ".test/users/" not in text, (path, name)
            for name, caller in who.items():
                if name in ("stranger", "blocked"):
                    continue
                status, text, headers = await fetch(rig, path, signed(caller, path))
                assert status == 200 and headers["Cache-Control"].startswith("private"), (path, name)
                shown = {v for v in VISIBILITIES if f"secret-{v}" in text}
                expected: set[str] = set()
                if collection == "outbox":  # nobody is mentioned here; the village announces public posts
                    expected = MAY_SEE[name] - {"direct"} if owner == "/users/alder" else MAY_SEE[name] & {"public"}
                assert shown == expected, (path, name, shown)
                # members are listed only from the caller's own host, never another partner's
                other_hosts = {r.host for r in who.values()} - {caller.host}
                assert not any(f"https://{host}/" in text for host in other_hosts), (path, name)


async def test_actor_documents_are_minimal_unless_a_partner_signs(rig: Any) -> None:
    who = await callers(rig)
    for path in ("/users/alder", "/villages/north"):
        for stranger in ("stranger", "blocked"):  # signed fetches by non-partners, as for every object
            status, _, _ = await fetch(rig, path, signed(who[stranger], path))
            assert status == 404, (path, stranger)
        for name, headers in (("unsigned", None),
                              ("bad signature", signed(who["partner"], path + "x"))):
            status, text, response_headers = await fetch(rig, path, headers)
            assert status == 200, (path, name)
            document = orjson.loads(text)
            assert set(document) <= MINIMAL_KEYS, (path, name, set(document) - MINIMAL_KEYS)
            assert "Alder Aulne" not in text and "Nord" not in text, (path, name)
            assert response_headers["Cache-Control"].startswith("public"), (path, name)
        status, text, response_headers = await fetch(rig, path, signed(who["partner"], path))
        assert status == 200 and response_headers["Cache-Control"].startswith("private")
        assert "name" in text
