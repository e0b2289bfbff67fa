"""The `voisinage` command line: serve, migrate, villages, household codes and accounts.

Every command reads the settings (`--config PATH`, else `$VOISINAGE_CONFIG`, else `./voisinage.toml`,
else the built-in defaults), opens the database (creating or migrating it first) and does its work in one
write transaction. Problems the operator can fix are told in one line on stderr with a non-zero exit,
never as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voisinage.models import db
from voisinage.models.actor import PERSON, ROLES, Actor
from voisinage.models.base import utcnow
from voisinage.models.oauth import Token

from .services import villages
from .services.villages import IssuedCode, VillageError
from .settings import ConfigError, Settings, default_config_path, load_settings

T = TypeVar("T")
Work = Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]
CSV_COLUMNS = ("code", "village", "village_name", "uses", "register_url")


class CliError(click.ClickException):
    """A one-line problem for the operator (click prints `Error: message` and exits with 1)."""


class DatabaseUnavailable(Exception):
    """The database named in the config cannot be opened or migrated."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's text (SQLAlchemy appends background links on more lines)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


@contextlib.contextmanager
def operator_errors() -> Iterator[None]:
    """Turn every error the operator can fix into a CliError of one line."""
    try:
        yield
    except (ConfigError, VillageError, DatabaseUnavailable) as exc:
        raise CliError(first_line(exc)) from None
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {first_line(exc)}") from None
    except OSError as exc:
        raise CliError(f"{exc.strerror or first_line(exc)}"
                       + (f": {exc.filename}" if getattr(exc, "filename", None) else "")) from None


def plural(count: int, noun: str) -> str:
    """`1 code`, `3 codes`."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def get_settings(ctx: click.Context) -> Settings:
    """The settings named by the global `--config` option (loaded once per invocation)."""
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "settings" not in obj:
        path = obj.get("config_path")
        with operator_errors():
            obj["settings"] = load_settings(path if path is not None else default_config_path())
    return obj["settings"]


def _migration_error(exc: BaseException) -> bool:
    """Whether Alembic refused (only a migration imports it: a current schema never does)."""
    alembic_util = sys.modules.get("alembic.util")
    return alembic_util is not None and isinstance(exc, alembic_util.CommandError)


async def _with_database(url: str, work: Work[T]) -> T:
    try:
        engine, sessionmaker = await db.open_database(url)
    except Exception as exc:
        if not isinstance(exc, (OSError, SQLAlchemyError)) and not _migration_error(exc):
            raise
        shown = make_url(url).render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"cannot open the database {shown}: {first_line(exc)}") from None
    try:
        async with db.keeping_node(sessionmaker), db.checkpointing(engine):
            return await work(sessionmaker)
    finally:
        await db.close_database(engine)


def run_with_database(settings: Settings, work: Work[T]) -> T:
    """Open (create or migrate) the database, run `work(sessionmaker)`, close the database."""
    with operator_errors():
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(_with_database(settings.database.url, work))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", default=None,
              help="TOML config file (default: $VOISINAGE_CONFIG, else ./voisinage.toml, else built-in defaults).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Voisinage: a federated neighbourhood network for a commune, spoken to by Mastodon apps."""
    ctx.ensure_object(dict)["config_path"] = config_path


# --- serve and migrate ----------------------------------------------------------------------------

@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: [server] host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: [server] port).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the web server (client API, pages, federation) and its background workers."""
    from aiohttp import web

    from .app import configure_logging, create_app

    settings = get_settings(ctx)
    run_with_database(settings, _noop)  # migrate first, so a database problem is told in one line
    host = host or settings.server.host
    port = port or settings.server.port
    configure_logging()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    shown_host = f"[{host}]" if ":" in host else host
    line = f"Voisinage {settings.instance.name} ({settings.base_url}) listening on http://{shown_host}:{port}/"

    def announce(*_args: Any, **_kwargs: Any) -> None:
        click.echo(line)
        sys.stdout.flush()

    with operator_errors():
        web.run_app(create_app(settings), host=host, port=port, print=announce, shutdown_timeout=5,
                    access_log=None, handle_signals=True, loop=new_event_loop())
    logging.getLogger("voisinage").info("stopped")


async def _noop(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    return None


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (not on Windows): its sockets and scheduling are faster than
    asyncio's own loop, which serves otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create the database or bring its schema up to date."""
    settings = get_settings(ctx)
    run_with_database(settings, _noop)
    click.echo("database is up to date")


# --- villages --------------------------------------------------------------------------------------

@cli.group()
def village() -> None:
    """Villages (quarters) of the commune."""


@village.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="The village's name as residents know it.")
@click.pass_context
def village_add(ctx: click.Context, slug: str, name: str) -> None:
    """Add a village SLUG (its group account is @SLUG)."""
    settings = get_settings(ctx)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
        async with db.write_session(sessionmaker) as session:
            created = await villages.create_village(session, settings.base_url, slug, name)
            return created.name

    created_name = run_with_database(settings, work)
    click.echo(f"added village {slug} \"{created_name}\" (@{slug}@{settings.instance.domain})")


@village.command("list")
@click.pass_context
def village_list(ctx: click.Context) -> None:
    """List the villages, one a line: SLUG<TAB>NAME."""
    settings = get_settings(ctx)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
        async with sessionmaker() as session:
            return [(v.slug, v.name) for v in await villages.list_villages(session)]

    for slug, name in run_with_database(settings, work):
        click.echo(f"{slug}\t{name}")


# --- household codes -------------------------------------------------------------------------------

@cli.group()
def codes() -> None:
    """Household codes, sent by post, with which residents register."""


def codes_to_csv(settings: Settings, issued: list[IssuedCode], out: TextIO) -> None:
    """Write the codes as CSV with a header row: code, village, village_name, uses, register_url."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in issued:
        writer.writerow([item.code, item.village.slug, item.village.name, item.uses,
                         f"{settings.base_url}/register?code={item.code}"])


@codes.command("generate")
@click.option("--village", "slug", required=True, help="Village slug (see `voisinage village list`).")
@click.option("--count", type=int, required=True, help="How many households (codes) to create.")
@click.option("--uses", type=int, default=None,
              help="Accounts each code may open (default: [registration] accounts_per_household).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the CSV to this file instead of standard output.")
@click.option("--letters", "letters_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write printable letters (PDF, one page per household) to this file.")
@click.pass_context
def codes_generate(ctx: click.Context, slug: str, count: int, uses: int | None, csv_path: str | None,
                   letters_path: str | None) -> None:
    """Create household codes for a village; only their hashes are stored, so keep the output."""
    settings = get_settings(ctx)
    uses = uses if uses is not None else settings.registration.accounts_per_household

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> list[IssuedCode]:
        async with db.write_session(sessionmaker) as session:
            issued = await villages.generate_codes(session, slug, count, uses)
            # Files are written before the commit: if one cannot be written, no code is stored.
            if letters_path is not None:
                from .services.letters import write_letters

                write_letters(settings, issued, Path(letters_path))
            if csv_path is not None:
                buffer = io.StringIO()
                codes_to_csv(settings, issued, buffer)
                Path(csv_path).write_text(buffer.getvalue(), encoding="utf-8")
            return issued

    issued = run_with_database(settings, work)
    if csv_path is None:
        out = click.get_text_stream("stdout")
        codes_to_csv(settings, issued, out)
        out.flush()
    else:
        click.echo(f"wrote {plural(len(issued), 'code')} for {slug} to {csv_path}")
    if letters_path is not None:
        click.echo(f"wrote {plural(len(issued), 'letter')} to {letters_path}", err=csv_path is None)


@codes.command("revoke")
@click.argument("code")
@click.pass_context
def codes_revoke(ctx: click.Context, code: str) -> None:
    """Revoke a household code: nobody else can register with it (accounts already made stay)."""
    settings = get_settings(ctx)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with db.write_session(sessionmaker) as session:
            await villages.revoke_code(session, code)

    run_with_database(settings, work)
    click.echo("code revoked")


# --- accounts --------------------------------------------------------------------------------------

def parse_handle(handle: str, domain: str) -> str:
    """`@alice`, `alice` or `alice@our-domain` -> `alice`; another domain's handle raises VillageError."""
    text = handle.strip().removeprefix("@")
    username, _, host = text.partition("@")
    if not username or (host and host.lower() != domain.lower()):
        raise VillageError(f"{handle} is not an account of this instance ({domain})")
    return username


async def get_local_person(session: AsyncSession, handle: str, domain: str) -> Actor:
    """The local resident a handle names, or VillageError."""
    username = parse_handle(handle, domain)
    actor = await session.scalar(select(Actor).where(
        func.lower(Actor.username) == username.lower(), Actor.domain == "", Actor.kind == PERSON))
    if actor is None:
        raise VillageError(f"no local account {handle}")
    return actor


@cli.group()
def account() -> None:
    """Residents' accounts: roles and suspension."""


@account.command("role")
@click.argument("handle")
@click.argument("role", type=click.Choice(ROLES))
@click.pass_context
def account_role(ctx: click.Context, handle: str, role: str) -> None:
    """Give HANDLE a role: official, elected, moderator or admin."""
    settings = get_settings(ctx)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
        async with db.write_session(sessionmaker) as session:
            actor = await get_local_person(session, handle, settings.instance.domain)
            actor.role = role
            return actor.username

    username = run_with_database(settings, work)
    click.echo(f"@{username} is now {role}")


@account.command("suspend")
@click.argument("handle")
@click.pass_context
def account_suspend(ctx: click.Context, handle: str) -> None:
    """Suspend HANDLE: its tokens are revoked and it can no longer use the API."""
    settings = get_settings(ctx)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[str, int]:
        async with db.write_session(sessionmaker) as session:
            actor = await get_local_person(session, handle, settings.instance.domain)
            now = utcnow()
            if actor.suspended_at is None:
                actor.suspended_at = now
            revoked = await session.execute(update(Token).where(
                Token.actor_id == actor.id, Token.revoked_at.is_(None)).values(revoked_at=now))
            return actor.username, int(revoked.rowcount or 0)

    username, revoked = run_with_database(settings, work)
    click.echo(f"@{username} is suspended ({plural(revoked, 'token')} revoked)")


# --- federation: partners, neighbour villages, workers -------------------------------------------

def federation_errors() -> tuple[type[BaseException], ...]:
    """The federation exceptions an operator can act on (told in one line)."""
    from voisinage.federation.actors import ApParseError, NotPartner, UnknownActor
    from voisinage.federation.transport import FetchError

    return (ValueError, ApParseError, NotPartner, UnknownActor, FetchError)


@cli.group()
def partner() -> None:
    """Partner instances: the only ones this commune federates with."""


@partner.command("add")
@click.argument("domain")
@click.pass_context
def partner_add(ctx: click.Context, domain: str) -> None:
    """Add DOMAIN (host or host:port) to the partners."""
    from voisinage.federation import partners

    settings = get_settings(ctx)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
        async with db.write_session(sessionmaker) as session:
            return (await partners.add_partner(session, domain)).host

    try:
        host = run_with_database(settings, work)
    except ValueError as exc:
        raise CliError(first_line(exc)) from None
    click.echo(f"{host} is a partner")


@partner.command("remove")
@click.argument("domain")
@click.pass_context
def partner_remove(ctx: click.Context, domain: str) -> None:
    """Remove DOMAIN from the partners (nothing is exchanged with it any more)."""
    from voisinage.federation import partners

    settings = get_settings(ctx)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
        async with db.write_session(sessionmaker) as session:
            return await partners.remove_partner(session, domain)

    try:
        removed = run_with_database(settings, work)
    except ValueError as exc:
        raise CliError(first_line(exc)) from None
    if not removed:
        raise CliError(f"{domain} is not a partner")
    click.echo(f"{domain} is no longer a partner")


@partner.command("list")
@click.pass_context
def partner_list(ctx: click.Context) -> None:
    """List the partner instances, one host a line."""
    from voisinage.federation import partners

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> list[str]:
        async with sessionmaker() as session:
            return [row.host for row in await partners.list_partners(session)]

    for host in run_with_database(get_settings(ctx), work):
        click.echo(host)


def federation_context(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    """A FederationContext for a command run outside the web server (start its transport first)."""
    import time

    from voisinage.federation.context import FederationContext, make_transport

    transport = make_transport(settings.instance.domain, settings.base_url,
                               settings.federation.allow_private_addresses)
    return FederationContext(
        base_url=settings.base_url, domain=settings.instance.domain, scheme=settings.instance.scheme,
        sessionmaker=sessionmaker, transport=transport,
        allow_private_addresses=settings.federation.allow_private_addresses, clock=time.time)


@cli.group()
def neighbour() -> None:
    """Neighbour links: a village of ours following a village of a partner instance."""


@neighbour.command("add")
@click.argument("slug")
@click.argument("handle")
@click.pass_context
def neighbour_add(ctx: click.Context, slug: str, handle: str) -> None:
    """Village SLUG follows the remote village HANDLE (@village@domain); live once it accepts."""
    from voisinage.federation import actors, outbox
    from voisinage.federation.workers import ensure_instance_actor
    from voisinage.models.actor import GROUP

    settings = get_settings(ctx)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[str, str]:
        fed = federation_context(settings, sessionmaker)
        await fed.transport.start()
        try:
            async with sessionmaker() as session:
                village = await session.scalar(select(Actor).where(
                    Actor.username == slug, Actor.domain == "", Actor.kind == GROUP))
            if village is None:
                raise VillageError(f"no village {slug}")
            await ensure_instance_actor(fed)
            async with sessionmaker() as session:  # fetches: no write lock held meanwhile
                target = await actors.resolve_handle(fed, session, handle)
                await session.commit()
            if target.local or not target.is_group:
                raise VillageError(f"{handle} is not a village of another instance")
            async with db.write_session(sessionmaker) as session:
                follow = await outbox.request_follow(session, fed, await session.get(Actor, village.id),
                                                     await session.get(Actor, target.id))
                return target.acct(), follow.state
        finally:
            await fed.transport.close()

    try:
        acct, state = run_with_database(settings, work)
    except federation_errors() as exc:
        raise CliError(f"{handle}: {first_line(exc)}") from None
    shown = "linked" if state == "accepted" else "follow sent; the link is live when it accepts"
    click.echo(f"{slug} -> @{acct}: {shown}")


@cli.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run only the federation workers (inbox and delivery queues), without the web server.

    SIGTERM or SIGINT: stop claiming, give back held rows, exit 0.
    """
    import signal

    from voisinage.federation.workers import run_workers

    from .app import configure_logging
    from .services import maintenance

    settings = get_settings(ctx)
    configure_logging()

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        fed = federation_context(settings, sessionmaker)
        await fed.transport.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        click.echo(f"Voisinage workers for {settings.base_url} running")
        sys.stdout.flush()
        housekeeping = asyncio.create_task(
            maintenance.run_forever(sessionmaker, Path(settings.media.path), stop))
        try:
            await run_workers(fed, stop)
        finally:
            stop.set()
            await housekeeping
            await fed.transport.close()

    run_with_database(settings, work)
    logging.getLogger("voisinage").info("workers stopped")


# --- seed (demo and benchmark data) ---------------------------------------------------------------

@cli.command()
@click.option("--villages", "new_villages", type=int, default=0, show_default=True,
              help="New villages to create (residents and posts also go to the existing ones).")
@click.option("--residents", type=int, default=0, show_default=True, help="Residents (accounts) to create.")
@click.option("--posts", type=int, default=0, show_default=True, help="Posts to write.")
@click.option("--password", default=None, help="The password of every seeded resident (default: random).")
@click.pass_context
def seed(ctx: click.Context, new_villages: int, residents: int, posts: int, password: str | None) -> None:
    """Fill the instance with realistic data, fast (bulk inserts): demos and benchmarks."""
    from .services import seed as seeding

    settings = get_settings(ctx)
    try:
        seeding.check_arguments(new_villages, residents, posts)
    except seeding.SeedError as exc:
        raise CliError(str(exc)) from None

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> seeding.SeedResult:
        await seeding.check_state(sessionmaker, new_villages, residents, posts)
        with click.progressbar(length=max(posts, 1), label="seeding posts", file=sys.stderr) as bar:
            return await seeding.seed(sessionmaker, settings.base_url, new_villages, residents, posts,
                                      password=password, progress=bar.update)

    try:
        result = run_with_database(settings, work)
    except seeding.SeedError as exc:
        raise CliError(str(exc)) from None
    click.echo(result.summary())


# --- reports --------------------------------------------------------------------------------------

@cli.group()
def reports() -> None:
    """Reports residents made against the house rules."""


@reports.command("list")
@click.pass_context
def reports_list(ctx: click.Context) -> None:
    """One report a line, newest first: ID, DATE, REPORTER, TARGET, CATEGORY, RULES, STATUSES, COMMENT
    (tab-separated)."""
    from voisinage.models.actor import Actor

    from .api.reports import list_reports

    settings = get_settings(ctx)

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> list[str]:
        async with sessionmaker() as session:
            rows = await list_reports(session)
            ids = {r.reporter_id for r in rows} | {r.target_id for r in rows}
            actors = {a.id: a for a in await session.scalars(select(Actor).where(Actor.id.in_(ids)))} if ids else {}
        lines = []
        for r in rows:
            who = {i: (f"@{actors[i].acct()}" if i in actors else str(i)) for i in (r.reporter_id, r.target_id)}
            comment = " ".join((r.comment or "").split())
            lines.append("\t".join([str(r.id), r.created_at.strftime("%Y-%m-%d %H:%M"), who[r.reporter_id],
                                    who[r.target_id], r.category, ",".join(r.rule_ids or []) or "-",
                                    ",".join(str(i) for i in r.status_ids or []) or "-", comment]))
        return lines

    for line in run_with_database(settings, work):
        click.echo(line)


# --- backup ---------------------------------------------------------------------------------------

@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def backup(ctx: click.Context, file: Path) -> None:
    """Write a consistent copy of the database to FILE, even while the server runs.

    SQLite: a database file (the online backup API). PostgreSQL: a pg_dump custom-format archive.
    """
    from .services.backup import BackupError, backup_database

    settings = get_settings(ctx)

    async def ready(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        return None  # opening the database created or migrated it: a backup of a fresh config works

    run_with_database(settings, ready)
    try:
        backup_database(settings.database.url, file)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"backup written to {file}")


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `voisinage` script."""
    return cli.main(args=argv, prog_name="voisinage")


if __name__ == "__main__":  # pragma: no cover
    main()
