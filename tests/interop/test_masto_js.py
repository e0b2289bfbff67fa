"""masto.js, the library of Elk and other browser apps, against a real `voisinage serve` (SQLite).

The fixture installs the pinned masto release with `npm ci` into tests/interop/node_modules (skipped
when the installed tree matches package-lock.json), starts a server with two residents of one village
registered through the API, and runs masto_check.mjs once. The script prints one JSON line per step;
each step is one test here, so a failure names the endpoint and what the server answered.
Node and npm are required: a missing one fails the tests (CI has both), it does not skip them.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from ..rig.process import ServeProcess, cli, free_port, write_config

HERE = Path(__file__).parent
NODE_MODULES = HERE / "node_modules"
STAMP = NODE_MODULES / ".voisinage-lock-sha256"
PASSWORD = "a long enough password"
SCRIPT_TIMEOUT = 120

# Every step masto_check.mjs reports, in its order; a step it never reports fails too.
STEPS = [
    "instance_v1", "instance_v2", "verify_credentials", "custom_emojis", "preferences", "lists",
    "filters_v2", "filters_v2_create", "filters_v1", "markers", "notifications", "announcements_trends",
    "media_upload_v2", "media_fetch", "streaming_connect", "status_with_photo", "streaming_update", "edit",
    "home_paging", "markers_save", "favourite", "bookmark", "filter_applies", "search", "delete",
    "streaming_delete",
]


@dataclass
class MastoRun:
    """What one run of masto_check.mjs reported."""

    steps: dict[str, dict[str, Any]]
    returncode: int
    stdout: str
    stderr: str
    serve_log: Path


def require_tool(name: str) -> str:
    """The path of `name`, or a test failure saying how to get it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: the masto.js interop check needs Node.js 18+ and npm "
                    f"(apt-get install nodejs npm, or https://nodejs.org)", pytrace=False)
    return path


def lock_digest() -> str:
    return hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()


def install_node_modules() -> None:
    """`npm ci` into tests/interop/node_modules unless the installed tree already matches the lock."""
    node = require_tool("node")
    npm = require_tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 18:
        pytest.fail(f"node {version} is too old for masto.js: Node.js 18+ is needed", pytrace=False)
    lock_name = f"voisinage-npm-{hashlib.sha256(str(HERE).encode()).hexdigest()[:12]}.lock"
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once must not both rewrite node_modules
        if installed():
            return
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=HERE,
                                capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {HERE}:\n{result.stdout}\n{result.stderr}", pytrace=False)
        STAMP.write_text(lock_digest() + "\n")


def installed() -> bool:
    """Whether node_modules holds what package-lock.json pins (npm ci wipes the stamp with the folder)."""
    return (STAMP.exists() and STAMP.read_text().strip() == lock_digest()
            and (NODE_MODULES / "masto" / "package.json").exists())


def write_png(path: Path) -> Path:
    """A small photo-like PNG (a gradient, so the blurhash and the preview have something to show)."""
    image = Image.new("RGB", (320, 240))
    image.putdata([(x * 255 // 319, y * 255 // 239, 128) for y in range(240) for x in range(320)])
    image.save(path, format="PNG")
    return path


def household_codes(config: Path, slug: str, count: int) -> list[str]:
    out = cli(config, "codes", "generate", "--village", slug, "--count", str(count))
    return [row["code"] for row in csv.DictReader(io.StringIO(out))]


def register(server: ServeProcess, code: str, username: str) -> str:
    """Register a resident the way an app does (app token + household code), return a user token."""
    app = requests.post(f"{server.url}/api/v1/apps", json={
        "client_name": "Elk (masto.js)", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
        "scopes": "read write follow push"}, timeout=10).json()
    app_token = requests.post(f"{server.url}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "scope": "read write follow"}, timeout=10).json()["access_token"]
    answer = requests.post(f"{server.url}/api/v1/accounts", headers={"Authorization": f"Bearer {app_token}"},
                           json={"username": username, "email": f"{username}@example.org", "password": PASSWORD,
                                 "agreement": True, "locale": "fr", "invite_code": code}, timeout=10)
    assert answer.status_code == 200, answer.text
    login = requests.post(f"{server.url}/oauth/token", data={
        "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "username": f"{username}@example.org", "password": PASSWORD, "scope": "read write follow push"},
        timeout=10)
    assert login.status_code == 200, login.text
    return login.json()["access_token"]


def parse_steps(stdout: str) -> dict[str, dict[str, Any]]:
    steps: dict[str, dict[str, Any]] = {}
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "step" in record:
            steps[record["step"]] = record
    return steps


def run_check(server: ServeProcess, tokens: list[str], png: Path) -> MastoRun:
    env = dict(os.environ, VOISINAGE_URL=server.url, VOISINAGE_TOKEN=tokens[0], VOISINAGE_TOKEN_2=tokens[1],
               VOISINAGE_PNG=str(png))
    try:
        result = subprocess.run([require_tool("node"), str(HERE / "masto_check.mjs")], cwd=HERE, env=env,
                                capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False)
        stdout, stderr, code = result.stdout, result.stderr, result.returncode
    except subprocess.TimeoutExpired as timeout:
        stdout = (timeout.stdout or b"").decode() if isinstance(timeout.stdout, bytes) else (timeout.stdout or "")
        stderr = f"masto_check.mjs did not finish within {SCRIPT_TIMEOUT} s"
        code = -1
    print(stdout)
    return MastoRun(parse_steps(stdout), code, stdout, stderr, server.config.parent / "serve.log")


@pytest.fixture(scope="module")
def masto_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MastoRun]:
    wanted = os.environ.get("VOISINAGE_TEST_DATABASES", "sqlite,postgresql").split(",")
    if "sqlite" not in wanted:
        pytest.skip("the masto.js check runs on SQLite only, and sqlite is not selected")
    install_node_modules()
    tmp = tmp_path_factory.mktemp("masto")
    port = free_port()
    config = write_config(tmp, f"sqlite+aiosqlite:///{tmp / 'masto.db'}", port)
    cli(config, "village", "add", "embourg", "--name", "Embourg")
    server = ServeProcess(config, port).start()
    try:
        codes = household_codes(config, "embourg", 2)
        tokens = [register(server, codes[0], "anna"), register(server, codes[1], "bert")]
        yield run_check(server, tokens, write_png(tmp / "velo.png"))
    finally:
        assert server.stop() == 0


def test_script_ran_to_the_end(masto_run: MastoRun) -> None:
    assert '"done":true' in masto_run.stdout, (
        f"masto_check.mjs stopped early (exit {masto_run.returncode}):\n{masto_run.stderr[-3000:]}")
    unknown = set(masto_run.steps) - set(STEPS)
    assert not unknown, f"steps reported but not listed in STEPS: {sorted(unknown)}"


@pytest.mark.parametrize("name", STEPS)
def test_masto_step(masto_run: MastoRun, name: str) -> None:
    record = masto_run.steps.get(name)
    assert record is not None, f"step {name} never reported; stderr:\n{masto_run.stderr[-3000:]}"
    if record.get("ok"):
        return
    if "skipped" in record:
        pytest.fail(f"{name} did not run: it {record['skipped']}, which failed", pytrace=False)
    request = record.get("last_request") or {}
    tail = masto_run.serve_log.read_text(errors="replace")[-2000:] if masto_run.serve_log.exists() else ""
    pytest.fail(f"{name}: {record.get('error')}\nlast request: {json.dumps(request, ensure_ascii=False)}\n"
                f"server log tail:\n{tail}", pytrace=False)
