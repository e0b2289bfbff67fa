"""`voisinage seed`: fill an instance with realistic demo and benchmark data, fast.

Rows are written with SQLAlchemy Core bulk inserts (lists of dicts, batches of `BATCH` rows), never
one ORM object per row. What one post produces is what the real posting path (`services.posting`)
produces for a resident without followers of their own:

- the post (public mostly, some unlisted, a few private) with its hashtags (`PostTag`, `canonical`);
- for public and unlisted posts, the village's announce (a boost row authored by the village's Group);
- home timeline rows: the author's own post, and the announce for every local follower of the village
  who may see it (`models.audience` rule: unlisted only to members of the same village); private
  posts reach only the author (seeded residents follow only their home village).

Seeded posts are history: they are not delivered to partner instances (no outbox rows), notify
nobody, and ignore blocks and mutes (seeded residents have none). Home rows grow as posts x members
of a village: 1,000,000 posts over villages of 10 members is about 10,000,000 home rows.

When no resident is seeded (`--residents 0`), posts are written by the existing residents; their own
followers (if any) then get no home rows for them (only village members do).

Seeded residents are real accounts (Person actor, Resident, Household, accepted follow of their home
village) spread round-robin over every village, the existing ones included. They all share ONE
password, hashed once with argon2 and the hash reused for every row (hashing a million passwords would
take hours); the command prints it at the end. Ids come from `ids.id_at` at spread past moments, so
they are time-ordered; within one run each row gets its own (millisecond, serial) pair, and the id node
is claimed fresh for each process, so two runs never mint the same id. Counters (statuses, followers,
following, last status) are recomputed from the rows at the end with UPDATE ... FROM aggregates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import random
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voisinage.models import db
from voisinage.models.actor import PERSON, Actor
from voisinage.models.base import UtcDateTime, utcnow
from voisinage.models.categories import canonical
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.ids import id_at
from voisinage.models.post import PRIVATE, PUBLIC, UNLISTED, Post, PostTag
from voisinage.models.resident import Resident
from voisinage.models.timeline import HomeEntry
from voisinage.models.uris import actor_uri, announce_uri, post_uri
from voisinage.models.village import Household, Village

from . import villages as village_service
from .passwords import hash_password

BATCH = 5000
POSTS_PER_COMMIT = 20000
DAY = 86400.0
POST_WINDOW_DAYS = 365.0  # posts are spread over the past year...
ACCOUNT_WINDOW_DAYS = 30.0  # ...residents registered in the month before it

VILLAGE_NAMES = ("Embourg", "Vaux-sous-Chèvremont", "Beaufays", "Ninane", "Mehagne", "Chaudfontaine",
                 "Sart-Tilman", "Tilff", "Angleur", "Esneux", "Gomzé", "Romsée", "Fléron", "Trooz",
                 "Forêt", "Prayon", "Magnée", "Olne", "Soumagne", "Ayeneux", "Méry", "Hony", "Plainevaux",
                 "Boncelles", "Seraing", "Ougrée", "Kinkempois", "Colonster", "Streupas", "Poulseur")
FIRST_NAMES = ("Marie", "Luc", "Sophie", "Jean", "Nathalie", "Pierre", "Isabelle", "Michel", "Julie",
               "Thomas", "Anne", "Nicolas", "Céline", "Olivier", "Valérie", "François", "Aurélie",
               "Philippe", "Chloé", "Laurent", "Émilie", "Marc", "Camille", "Benoît", "Sarah", "Hugo",
               "Léa", "Maxime", "Manon", "Arnaud", "Christine", "Didier", "Lucie", "Quentin", "Inès")
LAST_NAMES = ("Dubois", "Lambert", "Dupont", "Martin", "Simon", "Lejeune", "Renard", "Leclercq",
              "Collin", "Lemaire", "Hubert", "Jacobs", "Goffin", "Mathieu", "Massart", "Denis",
              "Delvaux", "Grégoire", "Thiry", "Pirotte", "Marchal", "Henrard", "Gilson", "Jacquemin",
              "Servais", "Closset", "Remacle", "Bodson", "Wathelet", "Gérard")
STREETS = ("rue de la Station", "avenue des Thermes", "rue du Moulin", "place de l'Église",
           "rue Sainte-Anne", "chemin des Crêtes", "rue de Beaufays", "voie de l'Ourthe", "rue Hauster",
           "rue de la Chapelle", "clos des Lilas", "rue du Centre", "route de Louveigné")
THINGS = ("un vélo d'enfant", "une poussette", "des livres pour enfants", "un canapé trois places",
          "une tondeuse", "des pots de confiture", "une table de jardin", "des jouets en bois",
          "un lot de vêtements 6-12 mois", "une échelle", "des plants de tomates", "un aquarium")
PETS = ("un chat tigré", "un petit chien noir", "une chatte grise", "un lapin blanc", "un perroquet")
LOST = ("un trousseau de clés", "un doudou lapin", "des lunettes", "un portefeuille brun",
        "une écharpe rouge", "un téléphone")
EVENTS = ("la brocante", "la fête des voisins", "le marché du dimanche", "le repair café",
          "la balade guidée", "le nettoyage de printemps", "le souper aux boulets", "le tournoi de pétanque")
DAYS = ("samedi", "dimanche", "mercredi après-midi", "vendredi soir", "ce week-end", "demain matin")
TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("Bonjour à tous, je donne {thing}, à venir chercher {street}. #adonner", "annonce"),
    ("À vendre : {thing}, très bon état, prix à discuter. Me contacter en privé. #annonce", "annonce"),
    ("Quelqu'un aurait-il une remorque à prêter {day} ? Merci d'avance ! #entraide", "aide"),
    ("Je cherche un coup de main pour déplacer {thing} {day}, une bière offerte ! #coupdemain", "aide"),
    ("Notre voisine âgée cherche quelqu'un pour faire ses courses le jeudi. #aide", "aide"),
    ("N'oubliez pas {event} {day}, {street}. Venez nombreux ! #evenement", "evenement"),
    ("Rappel : {event} a lieu {day}. Bénévoles bienvenus. #événement #fêtedesvoisins", "evenement"),
    ("Perdu {pet} près de la {street}, répond au nom de Filou. Merci de partager ! #perdu", "perdu"),
    ("Trouvé {lost} {street} ce matin, je le garde à la maison. #trouvé", "perdu"),
    ("Quelqu'un connaît un bon plombier dans le coin ? Fuite sous l'évier... #conseil", "recommandation"),
    ("Je recommande la boulangerie de la {street}, le pain au levain est excellent. #bonplan",
     "recommandation"),
    ("Info de la commune : travaux {street} à partir de lundi, circulation alternée. #info", "info"),
    ("Collecte des encombrants {day}, sortez vos objets la veille au soir. #infos #commune", "info"),
    ("Coupure d'eau prévue {day} {street} entre 8h et 12h. #info", "info"),
    ("Superbe coucher de soleil ce soir au-dessus de la vallée, quelle chance d'habiter ici.", ""),
    ("Le potager partagé a besoin d'arrosage pendant les vacances, qui peut passer ? #entraide", "aide"),
)
# visibility mix: mostly public, some unlisted, a few private
VISIBILITY_WEIGHTS = ((PUBLIC, 85), (UNLISTED, 10), (PRIVATE, 5))


class SeedError(Exception):
    """A bad argument or state, told in one line."""


@dataclass
class SeedResult:
    villages_created: int = 0
    residents: int = 0
    posts: int = 0
    announces: int = 0
    home_entries: int = 0
    tags: int = 0
    seconds: float = 0.0
    password: str = ""
    usernames: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.posts / self.seconds if self.seconds > 0 else 0.0
        return (f"seeded {self.villages_created} villages, {self.residents} residents, {self.posts} posts "
                f"({self.announces} village announces, {self.home_entries} home timeline rows, {self.tags} tags) "
                f"in {self.seconds:.1f} s ({rate:,.0f} posts/s); every seeded resident's password: "
                f"{self.password}")


def check_arguments(villages: int, residents: int, posts: int) -> None:
    for name, value in (("--villages", villages), ("--residents", residents), ("--posts", posts)):
        if value < 0:
            raise SeedError(f"{name} must be 0 or more (got {value})")
    if villages > 10000:
        raise SeedError("--villages must be at most 10000")


async def _check_state(session: AsyncSession, villages: int, residents: int, posts: int) -> None:
    existing_villages = int(await session.scalar(select(func.count()).select_from(Village)) or 0)
    if residents > 0 and existing_villages == 0 and villages == 0:
        raise SeedError("no village to put residents in: add one (voisinage village add) or use --villages")
    if posts > 0 and residents == 0:
        if not await session.scalar(select(func.count()).select_from(Resident)):
            raise SeedError("no resident to write posts: use --residents")


async def check_state(sessionmaker: async_sessionmaker[AsyncSession], villages: int, residents: int,
                      posts: int) -> None:
    """Raise SeedError when the database cannot take this seed (before any progress is shown)."""
    check_arguments(villages, residents, posts)
    async with sessionmaker() as session:
        await _check_state(session, villages, residents, posts)


class _Ids:
    """Time-ordered ids for `count` rows spread evenly over [start, end): unique (ms, serial) pairs."""

    def __init__(self, start: float, end: float, count: int) -> None:
        self.start_ms = int(start * 1000)
        self.span_ms = max(1, int((end - start) * 1000))
        self.count = max(1, count)
        self.i = 0

    def next(self) -> tuple[int, dt.datetime]:
        i = self.i
        self.i += 1
        ms = self.start_ms + (i * self.span_ms) // self.count
        # Two rows share a millisecond only when more rows than ms: their serials (i mod 256) then
        # differ for up to 256 rows per millisecond, far more than any seed needs.
        return id_at(ms / 1000.0, i), dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC)


def _fold(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "".join(ch if ch.isalnum() else "_" for ch in ascii_name).strip("_")


def _render(text_: str, base_url: str) -> tuple[str, list[str]]:
    """HTML (as services.text renders it) and lower-cased hashtags of one template text."""
    words, tags = [], []
    for word in text_.split(" "):
        if word.startswith("#") and len(word) > 1:
            tag = word[1:]
            tags.append(tag.lower())
            href = html.escape(f"{base_url}/tags/{quote(tag.lower())}", quote=True)
            words.append(f'<a href="{href}" class="mention hashtag" rel="tag">#<span>{html.escape(tag)}</span></a>')
        else:
            words.append(html.escape(word, quote=False))
    return "<p>" + " ".join(words) + "</p>", tags


def _text_pool(rng: random.Random, base_url: str, size: int = 400) -> list[tuple[str, str, list[tuple[str, str]]]]:
    pool = []
    for _ in range(size):
        template = rng.choice(TEMPLATES)[0]
        source = template.format(thing=rng.choice(THINGS), street=rng.choice(STREETS), day=rng.choice(DAYS),
                                 event=rng.choice(EVENTS), pet=rng.choice(PETS), lost=rng.choice(LOST))
        content, tags = _render(source, base_url)
        unique = list(dict.fromkeys(t[:100] for t in tags))
        pool.append((source, content, [(t, canonical(t)[:100]) for t in unique]))
    return pool


class _Writer:
    """Buffers rows per table and writes them with Core executemany in batches of BATCH."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.buffers: dict[Any, list[dict[str, Any]]] = {}
        self.order = [Actor, Household, Resident, Follow, Post, PostTag, HomeEntry]

    async def add(self, model: Any, row: dict[str, Any]) -> None:
        buffer = self.buffers.setdefault(model, [])
        buffer.append(row)
        if len(buffer) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        # Parents before children (foreign keys): flush every table in order. Core inserts on the
        # Table (not the ORM bulk path): one executemany per batch.
        conn = await self.session.connection()
        for model in self.order:
            rows = self.buffers.get(model)
            if rows:
                await conn.execute(insert(model.__table__), rows)
                self.buffers[model] = []


async def _new_villages(session: AsyncSession, base_url: str, count: int) -> int:
    made = 0
    n = 0
    while made < count:
        name = VILLAGE_NAMES[n % len(VILLAGE_NAMES)]
        if n >= len(VILLAGE_NAMES):
            name = f"{name} {n // len(VILLAGE_NAMES) + 1}"
        n += 1
        slug = _fold(name)[:30]
        if (await session.scalar(select(Village.id).where(Village.slug == slug)) is not None
                or await village_service.username_taken(session, slug)):
            continue
        await village_service.create_village(session, base_url, slug, name)
        made += 1
    return made


COUNTERS_SQL = (
    # Statuses (a village's announces count as its statuses, as in the posting path). Each sets the row's
    # updated_at, as every change of an actor does (a running server renders accounts once per version).
    """UPDATE actors SET statuses_count = agg.n, last_status_at = agg.last, updated_at = :now
       FROM (SELECT author_id, count(*) AS n, max(created_at) AS last FROM posts GROUP BY author_id) AS agg
       WHERE actors.id = agg.author_id AND actors.domain = ''""",
    """UPDATE actors SET followers_count = agg.n, updated_at = :now
       FROM (SELECT target_id, count(*) AS n FROM follows WHERE state = 'accepted' GROUP BY target_id) AS agg
       WHERE actors.id = agg.target_id AND actors.domain = ''""",
    """UPDATE actors SET following_count = agg.n, updated_at = :now
       FROM (SELECT follower_id, count(*) AS n FROM follows WHERE state = 'accepted' GROUP BY follower_id) AS agg
       WHERE actors.id = agg.follower_id AND actors.domain = ''""",
)


async def seed(sessionmaker: async_sessionmaker[AsyncSession], base_url: str, villages: int, residents: int,
               posts: int, *, password: str | None = None, seed_value: int | None = None,
               progress: Callable[[int], None] | None = None) -> SeedResult:
    """Create `villages` villages, `residents` residents and `posts` posts (see the module docstring)."""
    check_arguments(villages, residents, posts)
    started = time.perf_counter()
    rng = random.Random(seed_value)
    result = SeedResult(password=password or secrets.token_urlsafe(9))
    password_hash = hash_password(result.password)  # once, for every seeded resident
    now = time.time()
    post_end = now - 60.0
    post_start = post_end - POST_WINDOW_DAYS * DAY
    account_start = post_start - ACCOUNT_WINDOW_DAYS * DAY

    # 1. Villages and residents, in one transaction.
    async with db.write_session(sessionmaker) as session:
        await _check_state(session, villages, residents, posts)
        result.villages_created = await _new_villages(session, base_url, villages)
        village_rows = (await session.execute(
            select(Village.id, Village.name, Village.actor_id).order_by(Village.id))).all()
        taken = {u.lower() for u in await session.scalars(select(Actor.username).where(Actor.domain == ""))}
        writer = _Writer(session)
        ids = _Ids(account_start, post_start, residents * 3)
        per_village: dict[int, list[int]] = {v.id: [] for v in village_rows}
        open_households: dict[int, list[int]] = {}  # village id -> [household id, residents in it]
        for i in range(residents):
            village = village_rows[i % len(village_rows)]
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            base = _fold(f"{first}_{last}")[:24]
            username, n = base, 1
            while username in taken or username in village_service.RESERVED_USERNAMES:
                n += 1
                username = f"{base}{n}"
            taken.add(username)
            actor_id, created = ids.next()
            # Households of up to 4 residents of the same village: residents are dealt round-robin, so
            # keep one open household per village.
            hh = open_households.get(village.id)
            if hh is None or hh[1] >= 4:
                hh_id, hh_created = ids.next()
                hh = [hh_id, 0]
                open_households[village.id] = hh
                await writer.add(Household, {
                    "id": hh_id, "village_id": village.id, "code_hash": hashlib.sha256(
                        secrets.token_bytes(16)).hexdigest(), "max_uses": 4, "uses": 0,
                    "revoked_at": None, "created_at": hh_created})
            hh[1] += 1
            uri = actor_uri(base_url, username)
            await writer.add(Actor, {
                "id": actor_id, "username": username, "domain": "", "kind": PERSON, "uri": uri, "url": uri,
                "inbox_uri": f"{uri}/inbox", "outbox_uri": f"{uri}/outbox", "followers_uri": f"{uri}/followers",
                "shared_inbox_uri": f"{base_url}/inbox", "display_name": f"{first} {last}",
                "note": "", "note_source": "", "avatar_url": None, "header_url": None,
                "fields": [{"name": "Village", "value": village.name,
                            "verified_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z")}],
                "locked": False, "discoverable": True, "bot": False, "village_id": village.id, "role": None,
                "suspended_at": None, "public_key_pem": None, "private_key_pem": None, "key_id": None,
                "ed25519_private_pem": None, "ed25519_public_multikey": None,
                "followers_count": 0, "following_count": 1, "statuses_count": 0, "last_status_at": None,
                "updated_at": created, "fetched_at": None, "created_at": created})
            await writer.add(Resident, {
                "actor_id": actor_id, "email": f"{username}@seed.invalid", "password_hash": password_hash,
                "household_id": hh[0], "locale": "fr", "default_visibility": PUBLIC, "default_sensitive": False,
                "default_language": None, "last_login_at": None, "created_at": created})
            follow_id, _ = ids.next()
            await writer.add(Follow, {
                "id": follow_id, "follower_id": actor_id, "target_id": village.actor_id, "state": ACCEPTED,
                "uri": None, "show_reblogs": True, "notify": False, "created_at": created})
            per_village[village.id].append(actor_id)
            if len(result.usernames) < 20:
                result.usernames.append(username)
        await writer.flush()
        # Household uses: set from the residents that joined them.
        await session.execute(text(
            "UPDATE households SET uses = agg.n FROM (SELECT household_id, count(*) AS n FROM residents "
            "GROUP BY household_id) AS agg WHERE households.id = agg.household_id AND households.uses = 0"))
        result.residents = residents

    if posts:
        await _seed_posts(sessionmaker, base_url, posts, rng, post_start, post_end, per_village, village_rows,
                          result, progress)

    async with db.write_session(sessionmaker) as session:
        for sql in COUNTERS_SQL:
            await session.execute(text(sql).bindparams(bindparam("now", type_=UtcDateTime())), {"now": utcnow()})
    await db.refresh_statistics(sessionmaker)  # a bulk load leaves the planner guessing
    result.seconds = time.perf_counter() - started
    return result


async def _seed_posts(sessionmaker: async_sessionmaker[AsyncSession], base_url: str, posts: int,
                      rng: random.Random, start: float, end: float, per_village: dict[int, list[int]],
                      village_rows: list[Any], result: SeedResult,
                      progress: Callable[[int], None] | None) -> None:
    async with sessionmaker() as session:
        # Who reads each village's announces: its local accepted followers (members); for unlisted posts,
        # only those living in the village (models.audience.readers_clause).
        rows = (await session.execute(
            select(Follow.target_id, Follow.follower_id, Actor.village_id)
            .join(Actor, Actor.id == Follow.follower_id)
            .where(Follow.state == ACCEPTED, Follow.show_reblogs.is_(True), Actor.domain == ""))).all()
        authors: list[tuple[int, int]] = []  # (author actor id, village id)
        if any(per_village.values()):
            authors = [(a, v) for v, members in per_village.items() for a in members]
        else:
            authors = [(a, v) for a, v in (await session.execute(
                select(Actor.id, Actor.village_id).join(Resident, Resident.actor_id == Actor.id)
                .where(Actor.village_id.is_not(None), Actor.suspended_at.is_(None)))).all()]
        actor_uris = dict((await session.execute(
            select(Actor.id, Actor.uri).where(Actor.id.in_([a for a, _ in authors] + [
                v.actor_id for v in village_rows])))).all()) if len(authors) < 200000 else None
    if not authors:
        raise SeedError("no resident to write posts: use --residents")
    if actor_uris is None:
        raise SeedError("too many authors to seed posts for at once (at most 200000)")
    village_actor = {v.id: v.actor_id for v in village_rows}
    members_all: dict[int, list[int]] = {}
    members_here: dict[int, list[int]] = {}
    actor_village_of_group = {v.actor_id: v.id for v in village_rows}
    for target_id, follower_id, follower_village in rows:
        if target_id in actor_village_of_group:
            members_all.setdefault(target_id, []).append(follower_id)
            if follower_village == actor_village_of_group[target_id]:
                members_here.setdefault(target_id, []).append(follower_id)

    pool = _text_pool(rng, base_url)
    visibilities = [v for v, _ in VISIBILITY_WEIGHTS]
    weights = [w for _, w in VISIBILITY_WEIGHTS]
    ids = _Ids(start, end, posts * 2)
    done = 0
    while done < posts:
        chunk = min(POSTS_PER_COMMIT, posts - done)
        async with db.write_session(sessionmaker) as session:
            if session.bind.dialect.name == "sqlite":
                # A bigger page cache for this connection: the home_entries indexes stay in memory.
                await session.execute(text("PRAGMA cache_size=-262144"))
            writer = _Writer(session)
            for _ in range(chunk):
                author_id, village_id = authors[rng.randrange(len(authors))]
                group_id = village_actor[village_id]
                visibility = rng.choices(visibilities, weights)[0]
                source, content, tags = pool[rng.randrange(len(pool))]
                post_id, created = ids.next()
                announce_id, announce_created = ids.next()  # reserved even for private posts: ids stay spread
                audience_id = group_id if visibility != PRIVATE else None
                await writer.add(Post, {
                    "id": post_id, "uri": post_uri(base_url, actor_uris[author_id], post_id), "url": None,
                    "author_id": author_id, "local": True, "visibility": visibility, "audience_id": audience_id,
                    "origin_author_id": author_id, "reblog": False, "reblog_of_id": None,
                    "in_reply_to_id": None, "in_reply_to_account_id": None, "in_reply_to_uri": None,
                    "thread_id": post_id, "content": content, "source": source, "spoiler_text": "",
                    "sensitive": False, "language": "fr", "application_id": None, "edited_at": None,
                    "replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "created_at": created})
                for name, canon in tags:
                    await writer.add(PostTag, {"post_id": post_id, "name": name, "canonical": canon})
                    result.tags += 1
                await writer.add(HomeEntry, {"owner_id": author_id, "post_id": post_id, "shown_id": post_id})
                result.home_entries += 1
                if visibility != PRIVATE:
                    await writer.add(Post, {
                        "id": announce_id, "uri": announce_uri(actor_uris[group_id], announce_id), "url": None,
                        "author_id": group_id, "local": True, "visibility": visibility,
                        "audience_id": audience_id, "origin_author_id": author_id, "reblog": True,
                        "reblog_of_id": post_id, "in_reply_to_id": None, "in_reply_to_account_id": None,
                        "in_reply_to_uri": None, "thread_id": None, "content": "", "source": "",
                        "spoiler_text": "", "sensitive": False, "language": None, "application_id": None,
                        "edited_at": None, "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
                        "created_at": announce_created})
                    result.announces += 1
                    readers = members_all if visibility == PUBLIC else members_here
                    for owner in readers.get(group_id, ()):
                        if owner != author_id:
                            await writer.add(HomeEntry, {"owner_id": owner, "post_id": announce_id,
                                                         "shown_id": post_id})
                            result.home_entries += 1
            await writer.flush()
        done += chunk
        result.posts = done
        if progress is not None:
            progress(chunk)
