"""POST /api/v1/accounts with a household code, and the failed-code limit (per IP, per code)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func

from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.follow import Follow
from voisinage.models.oauth import Token, token_digest
from voisinage.models.resident import Resident
from voisinage.models.village import Household
from voisinage.server.app import create_app
from voisinage.server.services import villages

from ..conftest import make_settings
from ..rig.commune import Commune
from .test_oauth import app_token

PASSWORD = "a long enough password"


def new_account(code: str, n: int = 1, **changes: Any) -> dict[str, Any]:
    body = {"username": f"neighbour{n}", "email": f"neighbour{n}@example.org", "password": PASSWORD,
            "agreement": True, "locale": "nl", "invite_code": code}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def create_account(commune: Commune, token: str, body: dict[str, Any],
                         headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    api = commune.api()
    status, payload = await api.post("/api/v1/accounts", json=body,
                                     headers={"Authorization": f"Bearer {token}", **(headers or {})})
    return status, payload, api.last.headers


async def snapshot(commune: Commune) -> tuple[int, ...]:
    async with commune.sessionmaker() as session:
        uses = await session.scalar(func.coalesce(func.sum(Household.uses), 0).select())
    return (await commune.count(Actor), await commune.count(Resident), await commune.count(Follow),
            await commune.count(Token), int(uses or 0))


async def make_commune(aiohttp_client: Any, db_url: str, tmp_path: Any, **sections: Any) -> Commune:
    settings = make_settings(db_url, tmp_path, **sections)
    commune = Commune(await aiohttp_client(create_app(settings)))
    if "ratelimit" in sections:
        commune.hold_clock()
    for slug in ("north", "south"):
        await commune.add_village(slug)
    return commune


# --- success ---------------------------------------------------------------------------------------

async def test_register_through_the_api(commune):
    code = (await commune.codes("north", uses=2))[0]
    token = await app_token(commune.client)
    status, body, _ = await create_account(commune, token, new_account(code, display_name="Anne Voisine"))
    assert status == 200, body
    assert body["token_type"] == "Bearer" and isinstance(body["created_at"], int)
    assert set(body["scope"].split()) == {"read", "write", "follow"}

    actor = (await commune.rows(Actor, Actor.username == "neighbour1"))[0]
    assert actor.display_name == "Anne Voisine" and actor.domain == ""
    assert actor.fields[0]["name"] == "Village" and actor.fields[0]["value"] == "Nord"
    assert actor.fields[0]["verified_at"]
    resident = (await commune.rows(Resident, Resident.actor_id == actor.id))[0]
    assert resident.email == "neighbour1@example.org" and resident.locale == "nl"
    village_actor = commune.village_ids["north"]
    assert await commune.count(Follow, Follow.follower_id == actor.id, Follow.target_id == village_actor) == 1
    household = (await commune.rows(Household, Household.id == resident.household_id))[0]
    assert household.uses == 1
    tokens = await commune.rows(Token, Token.token_hash == token_digest(body["access_token"]))
    assert tokens[0].actor_id == actor.id
    status, app = await commune.api().get("/api/v1/apps/verify_credentials",
                                          headers={"Authorization": f"Bearer {body['access_token']}"})
    assert status == 200 and app["name"] == "Test App"


async def test_display_name_falls_back_to_names_then_username(commune):
    code = (await commune.codes("north", uses=3))[0]
    token = await app_token(commune.client)
    status, _, _ = await create_account(commune, token, new_account(code, 1, first_name="Jean", last_name="Dupont"))
    assert status == 200
    status, _, _ = await create_account(commune, token, new_account(code, 2))
    assert status == 200
    names = {a.username: a.display_name for a in await commune.rows(Actor, Actor.kind == "Person")}
    assert names == {"neighbour1": "Jean Dupont", "neighbour2": "neighbour2"}


async def test_registration_needs_an_app_token_with_write_accounts(commune):
    code = (await commune.codes("north"))[0]
    before = await snapshot(commune)
    status, _, _ = await create_account(commune, "", new_account(code))
    assert status == 401
    read_only = await app_token(commune.client, scopes="read")
    status, _, _ = await create_account(commune, read_only, new_account(code))
    assert status == 403
    after = await snapshot(commune)
    assert after[:3] == before[:3] and after[4] == before[4]


# --- every failure: 422 in Mastodon's shape, nothing stored ----------------------------------------

async def test_every_failure_is_422_and_stores_nothing(commune):
    good, revoked, single = (await commune.codes("north", count=3, uses=1))
    async with write_session(commune.sessionmaker) as session:
        await villages.revoke_code(session, revoked)
    token = await app_token(commune.client)
    status, _, _ = await create_account(commune, token, new_account(single, 9, email="first@example.org"))
    assert status == 200  # uses the single-use code up
    before = await snapshot(commune)
    cases = [
        ("invite_code", "ERR_INVALID", new_account("WRNG-CODE-WRNG-CODE")),
        ("invite_code", "ERR_INVALID", new_account(revoked)),
        ("invite_code", "ERR_INVALID", new_account(single)),
        ("invite_code", "ERR_INVALID", new_account(good, invite_code=None)),
        ("email", "ERR_TAKEN", new_account(good, email="first@example.org")),
        ("email", "ERR_INVALID", new_account(good, email="not-an-address")),
        ("password", "ERR_TOO_SHORT", new_account(good, password="short")),
        ("agreement", "ERR_ACCEPTED", new_account(good, agreement=False)),
        ("agreement", "ERR_ACCEPTED", new_account(good, agreement=None)),
        ("username", "ERR_TAKEN", new_account(good, username="north")),  # a village's name is reserved
        ("username", "ERR_TAKEN", new_account(good, username="neighbour9")),
        ("username", "ERR_INVALID", new_account(good, username="bad name!")),
    ]
    for field, error, body in cases:
        status, payload, _ = await create_account(commune, token, body)
        assert status == 422, (field, payload)
        assert payload["error"].startswith("Validation failed:")
        assert error in [d["error"] for d in payload["details"][field]], (field, payload)
    assert await snapshot(commune) == before


# --- failed-code limit ----------------------------------------------------------------------------

async def test_failed_codes_are_limited_per_ip_but_successes_are_not(aiohttp_client, db_url, tmp_path):
    commune = await make_commune(aiohttp_client, db_url, tmp_path, ratelimit={"failed_codes_per_hour": 3})
    token = await app_token(commune.client)
    code = (await commune.codes("north", uses=10))[0]
    # successful registrations from one address are not throttled by this limit
    for n in range(5):
        status, body, _ = await create_account(commune, token, new_account(code, n))
        assert status == 200, body
    for n in range(3):
        status, body, _ = await create_account(commune, token, new_account(f"WRNG-{n}AAA-BBBB-CCCC", 50 + n))
        assert status == 422
    before = await snapshot(commune)
    # over the limit: even a good code from this address is not checked
    status, body, headers = await create_account(commune, token, new_account(code, 60))
    assert status == 429 and body["error"]
    assert headers["X-RateLimit-Limit"] == "3" and headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Reset"].endswith("Z") and "T" in headers["X-RateLimit-Reset"]
    assert await snapshot(commune) == before


async def test_failed_codes_are_limited_per_code_across_addresses(aiohttp_client, db_url, tmp_path):
    commune = await make_commune(aiohttp_client, db_url, tmp_path, ratelimit={"failed_codes_per_hour": 3},
                                 server={"trusted_proxies": ("127.0.0.1",)})
    token = await app_token(commune.client)
    used_up = (await commune.codes("north", uses=1))[0]
    status, _, _ = await create_account(commune, token, new_account(used_up, 1),
                                        headers={"X-Forwarded-For": "198.51.100.1"})
    assert status == 200
    for n in range(3):
        status, _, _ = await create_account(commune, token, new_account(used_up, 10 + n),
                                            headers={"X-Forwarded-For": f"203.0.113.{n + 1}"})
        assert status == 422
    status, _, headers = await create_account(commune, token, new_account(used_up, 20),
                                              headers={"X-Forwarded-For": "203.0.113.99"})
    assert status == 429 and headers["X-RateLimit-Limit"] == "3"
    # the same code written differently is the same code
    status, _, _ = await create_account(commune, token, new_account(used_up.lower().replace("-", " "), 21),
                                        headers={"X-Forwarded-For": "203.0.113.98"})
    assert status == 429
    # another code from a fresh address is still served
    fresh = (await commune.codes("north"))[0]
    status, _, _ = await create_account(commune, token, new_account(fresh, 30),
                                        headers={"X-Forwarded-For": "203.0.113.97"})
    assert status == 200


async def test_x_forwarded_for_counts_behind_a_trusted_proxy(aiohttp_client, db_url, tmp_path):
    """Behind a trusted proxy, each forwarded address has its own budget."""
    proxied = await make_commune(aiohttp_client, db_url, tmp_path, ratelimit={"failed_codes_per_hour": 2},
                                 server={"trusted_proxies": ("127.0.0.1",)})
    token = await app_token(proxied.client)
    for n in range(2):
        status, _, _ = await create_account(proxied, token, new_account(f"WRNG-{n}AAA-AAAA-AAAA"),
                                            headers={"X-Forwarded-For": "203.0.113.1"})
        assert status == 422
    status, _, _ = await create_account(proxied, token, new_account("WRNG-9AAA-AAAA-AAAA"),
                                        headers={"X-Forwarded-For": "203.0.113.1"})
    assert status == 429
    status, _, _ = await create_account(proxied, token, new_account("WRNG-8AAA-AAAA-AAAA"),
                                        headers={"X-Forwarded-For": "203.0.113.2"})
    assert status == 422


async def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(aiohttp_client, db_url, tmp_path):
    """No trusted proxy: the header is ignored, the peer address is what counts."""
    direct = await make_commune(aiohttp_client, db_url, tmp_path, ratelimit={"failed_codes_per_hour": 2})
    token = await app_token(direct.client)
    for n in range(2):
        status, _, _ = await create_account(direct, token, new_account(f"WRNG-{n}BBB-AAAA-AAAA"),
                                            headers={"X-Forwarded-For": f"203.0.113.{n + 10}"})
        assert status == 422
    before = await snapshot(direct)
    status, _, _ = await create_account(direct, token, new_account("WRNG-7BBB-AAAA-AAAA"),
                                        headers={"X-Forwarded-For": "203.0.113.50"})
    assert status == 429
    assert await snapshot(direct) == before


async def test_zero_means_unlimited(aiohttp_client, db_url, tmp_path):
    commune = await make_commune(aiohttp_client, db_url, tmp_path, ratelimit={"failed_codes_per_hour": 0})
    token = await app_token(commune.client)
    for n in range(12):
        status, _, _ = await create_account(commune, token, new_account(f"WRNG-{n:02d}AA-AAAA-AAAA"))
        assert status == 422
