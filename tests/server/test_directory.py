"""The directory: the residents of one's own village, discoverable ones only, by activity or age."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update

from voisinage.models.actor import Actor
from voisinage.models.db import write_session

from .test_visibility import post


async def directory(rig: Any, who: str, **params: str) -> list[str]:
    status, body = await rig.api(who).get("/api/v1/directory", params=params or None)
    assert status == 200, body
    return [a["username"] for a in body]


async def test_only_the_residents_of_my_village(rig):
    await rig.add_resident("elm", "north")
    assert sorted(await directory(rig, "alder")) == ["alder", "birch", "elm"]
    assert sorted(await directory(rig, "alder", local="false")) == ["alder", "birch", "elm"]
    assert await directory(rig, "cedar", local="true") == ["cedar"]
    assert await directory(rig, "dogwood") == ["dogwood"]


async def test_order_active_and_new(rig):
    await rig.add_resident("elm", "north")
    await post(rig, "alder", "Premier")
    await post(rig, "birch", "Deuxième")
    assert await directory(rig, "alder", order="active") == ["birch", "alder", "elm"]
    assert (await directory(rig, "alder", order="new"))[0] == "elm"
    assert await directory(rig, "alder", order="active", limit="1", offset="1") == ["alder"]


async def test_opting_out_and_suspended_accounts(rig):
    status, _ = await rig.api("birch").patch("/api/v1/accounts/update_credentials", json={"discoverable": False})
    assert status == 200
    assert await directory(rig, "alder") == ["alder"]
    await rig.add_resident("elm", "north")
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(Actor).where(Actor.id == rig["elm"].actor_id)
                              .values(suspended_at=dt.datetime.now(dt.UTC)))
    assert await directory(rig, "alder") == ["alder"]


async def test_bad_parameters(rig):
    for params in ({"order": "random"}, {"limit": "many"}, {"offset": "-1"}, {"local": "perhaps"}):
        status, body = await rig.api("alder").get("/api/v1/directory", params=params)
        assert status == 422 and "error" in body, params
    status, _ = await rig.api().get("/api/v1/directory")
    assert status == 401
