"""FEP-1b12 relaying across three communes: a reply written in b.test into a thread of a.test's village
reaches c.test only through that village's Announce, trusted there by its FEP-8b32 proof; its Update
and Delete follow the same way. Real signatures cross the in-process seam (tests/rig/pair.py `Trio`).

c.test's elm and b.test's cedar follow a.test's north village; fir (south, on c.test) follows nothing
on a.test and must see nothing of the thread.
"""

from __future__ import annotations

import re

from voisinage.models.post import Post

from ..rig.network import Sent
from ..rig.pair import Trio
from .test_exchange import follow, home_uris, post, remote_copy, sent_since

KEY_ID = re.compile(r'keyId="([^"]+)"')


def signed_by(sent: Sent) -> str:
    """The host whose key signed a request ("" when unsigned)."""
    found = KEY_ID.search(sent.headers.get("Signature", ""))
    return found.group(1).split("/")[2] if found else ""


def requests_since(t: Trio, mark: int, *, to: str, by: str | None = None) -> list[Sent]:
    """Every request (GET or POST) made after `mark` to host `to`, signed by host `by` if given."""
    return [s for s in t.network.sent[mark:] if s.host == to and (by is None or signed_by(s) == by)]


async def thread(t: Trio) -> tuple[Post, Post, Post, int]:
    """elm@c.test and cedar@b.test follow north@a.test; alder posts, cedar replies from b.test.
    Returns (alder's post, its copy on b.test, cedar's reply, the network mark before the reply)."""
    await follow(t.c, "elm", "@north@a.test")
    await follow(t.b, "cedar", "@north@a.test")
    await t.drain()
    note = await post(t.a, "alder", status="Fête de quartier samedi", visibility="public")
    await t.drain()
    on_b = await remote_copy(t.b, note.uri)
    assert on_b is not None and await remote_copy(t.c, note.uri) is not None
    mark = len(t.network.sent)
    reply = await post(t.b, "cedar", status="J'apporte des crêpes", visibility="public",
                       in_reply_to_id=str(on_b.id))
    await t.drain()
    return note, on_b, reply, mark


async def context_uris(commune, who: str, post_id: int) -> list[str]:
    code, body = await commune.api(who).get(f"/api/v1/statuses/{post_id}/context")
    assert code == 200, body
    return [s["uri"] for s in body["descendants"]]


async def test_reply_from_b_reaches_c_only_through_a_village(trio: Trio) -> None:
    note, _, reply, mark = await thread(trio)
    # b.test wrote only to a.test (the thread's village and the author): never to c.test
    assert [s.json["type"] for s in requests_since(trio, mark, to="a.test", by="b.test")] == ["Create"]
    assert [s for s in requests_since(trio, mark, to="c.test", by="b.test") if s.method == "POST"] == []
    # a.test's north relays it to c.test, once, the Note embedded with its proof; not back to b.test
    relayed = sent_since(trio, mark, "c.test", "Announce")
    assert len(relayed) == 1 and relayed[0].status == 202
    announce = relayed[0].json
    assert announce["actor"] == "https://a.test/villages/north"
    assert announce["object"]["id"] == reply.uri and "proof" in announce["object"]
    assert announce["to"] == ["https://a.test/villages/north/followers"]
    assert "https://www.w3.org/ns/activitystreams#Public" not in str(announce)
    assert sent_since(trio, mark, "b.test", "Announce") == []  # the origin has it already
    # c.test trusted the proof: it fetched cedar's key document from b.test, never the note
    fetched = [s.url for s in requests_since(trio, mark, to="b.test", by="c.test")]
    assert reply.uri not in fetched and all(s.method == "GET" for s in requests_since(trio, mark, to="b.test"))
    assert fetched in ([], ["https://b.test/users/cedar"])

    on_c = await remote_copy(trio.c, reply.uri)
    original_on_c = await remote_copy(trio.c, note.uri)
    assert on_c is not None and on_c.visibility == "public" and on_c.in_reply_to_id == original_on_c.id
    assert reply.uri in await home_uris(trio.c, "elm")
    assert await context_uris(trio.c, "elm", original_on_c.id) == [reply.uri]
    assert reply.uri not in await home_uris(trio.c, "fir")  # no follow of north: sees nothing of it
    code, _ = await trio.c.api("fir").get(f"/api/v1/statuses/{on_c.id}")
    assert code == 404
    # on a.test the village's announce shows it at home to north's members, as a local post
    on_a = await remote_copy(trio.a, reply.uri)
    assert on_a is not None and reply.uri in await home_uris(trio.a, "birch")
    assert await context_uris(trio.a, "birch", note.id) == [reply.uri]


async def test_delete_on_b_disappears_on_c(trio: Trio) -> None:
    _, _, reply, _ = await thread(trio)
    assert await remote_copy(trio.c, reply.uri) is not None
    mark = len(trio.network.sent)
    code, _ = await trio.b.api("cedar").delete(f"/api/v1/statuses/{reply.id}")
    assert code == 200
    await trio.drain()
    assert [s.json["type"] for s in requests_since(trio, mark, to="a.test", by="b.test")] == ["Delete"]
    relayed = sent_since(trio, mark, "c.test", "Announce")
    assert [s.json["object"]["type"] for s in relayed] == ["Delete"]
    assert relayed[0].json["object"]["actor"] == "https://b.test/users/cedar"  # as received
    # c.test believed it once b.test answered that the note is gone
    checks = [s for s in requests_since(trio, mark, to="b.test", by="c.test") if s.url == reply.uri]
    assert [(s.method, s.status) for s in checks] == [("GET", 410)]  # a public post: its deletion is told
    assert await remote_copy(trio.c, reply.uri) is None
    assert await remote_copy(trio.a, reply.uri) is None
    assert reply.uri not in await home_uris(trio.c, "elm")
    assert reply.uri not in await home_uris(trio.a, "birch")


async def test_relayed_delete_of_a_note_still_there_is_refused(trio: Trio) -> None:
    """A village relaying a Delete the origin does not confirm: c.test keeps the note."""
    from voisinage.federation import outbox, to_ap
    from voisinage.models.actor import Actor
    from voisinage.models.db import write_session

    from .test_exchange import known

    _, _, reply, _ = await thread(trio)
    north_on_a = trio.a.village_ids["north"]
    async with write_session(trio.a.sessionmaker) as session:  # as if cedar had deleted it
        north = await session.get(Actor, north_on_a)
        cedar = await session.get(Actor, await known(trio.a, "@cedar@b.test"))
        delete = to_ap.delete_of(reply.uri, cedar, {"to": [north.followers_uri]})
        await outbox.publish_relay(session, trio.ctx(trio.a), north, delete, "b.test", "2026-01-01T00:00:00Z")
    mark = len(trio.network.sent)
    await trio.drain()
    assert [s.status for s in sent_since(trio, mark, "c.test", "Announce")] == [202]
    checks = [s for s in requests_since(trio, mark, to="b.test", by="c.test") if s.url == reply.uri]
    assert [(s.method, s.status) for s in checks] == [("GET", 200)]
    assert await remote_copy(trio.c, reply.uri) is not None
    assert reply.uri in await home_uris(trio.c, "elm")


async def test_update_on_b_reaches_c_by_its_proof(trio: Trio) -> None:
    _, _, reply, _ = await thread(trio)
    mark = len(trio.network.sent)
    code, body = await trio.b.api("cedar").put(f"/api/v1/statuses/{reply.id}", json={"status": "Et du cidre"})
    assert code == 200, body
    await trio.drain()
    relayed = sent_since(trio, mark, "c.test", "Announce")
    assert [s.json["object"]["type"] for s in relayed] == ["Update"]
    assert "proof" in relayed[0].json["object"]["object"]
    assert reply.uri not in [s.url for s in requests_since(trio, mark, to="b.test", by="c.test")]
    for commune, who in ((trio.c, "elm"), (trio.a, "birch")):
        copy = await remote_copy(commune, reply.uri)
        assert "Et du cidre" in copy.content and copy.edited_at is not None
        code, shown = await commune.api(who).get(f"/api/v1/statuses/{copy.id}")
        assert code == 200 and "Et du cidre" in shown["content"], shown


async def test_no_relay_from_a_non_partner_origin(trio: Trio) -> None:
    """c.test does not partner b.test: the relayed reply is not stored and nothing is asked of b.test."""
    await trio.partner(trio.c, "b.test", on=False)
    _, _, reply, mark = await thread(trio)
    relayed = sent_since(trio, mark, "c.test", "Announce")
    assert len(relayed) == 1 and relayed[0].status == 202  # a.test is a partner of c.test
    assert requests_since(trio, mark, to="b.test", by="c.test") == []
    assert await remote_copy(trio.c, reply.uri) is None
    assert reply.uri not in await home_uris(trio.c, "elm")


async def test_local_reply_in_the_thread_reaches_both_partners(trio: Trio) -> None:
    """alder answers cedar's relayed reply: north announces it to b.test and c.test, once each."""
    _, _, reply, _ = await thread(trio)
    on_a = await remote_copy(trio.a, reply.uri)
    mark = len(trio.network.sent)
    answer = await post(trio.a, "alder", status="Merci !", visibility="public", in_reply_to_id=str(on_a.id))
    await trio.drain()
    assert sorted(s.host for s in sent_since(trio, mark, kind="Announce")) == ["b.test", "c.test"]
    assert sent_since(trio, mark, kind="Create") == []  # b.test, cedar's instance, has the Announce
    for commune, who in ((trio.b, "cedar"), (trio.c, "elm")):
        copy = await remote_copy(commune, answer.uri)
        assert copy is not None and copy.in_reply_to_uri == reply.uri
        assert answer.uri in await home_uris(commune, who)


async def test_only_public_thread_posts_are_relayed(trio: Trio) -> None:
    """A private reply into north's thread, and a direct note to north itself, stay where they went."""
    _, on_b, _, _ = await thread(trio)
    mark = len(trio.network.sent)
    private = await post(trio.b, "cedar", status="Rien que pour vous", visibility="private",
                         in_reply_to_id=str(on_b.id))
    direct = await post(trio.b, "cedar", status="@north@a.test un mot au village", visibility="direct")
    unlisted = await post(trio.b, "dogwood", status="Chez nous", visibility="unlisted")
    await trio.drain()
    assert requests_since(trio, mark, to="c.test") == []
    assert sent_since(trio, mark, kind="Announce") == []
    assert await remote_copy(trio.a, private.uri) is not None  # alder, the author replied to, has it
    assert await remote_copy(trio.a, direct.uri) is not None
    assert await remote_copy(trio.a, unlisted.uri) is None
    for uri in (private.uri, direct.uri, unlisted.uri):
        assert await remote_copy(trio.c, uri) is None
        assert await trio.a.count(Post, Post.reblog_of_id.in_(
            [p.id for p in await trio.a.rows(Post, Post.uri == uri)])) == 0
