"""A fake partner instance on 127.0.0.1:PORT, in a thread with its own event loop.

It accepts POSTs to any path (our delivery only POSTs to inboxes), records every raw delivery and
the unique activity ids it "stored" (a real receiver dedupes by id), and can be slow, answer 503, or
hang. GETs (webfinger, actors) are answered 404 after `get_delay` seconds.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import orjson
from aiohttp import web


class Receiver:
    def __init__(self, port: int) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.delay = 0.0  # seconds before answering a POST
        self.get_delay = 0.0
        self.status = 202
        self.raw: Counter[str] = Counter()  # activity id -> deliveries received
        self.stored: dict[str, dict[str, Any]] = {}  # activity id -> activity (first one answered 2xx)
        self.lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            activity = orjson.loads(body)
        except orjson.JSONDecodeError:
            return web.Response(status=400)
        activity_id = str(activity.get("id"))
        with self.lock:
            self.raw[activity_id] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.status
        if 200 <= status < 300:
            with self.lock:
                self.stored.setdefault(activity_id, activity)
        return web.Response(status=status)

    async def _get(self, request: web.Request) -> web.Response:
        if self.get_delay:
            await asyncio.sleep(self.get_delay)
        return web.Response(status=404)

    def start(self) -> Receiver:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            app = web.Application(client_max_size=2 * 1024 * 1024)
            app.router.add_post("/{tail:.*}", self._post)
            app.router.add_get("/{tail:.*}", self._get)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            pending = asyncio.all_tasks(loop)  # handlers still sleeping on `delay`
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise AssertionError("receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def stored_objects(self) -> set[str]:
        """Ids of the objects of the stored activities (the posts' URIs)."""
        with self.lock:
            out = set()
            for activity in self.stored.values():
                obj = activity.get("object")
                out.add(obj.get("id") if isinstance(obj, dict) else str(obj))
            return out

    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.raw.values() if n > 1)
