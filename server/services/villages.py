"""Villages and household codes: what the admin does with `voisinage village` and `voisinage codes`."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import GROUP, Actor
from voisinage.models.base import utcnow
from voisinage.models.ids import new_id
from voisinage.models.uris import actor_uri
from voisinage.models.village import Household, Village

# No 0/O, 1/I/L, so a code read off paper is typed right: 31 symbols, 16 of them = 79 bits.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 16
SLUG = re.compile(r"^[a-z0-9_]{1,30}$")
RESERVED_USERNAMES = {"admin", "administrator", "root", "actor", "instance", "support", "moderator",
                      "voisinage", "api", "oauth", "users", "villages", "inbox", "outbox", "register",
                      "static", "media", "about", "settings", "postmaster", "webmaster", "abuse", "security"}


class VillageError(Exception):
    """A problem the admin can fix, told in one line."""


def normalize_code(code: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", code.upper())


def format_code(raw: str) -> str:
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def hash_code(code: str) -> str:
    """Codes carry 79 random bits, so a plain SHA-256 of the normalized code is a safe store."""
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def new_code() -> str:
    return format_code("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)))


async def username_taken(session: AsyncSession, username: str) -> bool:
    if username.lower() in RESERVED_USERNAMES:
        return True
    found = await session.scalar(
        select(Actor.id).where(func.lower(Actor.username) == username.lower(), Actor.domain == ""))
    return found is not None


async def create_village(session: AsyncSession, base_url: str, slug: str, name: str) -> Village:
    """A village and its Group actor (`@slug@domain`), which residents follow."""
    if not SLUG.match(slug):
        raise VillageError(f"village slug {slug!r} must be 1-30 lower-case letters, digits or _")
    name = name.strip()
    if not name or len(name) > 100:
        raise VillageError("village name must be 1-100 characters")
    if await session.scalar(select(Village.id).where(Village.slug == slug)) is not None:
        raise VillageError(f"village {slug} already exists")
    if await username_taken(session, slug):
        raise VillageError(f"the name {slug} is already used by an account")
    village = Village(id=new_id(), slug=slug, name=name)
    session.add(village)
    await session.flush()
    uri = actor_uri(base_url, slug, group=True)
    actor = Actor(id=new_id(), username=slug, domain="", kind=GROUP, uri=uri, url=uri,
                  inbox_uri=f"{uri}/inbox", outbox_uri=f"{uri}/outbox", followers_uri=f"{uri}/followers",
                  shared_inbox_uri=f"{base_url}/inbox", display_name=name, locked=True,
                  village_id=village.id, note="")
    session.add(actor)
    await session.flush()
    village.actor_id = actor.id
    return village


async def get_village(session: AsyncSession, slug: str) -> Village:
    village = await session.scalar(select(Village).where(Village.slug == slug))
    if village is None:
        raise VillageError(f"unknown village {slug!r} (see `voisinage village list`)")
    return village


async def list_villages(session: AsyncSession) -> list[Village]:
    return list(await session.scalars(select(Village).order_by(Village.slug)))


@dataclass(frozen=True)
class IssuedCode:
    code: str
    village: Village
    uses: int


async def generate_codes(session: AsyncSession, slug: str, count: int, uses: int) -> list[IssuedCode]:
    """`count` new household codes for a village; only their hashes are kept."""
    if count < 1 or count > 100000:
        raise VillageError("--count must be between 1 and 100000")
    if uses < 1 or uses > 100:
        raise VillageError("--uses must be between 1 and 100")
    village = await get_village(session, slug)
    issued = []
    for _ in range(count):
        code = new_code()
        session.add(Household(id=new_id(), village_id=village.id, code_hash=hash_code(code), max_uses=uses))
        issued.append(IssuedCode(code, village, uses))
    await session.flush()
    return issued


async def revoke_code(session: AsyncSession, code: str) -> Household:
    household = await session.scalar(select(Household).where(Household.code_hash == hash_code(code)))
    if household is None:
        raise VillageError("unknown household code")
    if household.revoked_at is None:
        household.revoked_at = utcnow()
    return household
