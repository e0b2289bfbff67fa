"""Developer tool: print the README's Mastodon API coverage rows for routes missing from it.

    .venv/bin/python tools/api_table.py
"""

import re
from pathlib import Path

from voisinage.server.routes import ROUTES

README = Path(__file__).resolve().parent.parent / "README.md"
ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) ([^`]+)` \|")


def documented() -> set[tuple[str, str]]:
    return {(m.group(1), m.group(2)) for line in README.read_text().splitlines() if (m := ROW.match(line))}


def client_api_routes() -> list[tuple[str, str]]:
    return [(r.method, re.sub(r"\{(\w+)(:[^}]*)?\}", r":\1", r.path)) for r in ROUTES
            if r.path.startswith(("/api/", "/oauth/", "/.well-known/oauth"))]


if __name__ == "__main__":
    have = documented()
    for method, path in client_api_routes():
        if (method, path) not in have:
            print(f"| `{method} {path}` | served | |")
