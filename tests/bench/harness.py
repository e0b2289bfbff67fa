"""The benchmark suite: real `voisinage serve` processes on loopback, an aiohttp load client, and the
references measured in the same run (a bare aiohttp process serving the same bytes; RSA sign/verify
with `cryptography`). `run(profile, out_dir)` writes latest.json and latest.md; `plots.py` draws the
PNGs from the JSON. Figures never asserted here: the smoke test only checks the shape.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..rig.pg import PostgresServer, free_port
from ..rig.process import VOISINAGE, ServeProcess, write_config

NOT_MEASURED = "not measured"
TAKAHE = {"home_rps": 20.0, "posts_per_s": 79.0}  # the figures for Takahē 0.11, same class of box


@dataclass
class Profile:
    name: str
    engines: list[str]
    sizes: list[int]  # posts in the database for the home timeline benchmark
    villages: int
    residents: int
    concurrencies: list[int]
    seconds: float  # per load measurement (and the same for its reference)
    posting_concurrency: int = 8
    rsa_seconds: float = 1.0
    inbox_activities: int = 1000
    fanout_receivers: int = 50
    fanout_posts: int = 20


def profile_named(name: str) -> Profile:
    if name == "smoke":
        return Profile("smoke", ["sqlite"], [200], 3, 10, [2], 1.0, posting_concurrency=2, rsa_seconds=0.2,
                       inbox_activities=20, fanout_receivers=3, fanout_posts=2)
    sizes = [10_000, 1_000_000] if os.environ.get("BENCH_FULL") == "1" else [10_000]
    engines = [e.strip() for e in os.environ.get("BENCH_ENGINES", "sqlite,postgresql").split(",") if e.strip()]
    # Villages of ~20 members: home rows = posts x members, as the real posting path writes them.
    return Profile("full" if len(sizes) > 1 else "default", engines, sizes, 10, 200, [1, 8, 32],
                   float(os.environ.get("BENCH_SECONDS", "10")))


# --- load client ------------------------------------------------------------------------------------

def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


async def _load(method: str, url: str, concurrency: int, seconds: float, headers: dict[str, str],
                body: Any = None, vary: bool = False) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    counter = iter(range(10 ** 9))
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                payload = body
                if vary and isinstance(body, dict):
                    payload = dict(body, status=f"{body['status']} ({next(counter)})")
                start = time.perf_counter()
                async with session.request(method, url, json=payload) as answer:
                    await answer.read()
                    if answer.status >= 400:
                        errors += 1
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ok = len(latencies) - errors
    return {"requests": len(latencies), "errors": errors, "rps": ok / elapsed if elapsed > 0 else 0.0,
            "p50_ms": _percentile(latencies, 0.50) * 1000, "p99_ms": _percentile(latencies, 0.99) * 1000,
            "mean_ms": (statistics.fmean(latencies) * 1000) if latencies else 0.0}


def load(method: str, url: str, concurrency: int, seconds: float, headers: dict[str, str] | None = None,
         body: Any = None, vary: bool = False) -> dict[str, Any]:
    return asyncio.run(_load(method, url, concurrency, seconds, headers or {}, body, vary))


# --- processes --------------------------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def start_timed(server: ServeProcess, timeout: float = 60.0) -> float:
    """Start `voisinage serve`; seconds from process start to the first 200 on /api/v1/instance."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    server.log = open(server.config.parent / "serve.log", "wb")
    began = time.perf_counter()
    server.proc = subprocess.Popen([VOISINAGE, "--config", str(server.config), "serve"], stdout=server.log,
                                   stderr=subprocess.STDOUT, env=env)
    while time.perf_counter() - began < timeout:
        if server.proc.poll() is not None:
            raise RuntimeError(f"serve exited: {(server.config.parent / 'serve.log').read_text()}")
        try:
            if requests.get(f"{server.url}/api/v1/instance", timeout=1).status_code == 200:
                return time.perf_counter() - began
        except requests.RequestException:
            pass
        time.sleep(0.005)
    raise RuntimeError("serve did not start")


class BareServer:
    def __init__(self, body_file: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "bare_server.py"),
                                      str(body_file), str(port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                requests.get(self.url, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.02)
        raise RuntimeError("bare reference server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- references -------------------------------------------------------------------------------------

def rsa_rates(seconds: float) -> dict[str, float]:
    """RSA-2048 PKCS#1 v1.5 SHA-256 signatures and verifications per second on one core."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    message = b"(request-target): post /inbox\nhost: example.org\ndate: Wed, 25 Nov 2026 00:00:00 GMT"
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def rate(fn: Any) -> float:
        count, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            for _ in range(10):
                fn()
            count += 10
        return count / (time.perf_counter() - began)

    return {"sign_per_s": rate(lambda: key.sign(message, padding.PKCS1v15(), hashes.SHA256())),
            "verify_per_s": rate(lambda: public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256()))}


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "python": platform.python_version(),
            "system": platform.platform()}


# --- one instance -----------------------------------------------------------------------------------

@dataclass
class Instance:
    folder: Path
    url: str
    config: Path = field(init=False)
    port: int = field(init=False)
    password: str = ""
    username: str = ""
    seed: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        # Benchmarks raise the API rate limit (0 = unlimited) so that the limiter does not measure itself.
        self.config = write_config(self.folder, self.url, self.port, **{"[ratelimit]\napi_per_5min": "0"})

    def cli(self, *args: str) -> str:
        result = subprocess.run([VOISINAGE, "--config", str(self.config), *args], capture_output=True,
                                text=True, timeout=7200)
        if result.returncode != 0:
            raise RuntimeError(f"voisinage {' '.join(args)} failed: {result.stderr.strip()[-500:]}")
        return result.stdout

    def seed_data(self, villages: int, residents: int, posts: int) -> None:
        began = time.perf_counter()
        out = self.cli("seed", "--villages", str(villages), "--residents", str(residents), "--posts", str(posts))
        seconds = time.perf_counter() - began
        summary = out.strip().splitlines()[-1]
        self.password = re.search(r"password: (\S+)$", summary).group(1)
        homes = re.search(r"(\d+) home timeline rows", summary)
        self.seed = {"posts": posts, "residents": residents, "villages": villages, "seconds": seconds,
                     "posts_per_s": posts / seconds if seconds > 0 else 0.0,
                     "home_rows": int(homes.group(1)) if homes else 0}

    def emails(self, count: int) -> list[str]:
        from sqlalchemy import select

        from voisinage.models import db
        from voisinage.models.resident import Resident

        async def query() -> list[str]:
            engine = db.make_engine(self.url)
            try:
                async with engine.connect() as conn:
                    return list(await conn.scalars(select(Resident.email).order_by(Resident.actor_id).limit(count)))
            finally:
                await engine.dispose()

        return asyncio.run(query())


def login(base: str, email: str, password: str) -> str:
    app = requests.post(f"{base}/api/v1/apps", json={"client_name": "bench", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                                                     "scopes": "read write"}, timeout=10).json()
    answer = requests.post(f"{base}/oauth/token", data={
        "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "username": email, "password": password, "scope": "read write"}, timeout=30)
    answer.raise_for_status()
    return answer.json()["access_token"]


# --- the suite --------------------------------------------------------------------------------------

def _database_url(engine: str, folder: Path, pg: PostgresServer | None, name: str) -> str:
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{folder / (name + '.db')}"
    import asyncpg

    assert pg is not None and pg.url

    async def create() -> None:
        conn = await asyncpg.connect(pg.url.replace("postgresql+asyncpg", "postgresql") + "/postgres")
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{pg.url}/{name}"


def _not_measured(reason: str) -> dict[str, str]:
    return {"status": NOT_MEASURED, "reason": reason}


def run(profile: Profile, out_dir: Path, work_dir: Path, log: Any = print) -> dict[str, Any]:
    began = time.perf_counter()
    results: dict[str, Any] = {
        "profile": profile.name, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(), "seconds_per_load": profile.seconds,
        "seed": {}, "home_timeline": {}, "posting": {}, "memory": {}, "inbox_ingest": {},
        "fanout": {},
        "end_to_end": _not_measured("two instances, POST on A to home timeline on B: not implemented yet"),
    }
    log("RSA references...")
    results["rsa"] = rsa_rates(profile.rsa_seconds)
    pg: PostgresServer | None = None
    try:
        for engine in profile.engines:
            if engine == "postgresql":
                pg = PostgresServer()
                pg.url = pg.start()
            results["home_timeline"][engine] = {}
            results["seed"][engine] = {}
            for size in profile.sizes:
                name = f"bench_{engine}_{size}"
                instance = Instance(work_dir / name, _database_url(engine, work_dir, pg, name))
                log(f"[{engine}] seeding {size} posts...")
                instance.seed_data(profile.villages, profile.residents, size)
                results["seed"][engine][str(size)] = instance.seed
                _measure_instance(profile, instance, engine, size, size == profile.sizes[0], results, work_dir, log)
            if pg is not None:
                pg.stop()
                pg = None
    finally:
        if pg is not None:
            pg.stop()
    results["duration_s"] = time.perf_counter() - began
    write_outputs(results, out_dir)
    return results


def _measure_instance(profile: Profile, instance: Instance, engine: str, size: int, first: bool,
                      results: dict[str, Any], work_dir: Path, log: Any) -> None:
    partner = add_partner_actor(instance.url) if first else None
    instance.username = instance.emails(1)[0].split("@")[0]
    server = ServeProcess(instance.config, instance.port)
    startup = start_timed(server)
    bare: BareServer | None = None
    try:
        time.sleep(0.5)
        memory: dict[str, Any] = {"startup_s": startup, "rss_idle_mb": rss_mb(server.proc.pid)}
        emails = instance.emails(max(1, profile.posting_concurrency))
        token = login(server.url, emails[0], instance.password)
        headers = {"Authorization": f"Bearer {token}"}
        home_url = f"{server.url}/api/v1/timelines/home?limit=20"
        page = requests.get(home_url, headers=headers, timeout=30)
        page.raise_for_status()
        body_file = work_dir / f"home-{engine}-{size}.json"
        body_file.write_bytes(page.content)
        bare = BareServer(body_file, free_port())
        timeline: dict[str, Any] = {"page_bytes": len(page.content), "statuses": len(page.json())}
        for concurrency in profile.concurrencies:
            log(f"[{engine} {size}] home timeline at concurrency {concurrency}...")
            real = load("GET", home_url, concurrency, profile.seconds, headers)
            ref = load("GET", f"{bare.url}/api/v1/timelines/home?limit=20", concurrency, profile.seconds, headers)
            timeline[f"c{concurrency}"] = {
                "rps": real["rps"], "p50_ms": real["p50_ms"], "p99_ms": real["p99_ms"], "errors": real["errors"],
                "reference_rps": ref["rps"], "reference_p50_ms": ref["p50_ms"], "reference_p99_ms": ref["p99_ms"],
                "ratio_to_reference": real["rps"] / ref["rps"] if ref["rps"] else 0.0,
                "ratio_to_takahe": real["rps"] / TAKAHE["home_rps"],
            }
        memory["rss_after_timeline_mb"] = rss_mb(server.proc.pid)
        results["home_timeline"][engine][str(size)] = timeline
        if first:
            log(f"[{engine}] posting at concurrency {profile.posting_concurrency}...")
            tokens = [login(server.url, email, instance.password) for email in emails]
            posting = _posting(server.url, tokens, profile.posting_concurrency, profile.seconds)
            results["posting"][engine] = posting
            memory["rss_after_posting_mb"] = rss_mb(server.proc.pid)
            log(f"[{engine}] inbox ingest at concurrency {profile.posting_concurrency}...")
            ingest = _inbox_ingest(instance, server, partner, profile.inbox_activities, profile.posting_concurrency)
            ingest["ratio_to_rsa_verify"] = ingest["accepted_per_s"] / results["rsa"]["verify_per_s"]
            results["inbox_ingest"][engine] = ingest
            memory["rss_after_inbox_mb"] = rss_mb(server.proc.pid)
            log(f"[{engine}] fan-out of village posts to {profile.fanout_receivers} partner instances...")
            fanout = _fanout(instance, server, tokens[0], emails[0], profile)
            fanout["ratio_to_rsa_sign"] = fanout["deliveries_per_s"] / results["rsa"]["sign_per_s"]
            results["fanout"][engine] = fanout
            memory["rss_after_fanout_mb"] = rss_mb(server.proc.pid)
            results["memory"][engine] = memory
    finally:
        if bare is not None:
            bare.stop()
        server.stop()


PARTNER = "partner.test"


def add_partner_actor(url: str) -> dict[str, str]:
    """Make partner.test a partner with one remote resident whose key we hold (inserted in the database,
    as tests/federation/partner_helpers.py does: no key fetch)."""
    import voisinage.models.all_models  # noqa: F401  (every table, for the ORM's foreign keys)
    from voisinage.federation.keys import generate_rsa
    from voisinage.federation.partners import add_partner
    from voisinage.models import db
    from voisinage.models.actor import PERSON, Actor
    from voisinage.models.ids import new_id

    private_pem, public_pem = generate_rsa()
    uri = f"https://{PARTNER}/users/rowan"

    async def insert() -> None:
        engine, sessionmaker = await db.open_database(url)
        try:
            async with db.write_session(sessionmaker) as session:
                await add_partner(session, PARTNER)
                session.add(Actor(id=new_id(), username="rowan", domain=PARTNER, kind=PERSON, uri=uri,
                                  inbox_uri=f"{uri}/inbox", shared_inbox_uri=f"https://{PARTNER}/inbox",
                                  followers_uri=f"{uri}/followers", key_id=f"{uri}#main-key",
                                  public_key_pem=public_pem, fields=[], note_source=""))
        finally:
            await engine.dispose()

    asyncio.run(insert())
    return {"uri": uri, "key_id": f"{uri}#main-key", "private_pem": private_pem}


def _inbox_ingest(instance: Instance, server: ServeProcess, partner: dict[str, str], count: int,
                  concurrency: int) -> dict[str, Any]:
    """Signed Creates (a partner resident mentioning one of ours) POSTed to /inbox: accepted/s (202),
    then processed/s (until every InboxItem row is done). Signatures are made before the clock starts."""
    import orjson
    from sqlalchemy import func, select

    from voisinage.federation.signatures import sign_request
    from voisinage.models import db
    from voisinage.models.inbox_item import InboxItem

    domain = f"127.0.0.1:{instance.port}"
    target = f"http://{domain}/users/{instance.username}"
    requests_: list[tuple[bytes, dict[str, str]]] = []
    run_id = int(time.time() * 1000)
    for i in range(count):
        note_id = f"https://{PARTNER}/users/rowan/statuses/{run_id}{i}"
        activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{note_id}/activity",
                    "type": "Create", "actor": partner["uri"], "to": [target],
                    "object": {"id": note_id, "type": "Note", "attributedTo": partner["uri"],
                               "content": f"<p>Bonjour voisin, la brocante a lieu dimanche ({i})</p>",
                               "to": [target], "tag": {"type": "Mention", "href": target}}}
        raw = orjson.dumps(activity)
        headers = sign_request("POST", f"http://{domain}/inbox",
                               {"Content-Type": "application/activity+json", "Host": domain}, raw,
                               partner["key_id"], partner["private_pem"])
        requests_.append((raw, headers))

    async def post_all() -> tuple[int, int, float, list[float]]:
        import aiohttp

        queue = list(reversed(requests_))
        latencies: list[float] = []
        accepted = errors = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            async def worker() -> None:
                nonlocal accepted, errors
                while queue:
                    raw, headers = queue.pop()
                    began = time.perf_counter()
                    async with session.post(f"{server.url}/inbox", data=raw, headers=headers) as answer:
                        await answer.read()
                        if answer.status == 202:
                            accepted += 1
                        else:
                            errors += 1
                    latencies.append(time.perf_counter() - began)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return accepted, errors, time.perf_counter() - began, latencies

    async def processed_after(began: float, timeout: float) -> tuple[int, float]:
        engine = db.make_engine(instance.url)
        try:
            while True:
                async with engine.connect() as conn:
                    pending = await conn.scalar(select(func.count()).select_from(InboxItem)
                                                .where(InboxItem.state == "pending"))
                    done = await conn.scalar(select(func.count()).select_from(InboxItem)
                                             .where(InboxItem.state == "done"))
                if not pending or time.perf_counter() - began > timeout:
                    return int(done or 0), time.perf_counter() - began
                await asyncio.sleep(0.05)
        finally:
            await engine.dispose()

    began = time.perf_counter()
    accepted, errors, post_seconds, latencies = asyncio.run(post_all())
    done, total_seconds = asyncio.run(processed_after(began, 120.0))
    return {"activities": count, "concurrency": concurrency, "accepted": accepted, "errors": errors,
            "accepted_per_s": accepted / post_seconds if post_seconds else 0.0,
            "p99_ms": _percentile(latencies, 0.99) * 1000, "processed": done,
            "processed_per_s": done / total_seconds if total_seconds else 0.0}


class Receivers:
    """`count` partner instances on loopback ports, served by one event loop in a thread: each answers
    202 to every POST and counts them."""

    def __init__(self, count: int) -> None:
        self.ports = [free_port() for _ in range(count)]
        self.received = 0
        self.last_at = 0.0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runners: list[Any] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def _run(self) -> None:
        from aiohttp import web

        async def inbox(request: web.Request) -> web.Response:
            await request.read()
            with self._lock:
                self.received += 1
                self.last_at = time.perf_counter()
            return web.Response(status=202)

        async def start() -> None:
            for port in self.ports:
                app = web.Application()
                app.router.add_post("/{tail:.*}", inbox)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", port).start()
                self._runners.append(runner)

        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        async def cleanup() -> None:
            for runner in self._runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def add_village_followers(url: str, email: str, ports: list[int]) -> None:
    """Make each 127.0.0.1:PORT a partner whose one resident follows the village of `email`'s resident."""
    import voisinage.models.all_models  # noqa: F401
    from sqlalchemy import select

    from voisinage.federation.partners import add_partner
    from voisinage.models import db
    from voisinage.models.actor import PERSON, Actor
    from voisinage.models.follow import ACCEPTED, Follow
    from voisinage.models.ids import new_id
    from voisinage.models.resident import Resident
    from voisinage.models.village import Village

    async def insert() -> None:
        engine, sessionmaker = await db.open_database(url)
        try:
            async with db.write_session(sessionmaker) as session:
                village_actor = await session.scalar(
                    select(Village.actor_id).join(Actor, Actor.village_id == Village.id)
                    .join(Resident, Resident.actor_id == Actor.id).where(Resident.email == email))
                for port in ports:
                    host = f"127.0.0.1:{port}"
                    await add_partner(session, host)
                    uri = f"http://{host}/users/linden"
                    actor = Actor(id=new_id(), username="linden", domain=host, kind=PERSON, uri=uri,
                                  inbox_uri=f"{uri}/inbox", shared_inbox_uri=f"http://{host}/inbox",
                                  followers_uri=f"{uri}/followers", key_id=f"{uri}#main-key",
                                  public_key_pem="", fields=[], note_source="")
                    session.add(actor)
                    await session.flush()
                    session.add(Follow(id=new_id(), follower_id=actor.id, target_id=village_actor,
                                       state=ACCEPTED, uri=f"{uri}#follow"))
        finally:
            await engine.dispose()

    asyncio.run(insert())


def _fanout(instance: Instance, server: ServeProcess, token: str, email: str, profile: Profile) -> dict[str, Any]:
    """Public posts of a resident whose village `fanout_receivers` partner instances follow: each post
    is one village Announce per receiver, signed and POSTed by the server's delivery worker.
    deliveries/s from the first POST until the last delivery arrives."""
    receivers = Receivers(profile.fanout_receivers)
    try:
        add_village_followers(instance.url, email, receivers.ports)
        expected = profile.fanout_posts * profile.fanout_receivers
        headers = {"Authorization": f"Bearer {token}"}
        began = time.perf_counter()
        for i in range(profile.fanout_posts):
            answer = requests.post(f"{server.url}/api/v1/statuses", headers=headers, timeout=30,
                                   json={"status": f"Marché de Noël samedi, stand {i} #agenda", "visibility": "public"})
            answer.raise_for_status()
        deadline = time.perf_counter() + 300
        while receivers.received < expected and time.perf_counter() < deadline:
            time.sleep(0.05)
        seconds = (receivers.last_at or time.perf_counter()) - began
        return {"receivers": profile.fanout_receivers, "posts": profile.fanout_posts, "expected": expected,
                "delivered": receivers.received, "seconds": seconds,
                "deliveries_per_s": receivers.received / seconds if seconds > 0 else 0.0}
    finally:
        receivers.stop()


def _posting(base: str, tokens: list[str], concurrency: int, seconds: float) -> dict[str, Any]:
    """POST /api/v1/statuses; each client has its own resident (tokens round-robin)."""
    async def all_clients() -> list[dict[str, Any]]:
        jobs = []
        for i in range(concurrency):
            token = tokens[i % len(tokens)]
            jobs.append(_load("POST", f"{base}/api/v1/statuses", 1, seconds, {"Authorization": f"Bearer {token}"},
                              {"status": "Quelqu'un a vu un chat tigré rue du Moulin ? #perdu", "visibility": "public"},
                              vary=True))
        return await asyncio.gather(*jobs)

    parts = asyncio.run(all_clients())
    total = sum(p["rps"] for p in parts)
    p99 = max(p["p99_ms"] for p in parts)
    return {"concurrency": concurrency, "statuses_per_s": total, "p99_ms": p99,
            "errors": sum(p["errors"] for p in parts),
            "ratio_to_target_500": total / 500.0, "ratio_to_takahe": total / TAKAHE["posts_per_s"]}


# --- outputs ----------------------------------------------------------------------------------------

def write_outputs(results: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out_dir / "latest.md").write_text(markdown(results))
    # The PNG plots: tests/bench/plots.py, run by `make bench` in its own venv (matplotlib brings
    # numpy, which changes how fpdf2 writes the letters PDF: it must stay out of .venv).


def _f(value: Any, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else str(value)


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"# Benchmark results ({r['started_at']}, profile {r['profile']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['system']}. "
             f"Client and servers on the same box; {r['seconds_per_load']:.0f} s per load. "
             "A noisy machine moves these figures by tens of percent: compare ratios, not absolutes.", "",
             "## Home timeline (20 statuses), GET /api/v1/timelines/home", "",
             "| engine | posts | concurrency | req/s | p50 ms | p99 ms | bare aiohttp req/s | ratio to bare | ratio to Takahē (20 req/s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for engine, sizes in r["home_timeline"].items():
        for size, row in sizes.items():
            for key, v in row.items():
                if key.startswith("c") and isinstance(v, dict):
                    lines.append(f"| {engine} | {int(size):,} | {key[1:]} | {_f(v['rps'])} | {_f(v['p50_ms'], 2)} | "
                                 f"{_f(v['p99_ms'], 2)} | {_f(v['reference_rps'])} | {_f(v['ratio_to_reference'], 3)} | "
                                 f"{_f(v['ratio_to_takahe'], 1)} |")
    lines += ["", "## Posting, POST /api/v1/statuses", "",
              "| engine | concurrency | statuses/s | p99 ms | ratio to target 500/s | ratio to Takahē (79/s) |",
              "|---|---:|---:|---:|---:|---:|"]
    for engine, v in r["posting"].items():
        lines.append(f"| {engine} | {v['concurrency']} | {_f(v['statuses_per_s'])} | {_f(v['p99_ms'], 2)} | "
                     f"{_f(v['ratio_to_target_500'], 3)} | {_f(v['ratio_to_takahe'], 2)} |")
    lines += ["", "## Inbox ingest, POST /inbox (signed Create mentioning a resident)", "",
              "| engine | activities | concurrency | accepted/s | p99 ms | processed/s | ratio accepted/s to RSA verify/s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for engine, v in r["inbox_ingest"].items():
        if isinstance(v, dict) and "accepted_per_s" in v:
            lines.append(f"| {engine} | {v['activities']} | {v['concurrency']} | {_f(v['accepted_per_s'])} | "
                         f"{_f(v['p99_ms'], 2)} | {_f(v['processed_per_s'])} | {_f(v['ratio_to_rsa_verify'], 4)} |")
    lines += ["", "## Fan-out: village posts to partner instances (loopback receivers answering 202)", "",
              "| engine | receivers | posts | delivered / expected | seconds | deliveries/s | ratio to RSA sign/s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for engine, v in r["fanout"].items():
        lines.append(f"| {engine} | {v['receivers']} | {v['posts']} | {v['delivered']} / {v['expected']} | "
                     f"{_f(v['seconds'], 2)} | {_f(v['deliveries_per_s'])} | {_f(v['ratio_to_rsa_sign'], 3)} |")
    lines += ["", "## Memory and start-up (`voisinage serve`, one process: web + workers)", "",
              "| engine | start-up s | RSS idle MB | RSS after timeline load MB | RSS after posting MB | "
              "RSS after inbox MB | RSS after fan-out MB |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for engine, v in r["memory"].items():
        lines.append(f"| {engine} | {_f(v['startup_s'], 2)} | {_f(v['rss_idle_mb'])} | "
                     f"{_f(v['rss_after_timeline_mb'])} | {_f(v['rss_after_posting_mb'])} | "
                     f"{_f(v['rss_after_inbox_mb'])} | {_f(v.get('rss_after_fanout_mb'))} |")
    lines += ["", "## Seeding (`voisinage seed`)", "", "| engine | posts | residents | seconds | posts/s | home rows |",
              "|---|---:|---:|---:|---:|---:|"]
    for engine, sizes in r["seed"].items():
        for size, v in sizes.items():
            lines.append(f"| {engine} | {int(size):,} | {v['residents']} | {_f(v['seconds'])} | "
                         f"{_f(v['posts_per_s'], 0)} | {v['home_rows']:,} |")
    rsa = r["rsa"]
    lines += ["", "## References and what is not measured", "",
              f"RSA-2048 on one core (cryptography): {_f(rsa['sign_per_s'], 0)} signatures/s, "
              f"{_f(rsa['verify_per_s'], 0)} verifications/s.", ""]
    for key in ("end_to_end",):
        v = r[key]
        lines.append(f"- {key}: {v.get('status', 'measured')}" + (f" ({v['reason']})" if "reason" in v else ""))
    lines.append(f"\nTotal run: {_f(r.get('duration_s', 0), 0)} s.\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="Voisinage benchmarks")
    parser.add_argument("--profile", default=os.environ.get("BENCH_PROFILE", "default"),
                        choices=["smoke", "default"])
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="voisinage-bench-") as tmp:
        run(profile_named(args.profile), Path(args.out), Path(tmp),
                      log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print((Path(args.out) / "latest.md").read_text())
    return 0
