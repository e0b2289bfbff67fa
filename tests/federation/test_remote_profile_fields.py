"""Remote profile fields: Pleroma and GoToSocial send more than Mastodon's 4; up to 20 are kept, each
within its length cap. Our own residents keep Mastodon's 4."""

from __future__ import annotations

from sqlalchemy import update

from voisinage.federation.actors import MAX_FIELD_TEXT, MAX_FIELDS
from voisinage.models.actor import Actor
from voisinage.models.db import write_session

from ..rig.pair import Pair
from .test_inbox import B, send


async def test_up_to_20_remote_fields_are_kept_each_capped(pair: Pair) -> None:
    assert MAX_FIELDS == 20
    long = "x" * (MAX_FIELD_TEXT + 500)
    fields = [{"name": f"Champ {n}", "value": f"valeur {n}", "verified_at": None} for n in range(25)]
    fields[1] = {"name": long, "value": long, "verified_at": None}
    async with write_session(pair.b.sessionmaker) as session:  # as another server's profile could be
        await session.execute(update(Actor).where(Actor.id == pair.b["cedar"].actor_id).values(fields=fields))
    cedar = f"{B}/users/cedar"
    update_person = {"id": f"{cedar}#updates/1", "type": "Update", "actor": cedar,
                     "object": {"id": cedar, "type": "Person"}}
    assert await send(pair, update_person) == 202  # a.test fetches cedar's document to verify, then again
    await pair.drain()
    [stored] = await pair.a.rows(Actor, Actor.uri == cedar)
    assert len(stored.fields) == 20
    assert [f["name"] for f in stored.fields][2:] == [f"Champ {n}" for n in range(2, 20)]
    assert len(stored.fields[1]["name"]) == MAX_FIELD_TEXT and len(stored.fields[1]["value"]) <= MAX_FIELD_TEXT
    code, shown = await pair.a.api("alder").get(f"/api/v1/accounts/{stored.id}")
    assert code == 200 and len(shown["fields"]) == 20


async def test_local_residents_keep_four_fields(pair: Pair) -> None:
    fields = [{"name": f"Champ {n}", "value": f"valeur {n}"} for n in range(5)]
    code, _ = await pair.a.api("alder").patch("/api/v1/accounts/update_credentials", json={"fields_attributes": fields})
    assert code == 422
    [alder] = await pair.a.rows(Actor, Actor.id == pair.a["alder"].actor_id)
    assert len(alder.fields) <= 4
