"""No N+1: a timeline page costs the same number of statements for 20 statuses as for 40, whatever the
statuses carry (boosts, mentions, tags, polls, media, the reader's favourites, bookmarks and pins)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from voisinage.models import db, pg_fast
from voisinage.server.api import to_api
from voisinage.server.keys import ENGINE

from ..rig.statements import recorded_statements
from .test_status_media import upload_photo


async def _post(rig: Any, who: str, **body: Any) -> dict[str, Any]:
    status, data = await rig.api(who).post("/api/v1/statuses", json=body)
    assert status == 200, data
    return data


async def _fill(rig: Any) -> None:
    """45 statuses of every kind in birch's home timeline (the village announces its members' posts)."""
    for i in range(45):
        kind = i % 5
        if kind == 0:
            made = await _post(rig, "alder", status=f"Vends vélo {i} #annonce @birch")
        elif kind == 1:
            made = await _post(rig, "alder", status=f"Sondage {i}", poll={"options": ["oui", "non"], "expires_in": 3600})
        elif kind == 2:
            photo = await upload_photo(rig, "alder")
            made = await _post(rig, "alder", status=f"Photo {i} #jardin", media_ids=[photo])
        elif kind == 3:
            made = await _post(rig, "birch", status=f"Mon message {i}")
            if i < 10:
                assert (await rig.api("birch").post(f"/api/v1/statuses/{made['id']}/pin"))[0] == 200
        else:
            made = await _post(rig, "alder", status=f"Aide demandée {i} #entraide")
        if i % 3 == 0:
            assert (await rig.api("birch").post(f"/api/v1/statuses/{made['id']}/favourite"))[0] == 200
        if i % 4 == 0:
            assert (await rig.api("birch").post(f"/api/v1/statuses/{made['id']}/bookmark"))[0] == 200


async def _statements(rig: Any, path: str, limit: int, cold: bool = True) -> tuple[int, list[dict[str, Any]]]:
    """The statements of a page, and the page; `cold`: no post's rendering cached before."""
    if cold:
        to_api._STATUSES.clear()
    with recorded_statements(rig.app[ENGINE]) as seen:
        status, page = await rig.api("birch").get(path, params={"limit": str(limit)})
    assert status == 200, page
    return len(seen), page


async def test_timeline_pages_of_20_and_40_cost_the_same_statements(rig):
    await _fill(rig)
    for path in ("/api/v1/timelines/home", "/api/v1/timelines/public?local=true",
                 "/api/v1/timelines/tag/annonce", "/api/v1/accounts/{alder}/statuses"):
        path = path.format(alder=rig["alder"].id)
        await rig.api("birch").get(path, params={"limit": "1"})  # token cache warmed
        small, page20 = await _statements(rig, path, 20)
        large, page40 = await _statements(rig, path, 40)
        assert small == large, path
        assert 0 < small <= 16, (path, small)  # a bounded number: the page, then one per kind of relation
        warm, again = await _statements(rig, path, 40, cold=False)  # its posts' renderings cached
        assert warm <= large and again == page40, path
        expected = {"tag": 9, "accounts": 36}  # #annonce statuses; alder's statuses (birch wrote 9)
        wanted = next((n for key, n in expected.items() if key in path), 40)
        assert len(page20) == 20 if wanted >= 20 else len(page20) == wanted, path
        assert len(page40) == wanted, path
    # and the page really carries what the statements loaded
    _, home = await _statements(rig, "/api/v1/timelines/home", 40)
    shown = [s["reblog"] or s for s in home]
    assert any(s["poll"] for s in shown) and any(s["media_attachments"] for s in shown)
    assert any(s["favourited"] for s in shown) and any(s["bookmarked"] for s in shown)
    assert any(s["mentions"] for s in shown) and any(s["tags"] for s in shown)
    assert any(s["reblog"] for s in home) and any(s["pinned"] for s in shown)


async def test_the_fast_read_path_renders_exactly_what_sqlalchemy_would(rig, monkeypatch):
    """A page's statements run through sqlite3 or asyncpg directly (`db.fast`): every field of every
    status (dates, booleans, JSON fields, polls, media, marks) is the same as through SQLAlchemy."""
    await _fill(rig)
    paths = ("/api/v1/timelines/home", "/api/v1/timelines/public?local=true", "/api/v1/timelines/home?min_id=0",
             "/api/v1/timelines/tag/annonce", f"/api/v1/accounts/{rig['alder'].id}/statuses")
    fast_pages = [await rig.api("birch").get(path, params={"limit": "40"}) for path in paths]
    used: list[bool] = []
    real_sqlite, real_pg = db._fast_rows, pg_fast.run_fast

    def counted(*args: Any) -> Any:
        used.append(True)
        return real_sqlite(*args)

    async def counted_pg(*args: Any, **options: Any) -> Any:
        rows = await real_pg(*args, **options)
        used.append(rows is not None)
        return rows

    async def declined(*args: Any, **options: Any) -> None:
        return None

    monkeypatch.setattr(db, "_fast_rows", counted)
    monkeypatch.setattr(pg_fast, "run_fast", counted_pg)
    again = [await rig.api("birch").get(path, params={"limit": "40"}) for path in paths]
    assert json.dumps(again, sort_keys=True) == json.dumps(fast_pages, sort_keys=True)
    assert len(used) > 10 and all(used)  # every marked read of the pages took the fast path
    monkeypatch.setattr(db, "_fast_rows", lambda *args: None)  # SQLAlchemy runs every statement
    monkeypatch.setattr(pg_fast, "run_fast", declined)
    to_api._STATUSES.clear()  # rendered from the rows again (`again` came from the cache)
    slow_pages = [await rig.api("birch").get(path, params={"limit": "40"}) for path in paths]
    assert json.dumps(slow_pages, sort_keys=True) == json.dumps(fast_pages, sort_keys=True)  # false is not 0
    assert all(status == 200 and len(page) >= 9 for status, page in fast_pages)


def test_fast_rows_answer_like_a_result() -> None:
    rows = db.FastRows([(1, "a"), (2, "b")])
    assert rows.all() == [(1, "a"), (2, "b")] and rows.first() == (1, "a")
    assert rows.scalars() == [1, 2] and db.FastRows().first() is None
    assert db.FastRows([(3,)]).one() == (3,)
    for wrong in (db.FastRows(), rows):
        try:
            wrong.one()
        except ValueError:
            continue
        raise AssertionError("one() accepted a result without exactly one row")


async def test_fast_rows_have_the_values_and_types_sqlalchemy_gives(rig):
    """Row by row, value and type (a boolean is not 1, a date is not a string) for each relation
    statement of a page, the posts statement of the home page and the reader's statement."""
    from sqlalchemy import select

    from voisinage.models.actor import Actor
    from voisinage.models.base import utcnow
    from voisinage.models.post import Post
    from voisinage.server.api import timelines

    await _fill(rig)
    async with db.read_session(rig.sessionmaker) as session:
        post_ids = list(await session.scalars(select(Post.id)))
        actor_ids = list(await session.scalars(select(Actor.id)))
        birch = int(rig["birch"].id)
        cases = [(name, to_api._build_statement(name), {"ids": ids, "me": birch, "uncached": ids[::2]})
                 for name, ids in (("accounts", actor_ids), ("account_versions", actor_ids), ("posts", post_ids),
                                   ("post_keys", post_ids), ("relations", post_ids), ("relations_and_marks", post_ids),
                                   ("marks", post_ids), ("apps", [1, 2, 3]), ("posts", post_ids[:1]))]
        cases.append(("reader", timelines._reader_statement(), {"me": birch}))
        village = (await session.execute(timelines._reader_statement(), {"me": birch})).one()[0]
        cases.append(("home candidates", timelines._home_candidates((False, False, False)),
                      {"me": birch, "page_limit": 50}))
        cases.append(("home statuses and originals", timelines._home_statuses(True, False),
                      {"me": birch, "village": village, "now": utcnow(), "ids": post_ids}))
        for name, statement, values in cases:
            plain = statement.execution_options(**{db.FAST: False})
            marked = db.fast(plain)
            fast = await session.execute(marked, values)
            assert isinstance(fast, db.FastRows), name
            slow = (await (await session.connection()).execute(plain, values)).all()
            assert [[(type(v), v) for v in row] for row in fast] == [[(type(v), v) for v in row] for row in slow], name
            assert len(fast) > 0 or name == "apps", name
            if slow:
                assert list(fast[0]._fields) == list(slow[0]._fields), name


def _full_account_reads(statements: list[str]) -> int:
    """Statements that read whole account rows (the profile's note among their columns)."""
    return sum(1 for s in statements if "actors.note" in s and s.lstrip().upper().startswith("SELECT"))


def _alders(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alder's Account entities on a page (in the statuses and in the village's announces of them)."""
    shown = [status["reblog"] or status for status in page]
    return [status["account"] for status in shown if status["account"]["username"] == "alder"]


@pytest.mark.parametrize("text", ["Qui a vu mon chat ? @birch", "Tondeuse à prêter"])
async def test_accounts_are_rendered_once_per_version_of_their_row(rig, text):
    """A page's authors are rendered once and then taken from the cache while their rows do not change;
    a profile change or a new status (its counter) is seen at the next read. A home page's authors (the
    village's, its posts' originals') come with their versions in the page's statement: without a
    mention, a warm page reads no actor at all."""
    await _post(rig, "alder", status=text)
    home = "/api/v1/timelines/home"
    await rig.api("birch").get(home)
    with recorded_statements(rig.app[ENGINE]) as seen:
        status, page = await rig.api("birch").get(home)
    assert status == 200 and _alders(page)
    assert _full_account_reads(seen) == 0, seen
    if "@" not in text:
        assert not [s for s in seen if " ".join(s.split()).startswith("SELECT actors.")], seen
    count = _alders(page)[0]["statuses_count"]

    status, _ = await rig.api("alder").patch("/api/v1/accounts/update_credentials",
                                             data={"display_name": "Alder du moulin"})
    assert status == 200
    with recorded_statements(rig.app[ENGINE]) as seen:
        status, page = await rig.api("birch").get(home)
    assert {account["display_name"] for account in _alders(page)} == {"Alder du moulin"}
    assert _full_account_reads(seen) == 1  # alder's row only, read again once

    await _post(rig, "alder", status="Retrouvé !")
    status, page = await rig.api("birch").get(home)
    assert len(_alders(page)) >= 2
    assert {account["statuses_count"] for account in _alders(page)} == {count + 1}
    if "@birch" in text:  # the mention's notification shows the account as it is now
        status, notes = await rig.api("birch").get("/api/v1/notifications")
        assert status == 200 and notes[0]["account"]["display_name"] == "Alder du moulin"


def _shown(page: list[dict[str, Any]], status_id: str) -> dict[str, Any]:
    """The status on a page, itself or as the original of its village's announce."""
    return next(s["reblog"] or s for s in page if (s["reblog"] or s)["id"] == status_id)


async def test_a_cached_status_still_shows_its_counts_marks_votes_edits_and_reply_link(rig):
    """A post's rendering is kept per version of its row (`edited_at`): a page of posts read before
    reads neither their whole rows nor their mentions and tags, yet shows what changes without an
    edit (counts, the reader's marks, a poll's votes, a reply whose parent is gone) and an edit at once."""
    parent = await _post(rig, "alder", status="Qui prête une échelle ?")
    reply = await _post(rig, "alder", status="Pour le toit #entraide @birch", in_reply_to_id=parent["id"])
    poll = await _post(rig, "alder", status="Marché le samedi ?",
                       poll={"options": ["oui", "non"], "expires_in": 3600})
    home = "/api/v1/timelines/home"
    _, cold = await _statements(rig, home, 40)
    with recorded_statements(rig.app[ENGINE]) as seen:
        status, warm = await rig.api("birch").get(home, params={"limit": "40"})
    assert status == 200 and warm == cold
    assert not [s for s in seen if "posts.content" in s or "FROM post_tags" in s], seen
    assert _shown(warm, reply["id"])["in_reply_to_id"] == parent["id"]
    assert _shown(warm, reply["id"])["mentions"][0]["username"] == "birch"

    assert (await rig.api("cedar").post(f"/api/v1/statuses/{reply['id']}/favourite"))[0] == 200
    assert (await rig.api("birch").post(f"/api/v1/statuses/{reply['id']}/bookmark"))[0] == 200
    assert (await rig.api("birch").post(f"/api/v1/polls/{poll['poll']['id']}/votes", json={"choices": ["1"]}))[0] == 200
    _, page = await _statements(rig, home, 40, cold=False)
    shown = _shown(page, reply["id"])
    assert shown["favourites_count"] == 1 and shown["bookmarked"] is True and shown["favourited"] is False
    voted = _shown(page, poll["id"])["poll"]
    assert voted["voted"] is True and voted["own_votes"] == [1] and voted["votes_count"] == 1

    status, _ = await rig.api("alder").put(f"/api/v1/statuses/{reply['id']}", json={"status": "Pour la gouttière"})
    assert status == 200
    assert (await rig.api("alder").delete(f"/api/v1/statuses/{parent['id']}"))[0] == 200
    _, page = await _statements(rig, home, 40, cold=False)
    shown = _shown(page, reply["id"])
    assert "gouttière" in shown["content"] and shown["edited_at"] is not None and shown["tags"] == []
    assert shown["in_reply_to_id"] is None and shown["mentions"] == [] and shown["favourites_count"] == 1
    assert not [s for s in page if (s["reblog"] or s)["id"] == parent["id"]]
    _, fresh = await _statements(rig, home, 40)  # and all of it as rendered from the rows
    assert fresh == page

    assert shown["application"] is not None  # an application deleted nulls its posts' (SET NULL)
    from sqlalchemy import update

    from voisinage.models.post import Post
    async with db.write_session(rig.sessionmaker) as session:
        await session.execute(update(Post).where(Post.id == int(reply["id"])).values(application_id=None))
    _, page = await _statements(rig, home, 40, cold=False)
    assert _shown(page, reply["id"])["application"] is None
