"""Issue 4's day, with three real `voisinage serve` processes on loopback ports.

A and B are partners (made with the CLI) and B's village is A's neighbour. A resident of B finds
`@north@A` from the client API, follows it, sees A's public post at home and in the nearby feed, and
replies into A's thread, which notifies the author on A; an unlisted post stays in A; a deletion on A
disappears from B. C lists A as a partner, but A does not list C: C can neither resolve nor follow
anything on A, and nothing of A ever reaches C.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

from voisinage.models.actor import Actor
from voisinage.models.delivery import Delivery
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.inbox_item import InboxItem
from voisinage.models.post import Post

from ..rig.process import ServeProcess, add_resident, cli, free_port, in_db, post, wait_for, write_config


class Client:
    """A resident's app: the client API of one instance with one token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: str) -> Any:
        answer = requests.get(f"{self.base_url}{path}", params=params, headers=self.headers, timeout=15)
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        return answer.json()

    def status_code(self, path: str) -> int:
        return requests.get(f"{self.base_url}{path}", headers=self.headers, timeout=15).status_code

    def post(self, path: str, **body: Any) -> Any:
        answer = requests.post(f"{self.base_url}{path}", json=body, headers=self.headers, timeout=15)
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        return answer.json()

    def uris(self, path: str, **params: str) -> list[str]:
        return [(s.get("reblog") or s)["uri"] for s in self.get(path, **params)]


def _count(url: str, query: Any) -> int:
    async def work(sessionmaker: Any) -> int:
        async with sessionmaker() as session:
            return int(await session.scalar(query) or 0)
    return in_db(url, work)


def test_partners_neighbours_and_a_stranger(trio_urls: tuple[str, str, str], tmp_path: Path) -> None:
    url_a, url_b, url_c = trio_urls
    ports = {name: free_port() for name in "abc"}
    hosts = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    confs = {}
    for name, url in zip("abc", trio_urls, strict=True):
        (tmp_path / name).mkdir()
        confs[name] = write_config(tmp_path / name, url, ports[name])
        cli(confs[name], "village", "add", "north", "--name", "Nord")
    cli(confs["a"], "partner", "add", hosts["b"])
    cli(confs["b"], "partner", "add", hosts["a"])
    cli(confs["c"], "partner", "add", hosts["a"])  # one-sided: A does not list C
    servers = {name: ServeProcess(confs[name], ports[name]).start() for name in "abc"}
    try:
        cli(confs["b"], "neighbour", "add", "north", f"@north@{hosts['a']}")

        def neighbours() -> bool:
            query = (select(Follow.state).join(Actor, Actor.id == Follow.target_id)
                     .where(Actor.domain == hosts["a"]))
            async def work(sessionmaker: Any) -> bool:
                async with sessionmaker() as session:
                    return await session.scalar(query) == ACCEPTED
            return bool(in_db(url_b, work))

        wait_for(neighbours, "the Accept of the neighbour link")
        alder = Client(servers["a"].url, add_resident(url_a, servers["a"].url, "alder"))
        cedar = Client(servers["b"].url, add_resident(url_b, servers["b"].url, "cedar"))
        elm = Client(servers["c"].url, add_resident(url_c, servers["c"].url, "elm"))

        # cedar finds A's village from the app and follows it
        found = cedar.get("/api/v2/search", q=f"@north@{hosts['a']}", resolve="true")["accounts"]
        assert [a["acct"] for a in found] == [f"north@{hosts['a']}"] and found[0]["group"] is True
        village = found[0]["id"]
        cedar.post(f"/api/v1/accounts/{village}/follow")
        wait_for(lambda: cedar.get("/api/v1/accounts/relationships", **{"id[]": village})[0]["following"],
                 "A's village accepting cedar's follow")

        public = post(alder.base_url, alder.token, "Fête du village samedi", "public")
        unlisted = post(alder.base_url, alder.token, "Réunion du comité", "unlisted")
        wait_for(lambda: public["uri"] in cedar.uris("/api/v1/timelines/home"), "A's post at home on B")
        assert public["uri"] in cedar.uris("/api/v1/timelines/public", remote="true")  # nearby
        assert cedar.uris("/api/v1/timelines/home").count(public["uri"]) == 1

        # a reply from B goes into A's thread and notifies the author
        shown = next(s for s in cedar.get("/api/v1/timelines/home") if (s.get("reblog") or s)["uri"] == public["uri"])
        on_b = (shown.get("reblog") or shown)["id"]
        reply = cedar.post("/api/v1/statuses", status="Je viens avec une tarte !", in_reply_to_id=on_b,
                           visibility="public")

        def notified() -> bool:
            notes = alder.get("/api/v1/notifications", **{"types[]": "mention"})
            return any(n["status"] and n["status"]["uri"] == reply["uri"] for n in notes)

        wait_for(notified, "alder's notification of cedar's reply")
        thread = alder.get(f"/api/v1/statuses/{public['id']}/context")
        assert [s["uri"] for s in thread["descendants"]] == [reply["uri"]]

        # the unlisted post stayed in A: nothing was ever made to carry it
        assert unlisted["uri"] not in cedar.uris("/api/v1/timelines/home")
        assert _count(url_b, select(func.count()).select_from(Post).where(Post.uri == unlisted["uri"])) == 0

        # a deletion on A disappears from B
        answer = requests.delete(f"{alder.base_url}/api/v1/statuses/{public['id']}", headers=alder.headers, timeout=15)
        assert answer.status_code == 200, answer.text
        wait_for(lambda: public["uri"] not in cedar.uris("/api/v1/timelines/home"), "the deletion on B")
        assert cedar.status_code(f"/api/v1/statuses/{on_b}") == 404

        # C, a stranger to A: cannot resolve A's village, its follow never gets in, it receives nothing
        assert elm.get("/api/v2/search", q=f"@north@{hosts['a']}", resolve="true")["accounts"] == []
        assert cli_fails(confs["c"], "neighbour", "add", "north", f"@north@{hosts['a']}")
        assert _count(url_a, select(func.count()).select_from(Actor).where(Actor.domain == hosts["c"])) == 0
        assert _count(url_a, select(func.count()).select_from(InboxItem)
                      .where(InboxItem.signer_uri.like(f"http://{hosts['c']}/%"))) == 0
        assert _count(url_a, select(func.count()).select_from(Delivery).where(Delivery.host == hosts["c"])) == 0
        assert _count(url_c, select(func.count()).select_from(Post).where(Post.uri.like(f"http://{hosts['a']}/%"))) == 0
    finally:
        codes = [server.stop() for server in servers.values()]
    assert codes == [0, 0, 0]


def cli_fails(config: Path, *args: str) -> bool:
    """Whether `voisinage ARGS` exits non-zero with a one-line error (and no traceback)."""
    try:
        cli(config, *args)
    except AssertionError as exc:
        text = str(exc)
        return "Traceback" not in text
    return False
