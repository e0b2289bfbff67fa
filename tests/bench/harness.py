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
from ..rig.process import ServeProcess, add_resident, cli, in_db, wait_for, write_config

# The figures for Takahē 0.11, same class of box.
TAKAHE = {"home_rps": 20.0, "posts_per_s": 79.0, "end_to_end_posts_per_s": 3.1}


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
    fanout_posts: int = 100  # 5,000 deliveries: seconds of sending, like the other loads, not a start-up
    e2e_posts: int = 100
    e2e_concurrency: int = 8


def profile_named(name: str) -> Profile:
    if name == "smoke":
        return Profile("smoke", ["sqlite"], [200], 3, 10, [2], 1.0, posting_concurrency=2, rsa_seconds=0.2,
                       inbox_activities=20, fanout_receivers=3, fanout_posts=2, e2e_posts=3)
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
    """Start `voisinage serve`; seconds from process start to the first 200 on /api/v1/instance
    (polled every 5 ms: ServeProcess.start polls every 100 ms and takes any answer)."""
    began = time.perf_counter()
    proc = server.launch()
    while time.perf_counter() - began < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited: {server.log_path.read_text()}")
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
        return cli(self.config, *args, timeout=7200)  # seeding 1,000,000 posts takes minutes

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


def run(profile: Profile, out_dir: Path, work_dir: Path, log: Any = print) -> dict[str, Any]:
    began = time.perf_counter()
    results: dict[str, Any] = {
        "profile": profile.name, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(), "seconds_per_load": profile.seconds,
        "seed": {}, "home_timeline": {}, "posting": {}, "memory": {}, "inbox_ingest": {},
        "fanout": {}, "end_to_end": {},
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
            log(f"[{engine}] end to end: {profile.e2e_posts} posts on A to a home timeline on B...")
            results["end_to_end"][engine] = _end_to_end(engine, work_dir, pg, profile)
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
    partners = add_partner_actors(instance.url) if first else None
    instance.username = instance.emails(1)[0].split("@")[0]
    server = ServeProcess(instance.config, instance.port)
    memory: dict[str, Any] = {}
    if first:
        # An instance's first start makes its instance actor's keys, and so loads cryptography (7-8 MB),
        # which a restart does only at its first signature: idle as a federating commune's server is
        # within minutes of starting, and idle as one that has not signed yet (the restart, loaded next).
        memory["startup_first_s"] = start_timed(server)
        time.sleep(0.5)
        memory["rss_idle_first_mb"] = rss_mb(server.proc.pid)
        server.stop()
    startup = start_timed(server)
    bare: BareServer | None = None
    try:
        time.sleep(0.5)
        memory.update(startup_s=startup, rss_idle_mb=rss_mb(server.proc.pid))
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
            ingest = _inbox_ingest(instance, server, partners, profile.inbox_activities, profile.posting_concurrency)
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


# The partner's residents who send the inbox load: a commune's activities come from many residents,
# and the inbox worker handles different signers' items at once on PostgreSQL (each one's in order).
PARTNER_RESIDENTS = ("rowan", "aspen", "elm", "fir", "larch", "lime", "oak", "yew")


def add_partner_actors(url: str) -> list[dict[str, str]]:
    """Make partner.test a partner with PARTNER_RESIDENTS, remote residents whose keys we hold (inserted
    in the database, as tests/federation/partner_helpers.py does: no key fetch)."""
    import voisinage.models.all_models  # noqa: F401  (every table, for the ORM's foreign keys)
    from voisinage.federation.keys import generate_rsa
    from voisinage.federation.partners import add_partner
    from voisinage.models import db
    from voisinage.models.actor import PERSON, Actor
    from voisinage.models.ids import new_id

    residents = []
    for name in PARTNER_RESIDENTS:
        private_pem, public_pem = generate_rsa()
        uri = f"https://{PARTNER}/users/{name}"
        residents.append({"name": name, "uri": uri, "key_id": f"{uri}#main-key", "private_pem": private_pem,
                          "public_pem": public_pem})

    async def insert(sessionmaker: Any) -> None:
        async with db.write_session(sessionmaker) as session:
            await add_partner(session, PARTNER)
            for resident in residents:
                uri = resident["uri"]
                session.add(Actor(id=new_id(), username=resident["name"], domain=PARTNER, kind=PERSON, uri=uri,
                                  inbox_uri=f"{uri}/inbox", shared_inbox_uri=f"https://{PARTNER}/inbox",
                                  followers_uri=f"{uri}/followers", key_id=resident["key_id"],
                                  public_key_pem=resident["public_pem"], fields=[], note_source=""))

    in_db(url, insert)
    return residents


def _inbox_ingest(instance: Instance, server: ServeProcess, partners: list[dict[str, str]], count: int,
                  concurrency: int) -> dict[str, Any]:
    """Signed Creates (the partner's residents, in turn, mentioning one of ours) POSTed to /inbox:
    accepted/s (202), then processed/s (until every InboxItem row is done). Signatures are made before
    the clock starts."""
    import orjson
    from sqlalchemy import func, select

    from voisinage.federation.keys import load_private
    from voisinage.federation.signatures import sign_request
    from voisinage.models import db
    from voisinage.models.inbox_item import InboxItem

    keys = [load_private(partner["private_pem"]) for partner in partners]  # parsing costs more than signing
    domain = f"127.0.0.1:{instance.port}"
    target = f"http://{domain}/users/{instance.username}"
    requests_: list[tuple[bytes, dict[str, str]]] = []
    run_id = int(time.time() * 1000)
    for i in range(count):
        partner, key = partners[i % len(partners)], keys[i % len(partners)]
        note_id = f"{partner['uri']}/statuses/{run_id}{i}"
        activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{note_id}/activity",
                    "type": "Create", "actor": partner["uri"], "to": [target],
                    "object": {"id": note_id, "type": "Note", "attributedTo": partner["uri"],
                               "content": f"<p>Bonjour voisin, la brocante a lieu dimanche ({i})</p>",
                               "to": [target], "tag": {"type": "Mention", "href": target}}}
        raw = orjson.dumps(activity)
        headers = sign_request("POST", f"http://{domain}/inbox",
                               {"Content-Type": "application/activity+json", "Host": domain}, raw,
                               partner["key_id"], key)
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
        self.count = count
        self.ports: list[int] = []  # chosen by the system as the sites start: never twice the same
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
            for _ in range(self.count):
                app = web.Application()
                app.router.add_post("/{tail:.*}", inbox)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                self.ports.append(runner.addresses[0][1])
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
    from sqlalchemy import select

    import voisinage.models.all_models  # noqa: F401
    from voisinage.federation.partners import add_partner
    from voisinage.models import db
    from voisinage.models.actor import PERSON, Actor
    from voisinage.models.follow import ACCEPTED, Follow
    from voisinage.models.ids import new_id
    from voisinage.models.resident import Resident
    from voisinage.models.village import Village

    async def insert(sessionmaker: Any) -> None:
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

    in_db(url, insert)


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


def _end_to_end(engine: str, work_dir: Path, pg: PostgresServer | None, profile: Profile) -> dict[str, Any]:
    """Two real instances of `engine`, partners made with the CLI; B's village north is a neighbour of
    A's (`voisinage neighbour add`), so a public post of A's resident alder reaches the home timeline of
    B's resident cedar as A's village's Announce. `e2e_posts` statuses POSTed on A at `e2e_concurrency`:
    posts/s from the first POST until the last one is seen on B, and each post's latency from its POST
    to its first sighting (B's home timeline polled every E2E_POLL_S)."""
    a, b = (Instance(work_dir / f"e2e-{engine}-{side}", _database_url(engine, work_dir, pg, f"e2e_{engine}_{side}"))
            for side in ("a", "b"))
    host_a, host_b = f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"
    for instance in (a, b):
        instance.cli("village", "add", "north", "--name", "Nord")
    a.cli("partner", "add", host_b)
    b.cli("partner", "add", host_a)
    serve_a, serve_b = ServeProcess(a.config, a.port), ServeProcess(b.config, b.port)
    try:
        serve_a.start()
        serve_b.start()
        b.cli("neighbour", "add", "north", f"@north@{host_a}")
        wait_for(lambda: _neighbour_accepted(b.url, host_a), "the Accept of the neighbour link")
        writer = add_resident(a.url, serve_a.url, "alder")
        reader = add_resident(b.url, serve_b.url, "cedar")
        measured = asyncio.run(_post_and_watch(serve_a.url, writer, serve_b.url, reader, profile.e2e_posts,
                                               profile.e2e_concurrency))
    finally:
        serve_b.stop()
        serve_a.stop()
    measured["ratio_to_target_100"] = measured["posts_per_s"] / 100.0
    measured["ratio_to_takahe"] = measured["posts_per_s"] / TAKAHE["end_to_end_posts_per_s"]
    return measured


E2E_POLL_S = 0.05
# Ids are milliseconds << 16, minted before their row commits: each poll re-reads the last 250 ms of ids,
# and once posting is over a sweep of the whole timeline every second finds any row committed later.
E2E_REREAD_IDS = 250 << 16


def _neighbour_accepted(url_b: str, host_a: str) -> bool:
    from sqlalchemy import select

    from voisinage.models.actor import Actor
    from voisinage.models.follow import ACCEPTED, Follow

    async def work(sessionmaker: Any) -> bool:
        async with sessionmaker() as session:
            return await session.scalar(select(Follow.state).join(Actor, Actor.id == Follow.target_id)
                                        .where(Actor.domain == host_a)) == ACCEPTED

    return bool(in_db(url_b, work))


async def _post_and_watch(url_a: str, writer: str, url_b: str, reader: str, count: int, concurrency: int,
                          timeout: float = 300.0) -> dict[str, Any]:
    """POST `count` public statuses on A with `concurrency` clients while one client pages through the
    reader's home timeline on B (min_id, oldest first) until every post has been seen or `timeout`."""
    import aiohttp

    sent: dict[str, float] = {}  # status uri -> when its POST began
    seen: dict[str, float] = {}  # status uri -> when B's home timeline first showed it
    errors = 0
    pending = list(range(count))
    posting_done = False

    async def poster(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while pending:
            i = pending.pop()
            began = time.perf_counter()
            async with session.post(f"{url_a}/api/v1/statuses", headers={"Authorization": f"Bearer {writer}"},
                                    json={"status": f"Vide-grenier place de l'Église, emplacement {i}",
                                          "visibility": "public"}) as answer:
                if answer.status == 200:
                    sent[(await answer.json())["uri"]] = began
                else:
                    await answer.read()
                    errors += 1

    async def watcher(session: aiohttp.ClientSession, deadline: float) -> None:
        newest = 0
        swept_at = 0.0

        async def pages(key: str, bound: int | None, pick: Any) -> None:
            """Every page of 40 from `bound` on (min_id: upwards; max_id: downwards from the newest)."""
            nonlocal newest
            while True:
                params = {"limit": "40"} if bound is None else {"limit": "40", key: str(bound)}
                async with session.get(f"{url_b}/api/v1/timelines/home", params=params,
                                       headers={"Authorization": f"Bearer {reader}"}) as answer:
                    answer.raise_for_status()
                    page = await answer.json()
                now = time.perf_counter()
                for status in page:
                    seen.setdefault((status.get("reblog") or status)["uri"], now)
                if not page:
                    return
                newest = max(newest, *(int(status["id"]) for status in page))
                if len(page) < 40:
                    return
                bound = pick(int(status["id"]) for status in page)

        while time.perf_counter() < deadline and not (posting_done and sent.keys() <= seen.keys()):
            await pages("min_id", max(0, newest - E2E_REREAD_IDS), max)
            if posting_done and time.perf_counter() - swept_at > 1.0 and not sent.keys() <= seen.keys():
                swept_at = time.perf_counter()
                await pages("max_id", None, min)
            await asyncio.sleep(E2E_POLL_S)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as posting, \
            aiohttp.ClientSession() as watching:
        began = time.perf_counter()
        watch = asyncio.create_task(watcher(watching, began + timeout))
        await asyncio.gather(*(poster(posting) for _ in range(concurrency)))
        post_seconds = time.perf_counter() - began
        posting_done = True
        await watch
    arrived = [uri for uri in sent if uri in seen]
    seconds = (max(seen[uri] for uri in arrived) - began) if arrived else timeout
    latencies = [seen[uri] - sent[uri] for uri in arrived]
    return {"posts": count, "concurrency": concurrency, "errors": errors, "arrived": len(arrived),
            "poll_ms": E2E_POLL_S * 1000, "post_seconds": post_seconds, "seconds": seconds,
            "posts_per_s": len(arrived) / seconds if seconds > 0 else 0.0,
            "p50_ms": _percentile(latencies, 0.50) * 1000, "p99_ms": _percentile(latencies, 0.99) * 1000}


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
    lines += ["", "## End to end: POST on A to visible in a home timeline on B (two real instances)", "",
              "| engine | posts | concurrency | arrived | seconds | posts/s | p50 ms | p99 ms | "
              "ratio to target 100/s | ratio to Takahē (3.1/s) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for engine, v in r["end_to_end"].items():
        lines.append(f"| {engine} | {v['posts']} | {v['concurrency']} | {v['arrived']} / {v['posts']} | "
                     f"{_f(v['seconds'], 2)} | {_f(v['posts_per_s'])} | {_f(v['p50_ms'], 0)} | {_f(v['p99_ms'], 0)} | "
                     f"{_f(v['ratio_to_target_100'], 3)} | {_f(v['ratio_to_takahe'], 1)} |")
    lines += ["", "Latencies from each POST to its first sighting in B's home timeline, polled every "
              f"{_f(E2E_POLL_S * 1000, 0)} ms."]
    lines += ["", "## Memory and start-up (`voisinage serve`, one process: web + workers)", "",
              "| engine | first start s | RSS idle after it MB (cryptography loaded) | restart s | "
              "RSS idle after it MB (no signature yet) | RSS after timeline load MB | "
              "RSS after posting MB | RSS after inbox MB | RSS after fan-out MB |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for engine, v in r["memory"].items():
        lines.append(f"| {engine} | {_f(v.get('startup_first_s'), 2)} | {_f(v.get('rss_idle_first_mb'))} | "
                     f"{_f(v['startup_s'], 2)} | {_f(v['rss_idle_mb'])} | "
                     f"{_f(v['rss_after_timeline_mb'])} | {_f(v['rss_after_posting_mb'])} | "
                     f"{_f(v['rss_after_inbox_mb'])} | {_f(v.get('rss_after_fanout_mb'))} |")
    lines += ["", "## Seeding (`voisinage seed`)", "", "| engine | posts | residents | seconds | posts/s | home rows |",
              "|---|---:|---:|---:|---:|---:|"]
    for engine, sizes in r["seed"].items():
        for size, v in sizes.items():
            lines.append(f"| {engine} | {int(size):,} | {v['residents']} | {_f(v['seconds'])} | "
                         f"{_f(v['posts_per_s'], 0)} | {v['home_rows']:,} |")
    rsa = r["rsa"]
    lines += ["", "## References", "",
              f"RSA-2048 on one core (cryptography): {_f(rsa['sign_per_s'], 0)} signatures/s, "
              f"{_f(rsa['verify_per_s'], 0)} verifications/s."]
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
