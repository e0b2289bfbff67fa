"""Real `voisinage serve` and `voisinage worker` processes on loopback ports, for tests about the wire,
and the helpers those tests share (the CLI, a database opened from the test, residents, waiting).

`lease_env(seconds)` shortens the queue lease of a started process (models/queue.py) so a test of a
killed process does not wait a minute for its claims to come back.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import requests

from voisinage.models import db
from voisinage.models.actor import Actor
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.oauth import Application, Token, token_digest
from voisinage.server.services import registration, villages

from . import cast
from .pg import free_port, free_ports

VOISINAGE = str(Path(sys.executable).parent / "voisinage")


def write_config(folder: Path, db_url: str, port: int, **extra: str) -> Path:
    config = folder / "voisinage.toml"
    lines = [
        "[instance]", f'domain = "127.0.0.1:{port}"', 'scheme = "http"', 'name = "Commune e2e"',
        "[server]", 'host = "127.0.0.1"', f"port = {port}",
        "[database]", f'url = "{db_url}"',
        "[media]", f'path = "{folder / "media"}"',
        "[federation]", "allow_private_addresses = true",
    ]
    for key, value in extra.items():
        lines.append(f"{key} = {value}")
    config.write_text("\n".join(lines) + "\n")
    return config


def cli(config: Path, *args: str, timeout: float = 120) -> str:
    result = subprocess.run([VOISINAGE, "--config", str(config), *args], capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"voisinage {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def lease_env(seconds: float) -> dict[str, str]:
    """Environment for a process whose queue claims last `seconds` (renewed while held)."""
    return {"VOISINAGE_TEST_LEASE_SECONDS": str(seconds)}


class ServeProcess:
    """`voisinage serve` on `port` (which may differ from the config's, for a second process of one
    instance); its output goes to `log_name` next to the config."""

    def __init__(self, config: Path, port: int, env: dict[str, str] | None = None,
                 log_name: str = "serve.log") -> None:
        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env or {}
        self.log_path = config.parent / log_name
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to answer."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([VOISINAGE, "--config", str(self.config), "serve", "--port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        return self.proc

    def start(self, timeout: float = 30.0) -> ServeProcess:
        proc = self.launch()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.log_path.read_text()}")
            try:
                answer = requests.get(f"{self.url}/api/v1/instance", timeout=1)
            except requests.RequestException:
                answer = None
            # ready is a 200 from a Voisinage instance: another server that took the port is not it
            if answer is not None and answer.status_code == 200 and "uri" in answer.json():
                return self
            time.sleep(0.1)
        raise AssertionError(f"serve did not start: {self.log_path.read_text()}")

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code (the process is killed if it does not exit)."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.close()
        return code

    def kill(self) -> None:
        """kill -9, as a crash would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()


class WorkerProcess(ServeProcess):
    """`voisinage worker` (queues and housekeeping only); started once it says it is running."""

    def __init__(self, config: Path, env: dict[str, str] | None = None, log_name: str = "worker.log") -> None:
        super().__init__(config, 0, env, log_name)

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([VOISINAGE, "--config", str(self.config), "worker"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited: {self.log_path.read_text()}")
            if b"running" in self.log_path.read_bytes():
                return self
            time.sleep(0.1)
        raise AssertionError("worker did not start")


def in_db(url: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(sessionmaker)` on the database at `url` from synchronous test code."""

    async def run() -> Any:
        engine, sessionmaker = await db.open_database(url)
        try:
            return await work(sessionmaker)
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def add_resident_in(session: Any, base_url: str, username: str, village: str = "north") -> tuple[Any, str]:
    """Register `username` in `village` with a fresh household code; returns (actor, read/write/follow token)."""
    code = (await villages.generate_codes(session, village, 1, 4))[0].code
    actor = await registration.register_resident(session, base_url, registration.NewResident(
        code=code, display_name=username.title(), email=f"{username}@example.org", password=cast.PASSWORD,
        username=username))
    token = secrets.token_urlsafe(32)
    app = Application(name="t", client_id=secrets.token_hex(8), client_secret=secrets.token_hex(8),
                      redirect_uris="urn:ietf:wg:oauth:2.0:oob", scopes="read write follow")
    session.add(app)
    await session.flush()
    session.add(Token(token_hash=token_digest(token), application_id=app.id, actor_id=actor.id,
                      scopes="read write follow"))
    return actor, token


def add_resident(url: str, base_url: str, username: str, village: str = "north") -> str:
    """Register `username` on the instance of `url` and return a read/write/follow token."""

    async def work(sessionmaker: Any) -> str:
        async with db.write_session(sessionmaker) as session:
            return (await add_resident_in(session, base_url, username, village))[1]

    return in_db(url, work)


def post(base_url: str, token: str, text: str, visibility: str = "public") -> dict[str, Any]:
    """POST /api/v1/statuses through the client API; returns the status."""
    response = requests.post(f"{base_url}/api/v1/statuses", json={"status": text, "visibility": visibility},
                             headers={"Authorization": f"Bearer {token}"}, timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 45.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


__all__ = ["ServeProcess", "WorkerProcess", "add_resident", "add_resident_in", "cli", "free_port", "free_ports", "in_db",
           "lease_env", "post", "wait_for", "write_config"]


async def add_remote_fans(session: Any, hosts: list[str], target: Actor) -> None:
    """One actor `fan` on each of these loopback partner hosts, following `target` (accepted), as a
    partner's resident would after our Accept."""
    for host in hosts:
        base = f"http://{host}"
        fan = Actor(username="fan", domain=host, uri=f"{base}/users/fan", inbox_uri=f"{base}/users/fan/inbox",
                    shared_inbox_uri=f"{base}/inbox", url=f"{base}/@fan")
        session.add(fan)
        await session.flush()
        session.add(Follow(follower_id=fan.id, target_id=target.id, state=ACCEPTED, uri=f"{base}/follows/{target.id}"))
