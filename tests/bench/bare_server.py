"""The reference of the home timeline benchmark: a bare aiohttp handler returning the same bytes.

Run as its own process, the way `voisinage serve` is: `python bare_server.py BODY_FILE PORT`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web


def main() -> None:
    body = Path(sys.argv[1]).read_bytes()
    port = int(sys.argv[2])

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *a: print("ready", flush=True), access_log=None)


if __name__ == "__main__":
    main()
