"""Across the pair rig: what a partner addresses to one of our villages. A message to the village actor
only is direct (its residents never read it); a public post in a village we follow is seen."""

from __future__ import annotations

from voisinage.models.post import Post

from ..rig.pair import Pair
from .test_exchange import home_uris, neighbour, post, public_uris, remote_copy, sent_since


async def test_a_message_to_a_village_stays_private_and_village_posts_still_show(pair: Pair) -> None:
    await neighbour(pair.a, "north", "@south@b.test")  # north (alder's village) follows cedar's village
    await pair.drain()
    mark = len(pair.network.sent)
    message = await post(pair.b, "cedar", status="@north@a.test Qui tient la clé du local ?", visibility="direct")
    await pair.drain()
    (sent,) = sent_since(pair, mark, "a.test", "Create")
    north_uri = sent.json["object"]["to"][0]
    assert sent.json["object"]["to"] == [north_uri] and north_uri.endswith("north") and not sent.json.get("cc")
    copy = await remote_copy(pair.a, message.uri)
    assert copy is not None and copy.visibility == "direct" and copy.audience_id is None
    for who in ("alder", "birch"):
        assert message.uri not in await home_uris(pair.a, who)
        assert message.uri not in await public_uris(pair.a, who)
        code, _ = await pair.a.api(who).get(f"/api/v1/statuses/{copy.id}")
        assert code == 404

    village_post = await post(pair.b, "cedar", status="Fête du quartier samedi", visibility="public")
    await pair.drain()
    seen = await remote_copy(pair.a, village_post.uri)
    assert seen is not None and seen.visibility == "public" and seen.audience_id is not None
    assert village_post.uri in await home_uris(pair.a, "alder")
    code, body = await pair.a.api("alder").get(f"/api/v1/statuses/{seen.id}")
    assert code == 200 and body["visibility"] == "public"
    assert await pair.a.count(Post, Post.uri.in_([message.uri, village_post.uri])) == 2
