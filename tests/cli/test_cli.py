"""The `voisinage` command line, through click's runner and through the installed script.

Each test writes a fresh config in tmp_path: SQLite in tmp_path (never migrated before: the command
must create the database), and for the tests marked with the `backend` fixture also PostgreSQL.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from voisinage.models import db
from voisinage.models.actor import Actor
from voisinage.models.oauth import Application, Token, token_digest
from voisinage.models.village import Household, Village
from voisinage.server.cli import cli
from voisinage.server.services import registration, villages
from voisinage.server.services.letters import pdf_text

from ..conftest import BACKENDS

CODE = re.compile(r"^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}(-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}){3}$")
SCRIPT = Path(sys.executable).parent / "voisinage"


class Instance:
    """A config file in a temporary folder, and ways to run commands and read its database."""

    def __init__(self, tmp_path: Path, db_url: str, extra: str = "") -> None:
        self.tmp = tmp_path
        self.db_url = db_url
        self.config = tmp_path / "voisinage.toml"
        self.config.write_text(
            '[instance]\ndomain = "vg.test"\nname = "Chaudfontaine"\nscheme = "https"\n'
            f'[database]\nurl = "{db_url}"\n[media]\npath = "{tmp_path / "media"}"\n{extra}',
            encoding="utf-8")

    def invoke(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, ["--config", str(self.config), *args], env=env)

    def ok(self, *args: str) -> Result:
        result = self.invoke(*args)
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    def query(self, work: Callable[[Any], Any]) -> Any:
        async def run() -> Any:
            engine = db.make_engine(self.db_url)
            try:
                async with db.make_sessionmaker(engine)() as session:
                    return await work(session)
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def count(self, model: Any, *where: Any) -> int:
        async def work(session: Any) -> int:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        return self.query(work)

    def rows(self, model: Any, *where: Any) -> list[Any]:
        async def work(session: Any) -> list[Any]:
            return list(await session.scalars(select(model).where(*where)))

        return self.query(work)


def assert_one_line_error(result: Result, *words: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), result.exception
    stderr = result.stderr.strip()
    assert stderr and "\n" not in stderr, stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in stderr, stderr


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def register(inst: Instance, code: str, username: str) -> int:
    """Register a resident through the registration service; returns the actor id."""

    async def run() -> int:
        engine, sessionmaker = await db.open_database(inst.db_url)
        try:
            async with db.write_session(sessionmaker) as session:
                actor = await registration.register_resident(session, "https://vg.test", registration.NewResident(
                    code=code, display_name=f"{username.title()} Test", email=f"{username}@example.org",
                    password="correct horse battery staple", username=username))
                app = Application(name="t", client_id=f"c-{username}", client_secret="s",
                                  redirect_uris="urn:ietf:wg:oauth:2.0:oob", scopes="read")
                session.add(app)
                await session.flush()
                session.add(Token(token_hash=token_digest(f"tok-{username}"), application_id=app.id,
                                  actor_id=actor.id, scopes="read"))
                return actor.id
        finally:
            await engine.dispose()

    return asyncio.run(run())


# --- villages --------------------------------------------------------------------------------------

def test_village_add_and_list_on_a_fresh_database(instance: Instance) -> None:
    instance.ok("village", "add", "embourg", "--name", "Embourg")
    instance.ok("village", "add", "vaux", "--name", "Vaux-sous-Chèvremont")
    result = instance.ok("village", "list")
    assert result.stdout.splitlines() == ["embourg\tEmbourg", "vaux\tVaux-sous-Chèvremont"]
    groups = instance.rows(Actor, Actor.kind == "Group")
    assert sorted(g.username for g in groups) == ["embourg", "vaux"]


def test_duplicate_village_is_one_line_error(instance: Instance) -> None:
    instance.ok("village", "add", "embourg", "--name", "Embourg")
    result = instance.invoke("village", "add", "embourg", "--name", "Autre")
    assert_one_line_error(result, "embourg", "already exists")
    assert [v.name for v in instance.rows(Village)] == ["Embourg"]


def test_bad_village_slug_is_refused(sqlite_instance: Instance) -> None:
    result = sqlite_instance.invoke("village", "add", "Bad Slug", "--name", "X")
    assert_one_line_error(result, "slug")
    assert sqlite_instance.count(Village) == 0


def test_village_add_without_name_is_a_usage_error(sqlite_instance: Instance) -> None:
    result = sqlite_instance.invoke("village", "add", "embourg")
    assert result.exit_code == 2
    assert "--name" in result.stderr
    assert "Traceback" not in result.output


# --- codes -----------------------------------------------------------------------------------------

def test_codes_generate_prints_csv_and_stores_only_hashes(sqlite_instance: Instance) -> None:
    inst = sqlite_instance
    inst.ok("village", "add", "embourg", "--name", "Embourg")
    result = inst.ok("codes", "generate", "--village", "embourg", "--count", "5")
    lines = result.stdout.splitlines()
    assert lines[0].split(",")[:3] == ["code", "village", "village_name"]
    rows = parse_csv(result.stdout)
    assert len(rows) == 5
    assert all(CODE.match(r["code"]) for r in rows), rows
    assert {r["village"] for r in rows} == {"embourg"}
    assert {r["uses"] for r in rows} == {"4"}  # [registration] accounts_per_household
    assert rows[0]["register_url"] == f"https://vg.test/register?code={rows[0]['code']}"
    assert len({r["code"] for r in rows}) == 5
    households = inst.rows(Household)
    assert len(households) == 5
    assert {h.code_hash for h in households} == {villages.hash_code(r["code"]) for r in rows}
    files = b"".join(p.read_bytes() for p in (inst.tmp / "fresh").iterdir())
    for row in rows:
        assert row["code"].encode() not in files
        assert row["code"].replace("-", "").encode() not in files


def test_codes_generate_to_csv_file_with_uses(instance: Instance) -> None:
    instance.ok("village", "add", "embourg", "--name", "Embourg")
    out = instance.tmp / "codes.csv"
    result = instance.ok("codes", "generate", "--village", "embourg", "--count", "3", "--uses", "2",
                         "--csv", str(out))
    assert "3 codes" in result.stdout
    assert "code," not in result.stdout  # the codes went to the file
    rows = parse_csv(out.read_text(encoding="utf-8"))
    assert [r["uses"] for r in rows] == ["2", "2", "2"]
    assert [h.max_uses for h in instance.rows(Household)] == [2, 2, 2]


def test_codes_generate_letters_pdf(sqlite_instance: Instance) -> None:
    inst = sqlite_instance
    inst.ok("village", "add", "vaux", "--name", "Vaux-sous-Chèvremont Łódź 漢")
    pdf = inst.tmp / "letters.pdf"
    result = inst.ok("codes", "generate", "--village", "vaux", "--count", "4", "--letters", str(pdf))
    assert len(parse_csv(result.stdout)) == 4
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", data))
    assert pages == 4
    assert inst.count(Household) == 4
    # decompressobj: a stream whose last byte is \r loses it to the pattern's `\r?` (its checksum, not text)
    text = b"".join(zlib.decompressobj().decompress(m)
                    for m in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.DOTALL) if m[:1] == b"x")
    for row in parse_csv(result.stdout):
        assert row["code"].encode() in text  # printed on its page
    assert "Vaux-sous-Chèvremont Lódz ?".encode("cp1252") in text
    assert "Votre code de ménage".encode("cp1252") in text and b"Your household code" in text


def test_letter_text_falls_back_to_what_the_fonts_show() -> None:
    assert pdf_text("Cèdre Łódź 漢 “ok” – 5 €") == "Cèdre Lódz ? “ok” – 5 €"


def test_codes_generate_unknown_village(instance: Instance) -> None:
    instance.ok("village", "add", "embourg", "--name", "Embourg")
    result = instance.invoke("codes", "generate", "--village", "nowhere", "--count", "3")
    assert_one_line_error(result, "nowhere")
    assert result.stdout == ""
    assert instance.count(Household) == 0


def test_codes_generate_bad_count_stores_nothing(sqlite_instance: Instance) -> None:
    sqlite_instance.ok("village", "add", "embourg", "--name", "Embourg")
    result = sqlite_instance.invoke("codes", "generate", "--village", "embourg", "--count", "0")
    assert_one_line_error(result, "--count")
    result = sqlite_instance.invoke("codes", "generate", "--village", "embourg", "--count", "many")
    assert result.exit_code == 2
    assert sqlite_instance.count(Household) == 0


def test_unwritable_letters_file_stores_no_code(sqlite_instance: Instance) -> None:
    sqlite_instance.ok("village", "add", "embourg", "--name", "Embourg")
    target = sqlite_instance.tmp / "no-such-folder" / "letters.pdf"
    result = sqlite_instance.invoke("codes", "generate", "--village", "embourg", "--count", "2",
                                    "--letters", str(target))
    assert_one_line_error(result, "no-such-folder")
    assert sqlite_instance.count(Household) == 0


def test_codes_revoke(instance: Instance) -> None:
    instance.ok("village", "add", "embourg", "--name", "Embourg")
    rows = parse_csv(instance.ok("codes", "generate", "--village", "embourg", "--count", "2").stdout)
    instance.ok("codes", "revoke", rows[0]["code"].lower())
    revoked = instance.rows(Household, Household.revoked_at.is_not(None))
    assert [h.code_hash for h in revoked] == [villages.hash_code(rows[0]["code"])]

    result = instance.invoke("codes", "revoke", "AAAA-BBBB-CCCC-DDDD")
    assert_one_line_error(result, "unknown household code")
    assert instance.count(Household, Household.revoked_at.is_not(None)) == 1


# --- accounts --------------------------------------------------------------------------------------

def _resident(inst: Instance, username: str = "alice") -> int:
    inst.ok("village", "add", "embourg", "--name", "Embourg")
    code = parse_csv(inst.ok("codes", "generate", "--village", "embourg", "--count", "1").stdout)[0]["code"]
    return register(inst, code, username)


@pytest.mark.parametrize("handle", ["@alice", "alice", "alice@vg.test", "@Alice@vg.test"])
def test_account_role_accepts_every_handle_form(sqlite_instance: Instance, handle: str) -> None:
    actor_id = _resident(sqlite_instance)
    sqlite_instance.ok("account", "role", handle, "moderator")
    assert [a.role for a in sqlite_instance.rows(Actor, Actor.id == actor_id)] == ["moderator"]


def test_account_role_and_suspend(instance: Instance) -> None:
    actor_id = _resident(instance)
    instance.ok("account", "role", "@alice", "elected")
    assert instance.rows(Actor, Actor.id == actor_id)[0].role == "elected"

    result = instance.ok("account", "suspend", "@alice")
    assert "1 token revoked" in result.stdout
    actor = instance.rows(Actor, Actor.id == actor_id)[0]
    assert actor.suspended_at is not None
    assert instance.count(Token, Token.actor_id == actor_id, Token.revoked_at.is_(None)) == 0
    assert instance.count(Token, Token.actor_id == actor_id) == 1


def test_account_commands_refuse_unknown_handles(instance: Instance) -> None:
    actor_id = _resident(instance)
    for args in (["account", "role", "@nobody", "admin"], ["account", "suspend", "nobody"],
                 ["account", "suspend", "alice@other.example"], ["account", "role", "@embourg", "admin"]):
        assert_one_line_error(instance.invoke(*args))
    result = instance.invoke("account", "role", "@alice", "king")
    assert result.exit_code == 2
    actor = instance.rows(Actor, Actor.id == actor_id)[0]
    assert actor.role is None and actor.suspended_at is None
    assert instance.count(Actor, Actor.role.is_not(None)) == 0
    assert instance.count(Token, Token.revoked_at.is_not(None)) == 0


# --- config ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, words", [
    ("[server]\nfoo = 1\n", ["unknown config key", "foo"]),
    ("[server\nport = 1\n", ["not valid TOML"]),
    ("[server]\nport = 70000\n", ["port"]),
    ("[server]\nport = \"abc\"\n", ["port"]),
    ("[nowhere]\nx = 1\n", ["nowhere"]),
    ('[database]\nurl = "mysql://x"\n', ["url"]),
])
def test_bad_config_is_one_line_error(tmp_path: Path, content: str, words: list[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content, encoding="utf-8")
    for args in (["village", "list"], ["migrate"], ["serve"]):
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert_one_line_error(result, *words)
    assert list(tmp_path.iterdir()) == [config]  # no database was made


def test_missing_config_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.toml"), "village", "list"])
    assert_one_line_error(result, "nope.toml", "does not exist")


def test_config_from_environment_variable(tmp_path: Path) -> None:
    inst = Instance(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    result = CliRunner().invoke(cli, ["village", "add", "embourg", "--name", "Embourg"],
                                env={"VOISINAGE_CONFIG": str(inst.config)})
    assert result.exit_code == 0, result.output
    assert inst.count(Village) == 1


def test_database_url_environment_override(tmp_path: Path) -> None:
    inst = Instance(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'from-file.db'}")
    other = tmp_path / "from-env.db"
    env = {"VOISINAGE_DATABASE_URL": f"sqlite+aiosqlite:///{other}"}
    assert inst.invoke("village", "add", "embourg", "--name", "Embourg", env=env).exit_code == 0
    assert inst.invoke("village", "list", env=env).stdout == "embourg\tEmbourg\n"
    assert other.exists()
    assert not (tmp_path / "from-file.db").exists()
    assert_one_line_error(inst.invoke("village", "list", env={"VOISINAGE_SERVER_PORT": "x"}), "port")


def test_unreachable_database_is_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inst = Instance(tmp_path, f"postgresql+asyncpg://postgres:secret@127.0.0.1:{port}/x")
    result = inst.invoke("village", "list")
    assert_one_line_error(result, "cannot open the database")
    assert "secret" not in result.output


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL not selected")
def test_missing_postgresql_database_is_one_line_error(tmp_path: Path, databases: Any) -> None:
    databases.postgresql()  # starts the server
    inst = Instance(tmp_path, f"{databases.pg_url}/no_such_database")
    assert_one_line_error(inst.invoke("village", "list"), "cannot open the database", "no_such_database")


def test_database_of_a_newer_version_is_one_line_error(sqlite_instance: Instance) -> None:
    sqlite_instance.ok("migrate")

    async def bump(session: Any) -> None:
        from sqlalchemy import text

        await session.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
        await session.commit()

    sqlite_instance.query(bump)
    assert_one_line_error(sqlite_instance.invoke("village", "list"), "cannot open the database")


def test_migrate_creates_the_database(instance: Instance) -> None:
    result = instance.ok("migrate")
    assert "up to date" in result.stdout
    assert instance.count(Village) == 0  # the tables exist
    instance.ok("migrate")  # and a second time is a no-op


# --- the installed script --------------------------------------------------------------------------

def run_script(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VOISINAGE_")}
    full_env.update(env or {})
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=full_env)


def test_installed_script_end_to_end(sqlite_instance: Instance) -> None:
    config = str(sqlite_instance.config)
    added = run_script("--config", config, "village", "add", "embourg", "--name", "Embourg")
    assert added.returncode == 0, added.stderr
    listed = run_script("--config", config, "village", "list")
    assert listed.stdout == "embourg\tEmbourg\n"
    generated = run_script("--config", config, "codes", "generate", "--village", "embourg", "--count", "2")
    assert len(parse_csv(generated.stdout)) == 2
    duplicate = run_script("--config", config, "village", "add", "embourg", "--name", "Embourg")
    assert duplicate.returncode == 1
    assert duplicate.stderr.strip().count("\n") == 0 and "already exists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr


def test_installed_script_bad_config_has_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = 0\n", encoding="utf-8")
    result = run_script("--config", str(config), "serve")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "port" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def _serve(instance: Instance) -> tuple[subprocess.Popen[str], int]:
    """`voisinage serve` on a free port, once it answers (a 404 for an unknown API path)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOISINAGE_")}
    proc = subprocess.Popen([str(SCRIPT), "--config", str(instance.config), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    status = None
    deadline = time.monotonic() + 30
    while status is None and time.monotonic() < deadline and proc.poll() is None:
        status = http_status(f"http://127.0.0.1:{port}/api/v1/nope")
        if status is None:
            time.sleep(0.1)
    if status is None:
        proc.kill()
    assert status == 404, proc.communicate(timeout=20)
    return proc, port


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM, and the process's output (killed if it does not stop)."""
    try:
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_serve_answers_and_stops_on_sigterm(sqlite_instance: Instance) -> None:
    proc, port = _serve(sqlite_instance)
    stdout, stderr = _stop(proc)
    assert proc.returncode == 0, stderr
    assert f"http://127.0.0.1:{port}/" in stdout
    assert "https://vg.test" in stdout
    assert "Traceback" not in stderr


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps (Linux)")
def test_serve_loads_cryptography_only_when_it_needs_a_key(sqlite_instance: Instance) -> None:
    """cryptography is 7-8 MB of a serving process: loaded to make the instance actor's keys on a new
    database, and not at all by a start on a database that has them, until something signs."""

    def cryptography_loaded(proc: subprocess.Popen[str]) -> bool:
        return "/cryptography/" in Path(f"/proc/{proc.pid}/maps").read_text()

    first, _ = _serve(sqlite_instance)
    try:
        made_keys = cryptography_loaded(first)
    finally:
        _stop(first)
    again, _ = _serve(sqlite_instance)
    try:
        loaded_again = cryptography_loaded(again)
    finally:
        _stop(again)
    assert made_keys
    assert not loaded_again
    assert again.returncode == 0
