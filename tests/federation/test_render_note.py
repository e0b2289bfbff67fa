"""Rendering our notes with their media and polls: a bounded number of queries, whatever they carry."""

from __future__ import annotations

from typing import Any

from voisinage.federation.outbox import render_note
from voisinage.models.db import write_session
from voisinage.models.post import Post
from voisinage.server.keys import ENGINE

from ..rig.pair import Pair
from ..rig.statements import recorded_statements
from ..server.test_status_media import upload_photo
from .test_exchange import known, neighbours, post, sent_since


async def queries_to_render(commune: Any, post_id: int) -> tuple[int, dict[str, Any]]:
    """(queries, document) of rendering one post, its author's keys already made."""
    async with write_session(commune.sessionmaker) as session:  # the first time may create keys
        await render_note(session, Pair.ctx(commune), await session.get(Post, post_id))
    with recorded_statements(commune.app[ENGINE]) as seen:
        async with commune.sessionmaker() as session:
            document, _ = await render_note(session, Pair.ctx(commune), await session.get(Post, post_id))
    return len(seen), document


async def test_render_note_queries_do_not_grow_with_media_or_votes(pair: Pair) -> None:
    one = await post(pair.b, "cedar", status="Une", visibility="private", media_ids=[await upload_photo(pair.b, "cedar")])
    four = await post(pair.b, "cedar", status="Quatre", visibility="private",
                      media_ids=[await upload_photo(pair.b, "cedar", f"photo {i}") for i in range(4)])
    few, document = await queries_to_render(pair.b, one.id)
    many, document_four = await queries_to_render(pair.b, four.id)
    assert len(document["attachment"]) == 1 and len(document_four["attachment"]) == 4
    assert [a["name"] for a in document_four["attachment"]] == [f"photo {i}" for i in range(4)]
    assert many == few

    poll = await post(pair.b, "cedar", status="Sondage", visibility="public",
                      poll={"options": ["A", "B", "C"], "expires_in": 3600})
    empty, question = await queries_to_render(pair.b, poll.id)
    poll_id = (await pair.b.api("cedar").get(f"/api/v1/statuses/{poll.id}"))[1]["poll"]["id"]
    code, body = await pair.b.api("dogwood").post(f"/api/v1/polls/{poll_id}/votes", json={"choices": ["2"]})
    assert code == 200, body
    voted, counted = await queries_to_render(pair.b, poll.id)
    assert question["type"] == counted["type"] == "Question" and question["votersCount"] == 0
    assert [o["replies"]["totalItems"] for o in counted["oneOf"]] == [0, 0, 1] and counted["votersCount"] == 1
    assert voted == empty <= few + 3


async def test_a_plain_note_reads_its_relations_in_one_statement(pair: Pair) -> None:
    """A post without media, poll or mentions: its relations are one statement (the media, the poll and
    the mentioned actors are read only for a post that has some); with all of them, the note has each."""
    plain = await post(pair.b, "cedar", status="Bonjour #annonce", visibility="private")
    count, document = await queries_to_render(pair.b, plain.id)
    assert [tag["name"] for tag in document["tag"] if tag["type"] == "Hashtag"] == ["#annonce"]
    rich = await post(pair.b, "cedar", status="@dogwood Quel jour ? #fête", visibility="public",
                      poll={"options": ["samedi", "dimanche"], "expires_in": 3600})
    more, full = await queries_to_render(pair.b, rich.id)
    assert {tag["type"] for tag in full["tag"]} == {"Mention", "Hashtag"} and full["type"] == "Question"
    # the post, its author, its relations (and BEGIN); then its audience, mentioned actors, poll and votes
    assert count <= 4 and more == count + 5


async def test_a_new_posts_note_is_the_one_read_back_and_none_of_it_is_read(pair: Pair) -> None:
    """Publishing a new post takes what posting knows of it (its mentions, tags, media and its village's
    announce) instead of reading it back: the Announce sent carries the note `render_note` reads back
    later, and posting read neither the post's relations nor its announce's uri."""
    await neighbours(pair)  # b.test's south follows a.test's north: alder's public posts are announced there
    await known(pair.a, "@cedar@b.test")
    photos = [await upload_photo(pair.a, "alder", f"photo {i}") for i in range(2)]
    mark = len(pair.network.sent)
    with recorded_statements(pair.a.app[ENGINE]) as seen:
        row = await post(pair.a, "alder", status="@cedar@b.test vélos à donner #Vélo #annonce", visibility="public",
                         media_ids=photos[::-1])
    await pair.drain()
    (announce,) = sent_since(pair, mark, "b.test", "Announce")
    note = announce.json["object"]
    async with pair.a.sessionmaker() as session:
        read_back, _ = await render_note(session, Pair.ctx(pair.a), await session.get(Post, row.id))
    assert [a["name"] for a in note["attachment"]] == ["photo 0", "photo 1"]
    assert {t["name"] for t in note["tag"]} == {"@cedar@b.test", "#vélo", "#annonce"}
    assert {k: v for k, v in note.items() if k != "proof"} == {k: v for k, v in read_back.items() if k != "proof"}
    flat = [" ".join(statement.split()) for statement in seen]
    assert not [s for s in flat if "FROM mentions" in s or "FROM post_tags" in s]
    assert not [s for s in flat if s.startswith("SELECT posts.uri FROM posts")]
    assert announce.json["id"] in {r.uri for r in await pair.a.rows(Post, Post.reblog_of_id == row.id)}
