"""`voisinage seed`: bulk demo data that the API serves as if residents had typed it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from voisinage.models import db
from voisinage.models.actor import GROUP, PERSON, Actor
from voisinage.models.follow import Follow
from voisinage.models.post import Post, PostTag
from voisinage.models.resident import Resident
from voisinage.models.timeline import HomeEntry
from voisinage.models.village import Household, Village

from ..rig.process import VOISINAGE, ServeProcess, cli, free_port, write_config

ENGINES = ["sqlite", "postgresql"]


def _url(engine: str, databases: Any, tmp_path: Path) -> str:
    if engine not in os.environ.get("VOISINAGE_TEST_DATABASES", "sqlite,postgresql"):
        pytest.skip(f"{engine} not selected")
    return f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}" if engine == "sqlite" else databases.postgresql()


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VOISINAGE, "--config", str(config), *args], capture_output=True, text=True, timeout=300)


async def _facts(url: str) -> dict[str, Any]:
    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            async def count(model: Any, *where: Any) -> int:
                return int(await conn.scalar(select(func.count()).select_from(model).where(*where)) or 0)

            posts = (await conn.execute(select(Post.id, Post.author_id, Post.reblog, Post.visibility,
                                                Post.reblog_of_id, Post.created_at).order_by(Post.id))).all()
            villages = (await conn.execute(select(Village.id, Village.slug, Village.actor_id))).all()
            authors_village = dict((await conn.execute(select(Actor.id, Actor.village_id))).all())
            counters = (await conn.execute(select(Actor.id, Actor.kind, Actor.statuses_count,
                                                   Actor.followers_count, Actor.following_count))).all()
            return {
                "residents": await count(Resident), "persons": await count(Actor, Actor.kind == PERSON),
                "households": await count(Household), "follows": await count(Follow),
                "tags": await count(PostTag), "homes": await count(HomeEntry),
                "posts": posts, "villages": villages, "authors_village": authors_village, "counters": counters,
                "statuses": dict((await conn.execute(select(Post.author_id, func.count()).group_by(Post.author_id))).all()),
                "followers": dict((await conn.execute(select(Follow.target_id, func.count()).group_by(Follow.target_id))).all()),
            }
    finally:
        await engine.dispose()


@pytest.mark.parametrize("engine", ENGINES)
def test_seed_fills_every_village_and_the_api_serves_it(engine: str, databases: Any, tmp_path: Path) -> None:
    url = _url(engine, databases, tmp_path)
    port = free_port()
    config = write_config(tmp_path, url, port)
    cli(config, "village", "add", "embourg", "--name", "Embourg")  # pre-existing village
    result = _run(config, "seed", "--villages", "2", "--residents", "12", "--posts", "400")
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("seeded 2 villages, 12 residents, 400 posts"), summary
    password = re.search(r"password: (\S+)$", summary).group(1)

    facts = asyncio.run(_facts(url))
    assert facts["residents"] == facts["persons"] == 12
    assert facts["follows"] == 12 and facts["households"] >= 3
    villages = {v.actor_id: v for v in facts["villages"]}
    assert len(villages) == 3
    originals = [p for p in facts["posts"] if not p.reblog]
    announces = [p for p in facts["posts"] if p.reblog]
    assert len(originals) == 400
    assert len(announces) == sum(1 for p in originals if p.visibility != "private")
    assert {p.visibility for p in originals} >= {"public", "unlisted"}
    assert all(villages.get(a.author_id) for a in announces)  # announces are authored by village Groups
    # Residents and posts in every village, the pre-existing one included.
    post_villages = {facts["authors_village"][p.author_id] for p in originals}
    assert post_villages == {v.id for v in facts["villages"]}
    assert facts["tags"] > 0
    # Ids unique and time-ordered.
    ids = [p.id for p in facts["posts"]]
    assert len(set(ids)) == len(ids)
    times = [p.created_at for p in sorted(facts["posts"], key=lambda p: p.id)]
    assert times == sorted(times)
    # Counters match the rows.
    for actor_id, kind, statuses, followers, following in facts["counters"]:
        assert statuses == facts["statuses"].get(actor_id, 0)
        assert followers == facts["followers"].get(actor_id, 0)
        if kind == PERSON:
            assert following == 1
        else:
            assert kind == GROUP
    # Home rows: the author's post + the announce for each other member who may see it.
    assert facts["homes"] > len(originals)

    # A seeded resident logs in with the printed password and reads a full home timeline.
    engine_ = db.make_engine(url)

    async def a_resident() -> tuple[str, int]:
        async with engine_.connect() as conn:
            row = (await conn.execute(select(Resident.email, Actor.village_id).join(
                Actor, Actor.id == Resident.actor_id).limit(1))).one()
        await engine_.dispose()
        return row.email, row.village_id

    email, village_id = asyncio.run(a_resident())
    server = ServeProcess(config, port).start()
    try:
        app = requests.post(f"{server.url}/api/v1/apps", json={
            "client_name": "seed test", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write"},
            timeout=10).json()
        login = requests.post(f"{server.url}/oauth/token", data={
            "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
            "username": email, "password": password, "scope": "read"}, timeout=10)
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        home = requests.get(f"{server.url}/api/v1/timelines/home", headers={"Authorization": f"Bearer {token}"},
                            timeout=10)
        assert home.status_code == 200, home.text
        statuses = home.json()
        assert len(statuses) == 20
        village_slug = next(v.slug for v in facts["villages"] if v.id == village_id)
        for status in statuses:
            shown = status["reblog"] or status
            assert status["reblog"] is None or status["account"]["username"] == village_slug
            assert shown["content"].startswith("<p>")
        ids_seen = [int(s["id"]) for s in statuses]
        assert ids_seen == sorted(ids_seen, reverse=True)
    finally:
        server.stop()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("args, message", [
    (["--posts", "-1"], "--posts must be 0 or more"),
    (["--residents", "-5"], "--residents must be 0 or more"),
    (["--villages", "-2"], "--villages must be 0 or more"),
    (["--residents", "3"], "no village to put residents in"),
    (["--posts", "3"], "no resident to write posts"),
])
def test_seed_bad_arguments_one_line_nothing_written(engine: str, args: list[str], message: str,
                                                    databases: Any, tmp_path: Path) -> None:
    if engine == "postgresql" and args[0] != "--residents":
        pytest.skip("argument checks do not depend on the engine")
    url = _url(engine, databases, tmp_path)
    config = write_config(tmp_path, url, free_port())
    cli(config, "migrate")
    result = _run(config, "seed", *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    facts = asyncio.run(_facts(url))
    assert facts["persons"] == 0 and not facts["posts"] and not facts["villages"]
