"""The README's Mastodon API coverage table says exactly what the route table serves."""

from __future__ import annotations

import re
from pathlib import Path

from voisinage.server.routes import ROUTES

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) ([^`]+)` \| (served|absent \(404\)) \| *`?([^`|]*?)`? *\|")


def _table() -> dict[tuple[str, str], tuple[str, str]]:
    rows = {}
    for line in README.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[(match.group(1), match.group(2))] = (match.group(3), match.group(4).strip())
    return rows


def _served() -> dict[tuple[str, str], str]:
    return {(r.method, re.sub(r"\{(\w+)(:[^}]*)?\}", r":\1", r.path)): (r.scope or "none")
            for r in ROUTES if r.path.startswith(("/api/", "/oauth/", "/.well-known/oauth"))}


def test_every_served_route_is_in_the_table_with_its_scope():
    table = _table()
    for key, scope in _served().items():
        assert key in table, f"{key} is served but not in the README table"
        assert table[key] == ("served", scope), f"{key}: README says {table[key]}, routes say {scope}"


def test_every_row_marked_served_is_really_served():
    served = _served()
    for key, (status, _) in _table().items():
        if status == "served":
            assert key in served, f"README lists {key} as served, but no route serves it"


async def test_endpoints_marked_absent_answer_404(rig):
    absent = [key for key, (status, _) in _table().items() if status != "served"]
    assert absent
    for method, path in absent:
        status, body = await rig.api("alder").call(method, path)
        assert status == 404, f"{method} {path} -> {status}"
        assert body == {"error": "Record not found"}
