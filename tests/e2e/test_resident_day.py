"""A resident's day against a real `voisinage serve`, driven by Mastodon.py as a phone app would.

Villages and codes come from the real CLI; residents register with a printed code through the API,
log in with the password grant, and do what DESIGN.md's issue asks: see the verified field, post a
classified ad, neighbours see it, another village sees it in the commune timeline and at home after
following the village, reply, favourite, notifications, a direct message and a village-only post
nobody else reads, and paging back through 50 posts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mastodon import Mastodon
from mastodon.errors import MastodonNotFoundError

from ..rig.process import ServeProcess, cli, free_port, write_config

PASSWORD = "a long enough password"


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: Any, databases: Any, tmp_path: Path) -> Iterator[ServeProcess]:
    import os

    wanted = os.environ.get("VOISINAGE_TEST_DATABASES", "sqlite,postgresql").split(",")
    if request.param not in wanted:
        pytest.skip(f"{request.param} not selected")
    db_url = (f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}" if request.param == "sqlite"
              else databases.postgresql())
    port = free_port()
    config = write_config(tmp_path, db_url, port)
    cli(config, "village", "add", "embourg", "--name", "Embourg")
    cli(config, "village", "add", "vaux", "--name", "Vaux-sous-Chèvremont")
    serve = ServeProcess(config, port).start()
    serve.codes = {slug: _codes(config, slug) for slug in ("embourg", "vaux")}  # type: ignore[attr-defined]
    yield serve
    assert serve.stop() == 0


def _codes(config: Path, slug: str) -> list[str]:
    out = cli(config, "codes", "generate", "--village", slug, "--count", "2")
    return [row["code"] for row in csv.DictReader(io.StringIO(out))]


def register(server: ServeProcess, code: str, username: str, display_name: str) -> Mastodon:
    """Register through the API with an app token and the household code, then log in as an app does."""
    client_id, client_secret = Mastodon.create_app("Phone app", api_base_url=server.url)
    app_token = requests.post(f"{server.url}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret,
        "scope": "read write follow"}, timeout=10).json()["access_token"]
    answer = requests.post(f"{server.url}/api/v1/accounts", headers={"Authorization": f"Bearer {app_token}"},
                           json={"username": username, "email": f"{username}@example.org", "password": PASSWORD,
                                 "agreement": True, "locale": "fr", "invite_code": code,
                                 "display_name": display_name}, timeout=10)
    assert answer.status_code == 200, answer.text
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.url)
    api.log_in(f"{username}@example.org", PASSWORD, scopes=["read", "write", "follow"], allow_http=True)
    return api


def _shows(statuses: list[Any], status_id: str) -> bool:
    return any(s.id == status_id or (s.reblog and s.reblog.id == status_id) for s in statuses)


def test_a_residents_day(server: ServeProcess) -> None:
    codes = server.codes  # type: ignore[attr-defined]
    anna = register(server, codes["embourg"][0], "anna", "Anna Lambert")
    bert = register(server, codes["embourg"][1], "bert", "Bert Dupont")
    chloe = register(server, codes["vaux"][0], "chloe", "Chloé Martin")

    me = anna.account_verify_credentials()
    village_field = next(f for f in me.fields if f.name == "Village")
    assert village_field.value == "Embourg" and village_field.verified_at

    ad = anna.status_post("Je donne un vélo d'enfant #annonce", visibility="public")
    assert ad.visibility == "public" and [t.name for t in ad.tags] == ["annonce"]

    # The neighbour of the same village sees it at home (through the village they follow).
    assert _shows(bert.timeline_home(), ad.id)
    # Another village sees it in the commune timeline, and at home once they follow the village.
    assert _shows(chloe.timeline_local(), ad.id)
    assert not _shows(chloe.timeline_home(), ad.id)
    embourg = chloe.account_lookup("embourg")
    assert embourg.group is True
    chloe.account_follow(embourg.id)
    later = anna.status_post("Qui a perdu un chat gris ? #perdu", visibility="public")
    home = chloe.timeline_home()
    assert _shows(home, later.id)
    boost = next(s for s in home if s.reblog and s.reblog.id == later.id)
    assert boost.account.acct == "embourg"

    # Reply, favourite, notifications.
    reply = chloe.status_post("@anna Je suis intéressée !", in_reply_to_id=ad.id)
    chloe.status_favourite(ad.id)
    kinds = {(n.type, n.account.acct) for n in anna.notifications()}
    assert ("mention", "chloe") in kinds and ("favourite", "chloe") in kinds
    assert not any(n.type == "reblog" and n.account.acct == "embourg" for n in anna.notifications())
    context = anna.status_context(ad.id)
    assert [s.id for s in context.descendants] == [reply.id]

    # A direct message no one else can read.
    dm = anna.status_post("@bert Le code du portail est 1234", visibility="direct")
    assert bert.status(dm.id).id == dm.id
    with pytest.raises(MastodonNotFoundError):
        chloe.status(dm.id)

    # A village-only post other villages never see, even following the village.
    local = anna.status_post("Réunion du quartier jeudi", visibility="unlisted")
    assert _shows(bert.timeline_home(), local.id)
    assert not _shows(chloe.timeline_home(), local.id)
    assert not _shows(chloe.timeline_local(), local.id)
    with pytest.raises(MastodonNotFoundError):
        chloe.status(local.id)

    # Paging back through 50 posts with the Link header.
    posted = {anna.status_post(f"Message {i}", visibility="private").id for i in range(50)}
    seen: list[str] = []
    page = anna.timeline_home(limit=20)
    while page:
        seen.extend(s.id for s in page)
        page = anna.fetch_next(page)
    assert posted <= set(seen)
    assert len(seen) == len(set(seen))
