"""Registering a resident with a household code: shared by POST /api/v1/accounts and /register."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import PERSON, Actor
from voisinage.models.base import utcnow
from voisinage.models.counters import add_to_counter
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.ids import new_id
from voisinage.models.resident import Resident
from voisinage.models.uris import actor_uri
from voisinage.models.village import Household, Village

from .passwords import hash_password
from .villages import hash_code, username_taken

USERNAME = re.compile(r"^[A-Za-z0-9_]{1,30}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
MAX_PASSWORD = 128


@dataclass
class RegistrationError(Exception):
    """What is wrong, per field, as Mastodon's `details` (`{"email": [{"error": "ERR_TAKEN", ...}]}`)."""

    details: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    code_failed: bool = False  # the household code was the problem (counts toward the brute-force limit)

    def add(self, name: str, error: str, description: str) -> None:
        self.details.setdefault(name, []).append({"error": error, "description": description})

    @property
    def message(self) -> str:
        parts = [f"{name} {d['description']}" for name, items in self.details.items() for d in items]
        return "Validation failed: " + ", ".join(parts)


@dataclass(frozen=True)
class NewResident:
    code: str
    display_name: str
    email: str
    password: str
    username: str | None = None  # None: made from the display name
    locale: str = "fr"
    agreement: bool = True
    # An argon2 hash of `password` made beforehand (bulk imports, the test rig): saves hashing per account.
    password_hash: str | None = None


def username_from_name(display_name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:24]
    return base or "voisin"


async def free_username(session: AsyncSession, base: str) -> str:
    candidate, n = base, 1
    while await username_taken(session, candidate):
        n += 1
        candidate = f"{base[:26]}{n}"
    return candidate


async def find_household(session: AsyncSession, code: str) -> Household | None:
    """The household a code opens, if it is known, not revoked and not used up."""
    household = await session.scalar(select(Household).where(Household.code_hash == hash_code(code)))
    if household is None or household.revoked_at is not None or household.uses >= household.max_uses:
        return None
    return household


async def register_resident(session: AsyncSession, base_url: str, form: NewResident) -> Actor:
    """Create the verified account: Person actor, Resident, household use, follow of the home village.

    Raises RegistrationError listing every problem; nothing is written then.
    """
    errors = RegistrationError()
    display_name = " ".join(form.display_name.split())
    email = form.email.strip().lower()
    if not display_name or len(display_name) > 100:
        errors.add("display_name", "ERR_BLANK" if not display_name else "ERR_TOO_LONG",
                   "must be your first and last name (at most 100 characters)")
    if not EMAIL.match(email) or len(email) > 254:
        errors.add("email", "ERR_INVALID", "is not a valid e-mail address")
    elif await session.scalar(select(Resident.actor_id).where(Resident.email == email)) is not None:
        errors.add("email", "ERR_TAKEN", "is already registered")
    if len(form.password) < MIN_PASSWORD or len(form.password) > MAX_PASSWORD:
        errors.add("password", "ERR_TOO_SHORT" if len(form.password) < MIN_PASSWORD else "ERR_TOO_LONG",
                   f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if not form.agreement:
        errors.add("agreement", "ERR_ACCEPTED", "must be accepted (the house rules)")
    if form.username is not None:
        if not USERNAME.match(form.username):
            errors.add("username", "ERR_INVALID", "may only contain letters, digits and _ (at most 30)")
        elif await username_taken(session, form.username):
            errors.add("username", "ERR_TAKEN", "is already taken")
    household = await find_household(session, form.code) if form.code.strip() else None
    if household is None:
        errors.add("invite_code", "ERR_INVALID", "is not a valid household code (wrong, revoked or used up)")
        errors.code_failed = bool(form.code.strip())
    if errors.details:
        raise errors

    # Take one use of the household atomically: two registrations racing for the last use cannot both win.
    taken = await session.execute(
        update(Household).where(Household.id == household.id, Household.uses < Household.max_uses)
        .values(uses=Household.uses + 1))
    if taken.rowcount != 1:
        errors.add("invite_code", "ERR_INVALID", "is not a valid household code (wrong, revoked or used up)")
        errors.code_failed = True
        raise errors
    village = await session.get(Village, household.village_id)
    village_actor = await session.get(Actor, village.actor_id)
    username = form.username or await free_username(session, username_from_name(display_name))
    uri = actor_uri(base_url, username)
    now = utcnow()
    actor = Actor(
        id=new_id(), username=username, domain="", kind=PERSON, uri=uri, url=uri,
        inbox_uri=f"{uri}/inbox", outbox_uri=f"{uri}/outbox", followers_uri=f"{uri}/followers",
        shared_inbox_uri=f"{base_url}/inbox", display_name=display_name, village_id=village.id,
        fields=[{"name": "Village", "value": village.name, "verified_at": now.strftime("%Y-%m-%dT%H:%M:%S.000Z")}],
        following_count=1,
    )
    session.add(actor)
    await session.flush()
    session.add(Resident(actor_id=actor.id, email=email, password_hash=form.password_hash or hash_password(form.password),
                         household_id=household.id, locale=form.locale if form.locale in ("fr", "nl", "de", "en") else "fr"))
    session.add(Follow(id=new_id(), follower_id=actor.id, target_id=village_actor.id, state=ACCEPTED))
    await add_to_counter(session, Actor, village_actor.id, "followers_count", 1)
    await session.flush()
    return actor
