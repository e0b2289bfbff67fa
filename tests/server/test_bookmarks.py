"""Bookmarks and the favourites list: idempotent, visible statuses only, paged by Link."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update

from voisinage.models.bookmark import Bookmark
from voisinage.models.db import write_session
from voisinage.models.interaction import Favourite
from voisinage.models.post import Post

from .test_visibility import post


async def pages(rig: Any, who: str, path: str, limit: int) -> list[list[str]]:
    """Follow the `next` links from the first page; the ids of each page."""
    api = rig.api(who)
    out: list[list[str]] = []
    url: str | None = f"{path}?limit={limit}"
    while url is not None:
        status, body = await api.get(url)
        assert status == 200, body
        out.append([s["id"] for s in body])
        match = re.search(r'<([^>]+)>; rel="next"', api.last.headers.get("Link", ""))
        url = match.group(1)[len(rig.base_url):] if match else None
        assert len(out) < 10
    return out


async def test_bookmark_unbookmark_and_list_with_link_paging(rig):
    posts = [await post(rig, "birch", f"Note {i}") for i in range(5)]
    api = rig.api("alder")
    for body in posts:
        status, marked = await api.post(f"/api/v1/statuses/{body['id']}/bookmark")
        assert status == 200 and marked["bookmarked"] is True
    status, again = await api.post(f"/api/v1/statuses/{posts[0]['id']}/bookmark")
    assert status == 200 and again["bookmarked"] is True
    assert await rig.count(Bookmark) == 5
    # bookmarked in order 0..4: the list is newest bookmark first
    assert await pages(rig, "alder", "/api/v1/bookmarks", 2) == [
        [posts[4]["id"], posts[3]["id"]], [posts[2]["id"], posts[1]["id"]], [posts[0]["id"]]]
    status, seen = await rig.api("birch").get(f"/api/v1/statuses/{posts[0]['id']}")
    assert seen["bookmarked"] is False  # bookmarks are one's own
    status, listed = await rig.api("birch").get("/api/v1/bookmarks")
    assert status == 200 and listed == []
    status, unmarked = await api.post(f"/api/v1/statuses/{posts[0]['id']}/unbookmark")
    assert status == 200 and unmarked["bookmarked"] is False
    status, unmarked = await api.post(f"/api/v1/statuses/{posts[0]['id']}/unbookmark")
    assert status == 200 and unmarked["bookmarked"] is False
    assert await rig.count(Bookmark) == 4


async def test_only_visible_statuses_are_bookmarked_and_listed(rig):
    private = await post(rig, "cedar", "Privé", visibility="private")
    status, _ = await rig.api("alder").post(f"/api/v1/statuses/{private['id']}/bookmark")
    assert status == 404
    status, _ = await rig.api("alder").post("/api/v1/statuses/123456789/bookmark")
    assert status == 404
    assert await rig.count(Bookmark) == 0
    body = await post(rig, "birch", "Bientôt privé")
    status, _ = await rig.api("alder").post(f"/api/v1/statuses/{body['id']}/bookmark")
    assert status == 200
    status, listed = await rig.api("alder").get("/api/v1/bookmarks")
    assert [s["id"] for s in listed] == [body["id"]]
    # The post becomes visible only to birch's followers (alder is not one): it leaves the list.
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(Post).where(Post.id == int(body["id"]))
                              .values(visibility="private", audience_id=None))
    status, listed = await rig.api("alder").get("/api/v1/bookmarks")
    assert status == 200 and listed == []
    status, _ = await rig.api().get("/api/v1/bookmarks")
    assert status == 401


async def test_favourites_list_pages_by_favourite(rig):
    posts = [await post(rig, "birch", f"Beau {i}") for i in range(3)]
    api = rig.api("alder")
    for body in reversed(posts):  # favourited newest post first
        status, _ = await api.post(f"/api/v1/statuses/{body['id']}/favourite")
        assert status == 200
    assert await rig.count(Favourite) == 3
    assert await pages(rig, "alder", "/api/v1/favourites", 2) == [
        [posts[0]["id"], posts[1]["id"]], [posts[2]["id"]]]
    status, listed = await api.get("/api/v1/favourites")
    assert all(s["favourited"] for s in listed)
    status, listed = await rig.api("cedar").get("/api/v1/favourites")
    assert status == 200 and listed == []
