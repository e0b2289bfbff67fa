"""SECURITY.md rows that had no test of their own: HTML sanitizing (local and remote, statuses and
profiles, the API answer and the stored row), passwords (argon2id, never logged), a remote URL on our
own domain (local, never fetched), household codes' entropy. Each bad input: refusal or neutralising,
and what is stored."""

from __future__ import annotations

import logging
import math
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import select

from voisinage.models.actor import Actor
from voisinage.models.html import sanitize
from voisinage.models.inbox_item import InboxItem
from voisinage.models.post import Post
from voisinage.models.resident import Resident
from voisinage.server.services import villages

from ..federation.test_inbox import A, B, create_note, send
from ..rig.pair import Pair
from ..server.test_oauth import app_token, post_token, register_app

ALLOWED_TAGS = {"p", "br", "a", "span", "del", "pre", "code", "em", "strong", "b", "i", "u", "ul", "ol", "li",
                "blockquote"}
ALLOWED_ATTRS = {"href", "title", "class", "rel", "target", "translate"}
REL = "nofollow noopener noreferrer"

HOSTILE = ('<p>Bonjour<script>alert("x")</script>'
           '<img src=x onerror="alert(1)">'
           '<a href="javascript:alert(2)">jeu</a> '
           '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgzKTwvc2NyaXB0Pg==">image</a> '
           '<span style="position:fixed;top:0" onclick="alert(4)">voir</span>'
           '<style>body{display:none}</style><iframe src="https://evil.example/"></iframe>'
           '<a href="https://example.org/ok" onmouseover="alert(5)" rel="opener">lien</a></p>')


class Tags(HTMLParser):
    """Every tag and attribute of an HTML fragment."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_safe(html: str) -> None:
    """Only allow-listed tags and attributes; no script/style; links http(s)/mailto with the rel."""
    for tag, attrs in Tags(html).tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        assert set(attrs) <= ALLOWED_ATTRS, (attrs, html)
        if tag == "a" and "href" in attrs:
            assert (attrs["href"] or "").split(":", 1)[0].lower() in ("http", "https", "mailto"), html
            assert attrs.get("rel") == REL, html
    lowered = html.lower()
    assert "<script" not in lowered and "<style" not in lowered and "<iframe" not in lowered
    assert "<a href=\"javascript:" not in lowered and "<a href=\"data:" not in lowered


# -- the sanitizer itself: a table of vectors -------------------------------------------------------

VECTORS = [
    ('<script>alert(1)</script>x', "x"),
    ('<img src=x onerror=alert(1)>', ""),
    ('<a href="javascript:alert(1)">a</a>', '<a rel="nofollow noopener noreferrer">a</a>'),
    ('<a href="JaVaScRiPt:alert(1)">a</a>', '<a rel="nofollow noopener noreferrer">a</a>'),
    ('<a href="data:text/html,<script>alert(1)</script>">a</a>', '<a rel="nofollow noopener noreferrer">a</a>'),
    ('<a href="vbscript:x">a</a>', '<a rel="nofollow noopener noreferrer">a</a>'),
    ('<p style="color:red" onclick="x()">t</p>', "<p>t</p>"),
    ('<style>p{}</style>t', "t"),
    ('<svg><script>alert(1)</script></svg>t', "t"),
    ('<math><mi xlink:href="javascript:1">t</mi></math>', ""),
    ('<a href="https://example.org/" target="_top" rel="opener">t</a>',
     '<a href="https://example.org/" rel="nofollow noopener noreferrer">t</a>'),
    ('<!-- <script> -->t', "t"),
    ('<form action="https://evil.example"><input name=p></form>t', "t"),
]


@pytest.mark.parametrize(("dirty", "clean"), VECTORS)
def test_sanitizer_vectors(dirty: str, clean: str) -> None:
    assert sanitize(dirty) == clean
    assert_safe(sanitize(dirty))


# -- local text: a status and a profile through the API ---------------------------------------------

async def test_html_in_a_local_status_is_inert_in_api_and_stored(rig: Any) -> None:
    status, body = await rig.api("alder").post("/api/v1/statuses", json={"status": HOSTILE + " https://example.org/v"})
    assert status == 200, body
    assert_safe(body["content"])
    assert '<a href="https://example.org/v" rel="nofollow noopener noreferrer">' in body["content"]
    stored = (await rig.rows(Post, Post.id == int(body["id"])))[0]
    assert_safe(stored.content)
    status, shown = await rig.api("birch").get(f"/api/v1/statuses/{body['id']}")
    assert status == 200 and shown["content"] == body["content"]


async def test_html_in_a_profile_is_inert_in_api_and_stored(rig: Any) -> None:
    status, me = await rig.api("alder").patch("/api/v1/accounts/update_credentials", json={
        "note": HOSTILE, "display_name": '<script>alert(1)</script>Alder',
        "fields_attributes": {"0": {"name": "Village", "value": "Nord"}, "1": {"name": "<b onclick=x>site</b>", "value": '<a href="javascript:alert(1)">x</a> https://example.org/'}}})
    assert status == 200, me
    assert_safe(me["note"])
    for field in me["fields"]:
        # names are plain text in Mastodon's API (apps escape them); values are HTML
        assert_safe(field["value"])
    actor = (await rig.rows(Actor, Actor.id == rig["alder"].actor_id))[0]
    assert_safe(actor.note)
    for field in actor.fields:
        assert_safe(str(field.get("value", "")))
    status, seen = await rig.api("birch").get(f"/api/v1/accounts/{rig['alder'].id}")
    assert status == 200 and seen["note"] == me["note"]
    # display_name is plain text in Mastodon's API (apps escape it), like field names


# -- remote content: sanitized on the way in -------------------------------------------------------

async def test_remote_note_html_is_sanitized_before_it_is_stored(pair: Pair) -> None:
    activity = create_note()
    activity["object"]["content"] = HOSTILE
    activity["object"]["summary"] = '<script>alert(1)</script>spoiler'
    assert await send(pair, activity) == 202
    await pair.drain()
    note = (await pair.a.rows(Post, Post.uri == f"{B}/users/cedar/statuses/1"))[0]
    assert_safe(note.content)
    assert "https://example.org/ok" in note.content and "Bonjour" in note.content
    # spoiler_text is a plain-text field (as in Mastodon): apps show it as text, never as HTML
    assert not Tags(note.spoiler_text or "").tags or "spoiler" in (note.spoiler_text or "")
    status, shown = await pair.a.api("alder").get(f"/api/v1/statuses/{note.id}")
    assert status == 200
    assert_safe(shown["content"])


async def test_remote_profile_html_is_sanitized_before_it_is_stored(pair: Pair) -> None:
    assert await send(pair, create_note(activity_id=f"{B}/warm")) == 202  # a.test knows cedar
    await pair.drain()
    update = {"id": f"{B}/users/cedar#updates/1", "type": "Update", "actor": f"{B}/users/cedar",
              "object": {"id": f"{B}/users/cedar", "type": "Person", "preferredUsername": "cedar",
                         "inbox": f"{B}/users/cedar/inbox", "summary": HOSTILE, "name": "Cedar<script>x</script>",
                         "attachment": [{"type": "PropertyValue", "name": "site",
                                         "value": '<a href="javascript:alert(1)">x</a>'}]}}
    # An Update of an actor is not believed as sent: a.test re-fetches the document from b.test. So the
    # hostile HTML is put where a hostile peer would serve it: in b.test's own actor row.
    from voisinage.models.db import write_session

    async with write_session(pair.b.sessionmaker) as session:
        row = await session.scalar(select(Actor).where(Actor.username == "cedar", Actor.domain == ""))
        row.note = HOSTILE
        row.display_name = "Cedar<script>x</script>"
        row.fields = [{"name": "site", "value": '<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)>'}]
    assert await send(pair, update) == 202
    await pair.drain()
    cedar = (await pair.a.rows(Actor, Actor.uri == f"{B}/users/cedar"))[0]
    assert "Bonjour" in cedar.note and "https://example.org/ok" in cedar.note  # the Update was applied
    assert_safe(cedar.note)
    # remote profile fields are not imported at all (federation/actors.py keeps name and note only)
    assert "onerror" not in str(cedar.fields) and "javascript:" not in str(cedar.fields)
    for field in cedar.fields or []:
        assert_safe(str(field.get("value", "")))
    status, seen = await pair.a.api("alder").get(f"/api/v1/accounts/{cedar.id}")
    assert status == 200
    assert_safe(seen["note"])


# -- passwords ----------------------------------------------------------------------------------------

SECRET = "Tr0ub4dor&3-never-in-a-log"


async def test_passwords_are_argon2id_and_never_logged(commune: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    code = (await commune.codes("north"))[0]
    token = await app_token(commune.client)
    status, body = await commune.api().post("/api/v1/accounts", json={
        "username": "secretive", "email": "secretive@example.org", "password": SECRET, "agreement": True,
        "locale": "fr", "invite_code": code}, headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    app = await register_app(commune.client)
    for password, wanted in ((SECRET, 200), (SECRET + "x", 400)):
        status, _ = await post_token(commune.client, grant_type="password", username="secretive",
                                     password=password, client_id=app["client_id"],
                                     client_secret=app["client_secret"], scope="read")
        assert status == wanted
    resident = (await commune.rows(Resident))[0]
    assert resident.password_hash.startswith("$argon2id$") and SECRET not in resident.password_hash
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records, "nothing was logged at all: the capture is not working"
    assert SECRET not in text and "never-in-a-log" not in text


# -- a remote URL on our own domain ----------------------------------------------------------------

class Recording:
    """Wraps a.test's transport: every URL a.test itself fetches."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fetched: list[str] = []

    async def get_json(self, url: str, **kw: Any) -> Any:
        self.fetched.append(url)
        return await self.inner.get_json(url, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_remote_url_on_our_own_domain_is_local_and_never_fetched(pair: Pair) -> None:
    from voisinage.federation.context import FEDERATION

    ctx = pair.a.app[FEDERATION]
    recording = ctx.transport = Recording(ctx.transport)
    status, local = await pair.a.api("alder").post("/api/v1/statuses", json={"status": "Vide-grenier"})
    assert status == 200
    await pair.drain()
    posts = await pair.a.count(Post)
    # a boost of our own post, and of a post of ours that does not exist
    boost = {"id": f"{B}/users/cedar/statuses/50/activity", "type": "Announce", "actor": f"{B}/users/cedar",
             "object": local["uri"], "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    ghost = {"id": f"{B}/users/cedar/statuses/51/activity", "type": "Announce", "actor": f"{B}/users/cedar",
             "object": f"{A}/users/alder/statuses/424242", "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    assert await send(pair, boost) == 202
    assert await send(pair, ghost) == 202
    await pair.drain()
    assert not [u for u in recording.fetched if u.startswith(A)]
    # the boost is of our own post, found locally; the ghost created nothing
    reblogs = await pair.a.rows(Post, Post.uri == boost["id"])
    assert len(reblogs) == 1 and reblogs[0].reblog_of_id == int(local["id"])
    assert await pair.a.count(Post) == posts + 1
    assert not await pair.a.rows(Post, Post.uri == f"{A}/users/alder/statuses/424242")
    # search with resolve: a handle on our own domain is looked up locally
    status, found = await pair.a.api("birch").get("/api/v2/search", params={"q": "@alder@a.test", "resolve": "true",
                                                                          "type": "accounts"})
    assert status == 200 and [a["id"] for a in found["accounts"]] == [pair.a["alder"].id]
    assert not [u for u in recording.fetched if u.startswith(A)]


async def test_other_spellings_of_our_own_domain_are_never_fetched(pair: Pair) -> None:
    """Upper case, a trailing dot, the default port, another scheme: still us, so never fetched."""
    from voisinage.federation.context import FEDERATION
    from voisinage.federation.partners import host_of

    ctx = pair.a.app[FEDERATION]
    recording = ctx.transport = Recording(ctx.transport)
    status, local = await pair.a.api("alder").post("/api/v1/statuses", json={"status": "Brocante"})
    assert status == 200
    await pair.drain()
    posts = await pair.a.count(Post)
    path = local["uri"].removeprefix(A)
    for n, origin in enumerate(("https://A.TEST", "https://a.test.", "https://a.test:443", "http://a.test",
                                "https://a.test:8443", "https://xn--a-test")):
        boost = {"id": f"{B}/users/cedar/statuses/6{n}/activity", "type": "Announce", "actor": f"{B}/users/cedar",
                 "object": f"{origin}{path}", "to": ["https://www.w3.org/ns/activitystreams#Public"]}
        assert await send(pair, boost) == 202
    await pair.drain()
    ours = [u for u in recording.fetched if host_of(u).split(":")[0] == "a.test"]
    assert ours == []
    # no ghost copy of our own post under another spelling: a boost, if any, is of our post itself
    assert await pair.a.count(Post, ~Post.uri.startswith(B)) == posts
    assert {p.reblog_of_id for p in await pair.a.rows(Post, Post.uri.startswith(B))} <= {int(local["id"])}


async def test_activity_claiming_our_domain_is_refused_and_stores_nothing(pair: Pair) -> None:
    """A partner signing a Create whose actor and note are on our domain (impersonating alder)."""
    before = (await pair.a.count(InboxItem), await pair.a.count(Post))
    forged = create_note(note_id=f"{A}/users/alder/statuses/666", author=f"{A}/users/alder",
                         actor=f"{A}/users/alder", activity_id=f"{A}/users/alder/statuses/666/activity")
    assert await send(pair, forged) == 401
    await pair.drain()
    assert (await pair.a.count(InboxItem), await pair.a.count(Post)) == before


# -- household codes ------------------------------------------------------------------------------

async def test_household_codes_have_at_least_60_bits(commune: Any) -> None:
    codes = await commune.codes("north", count=50)
    assert len(set(codes)) == 50
    alphabet = set("".join(c.replace("-", "") for c in codes))
    length = len(codes[0].replace("-", ""))
    alphabet_size = getattr(villages, "CODE_ALPHABET", None)
    size = len(alphabet_size) if alphabet_size else len(alphabet)
    assert length * math.log2(size) >= 60, (length, size)


# -- tokens -----------------------------------------------------------------------------------------

async def test_wrong_revoked_or_scopeless_tokens_get_mastodon_errors_and_change_nothing(rig: Any) -> None:
    from voisinage.models.base import utcnow
    from voisinage.models.db import write_session
    from voisinage.models.oauth import Token, token_digest

    revoked = await rig.token_for(rig["alder"].actor_id)
    async with write_session(rig.sessionmaker) as session:
        row = await session.scalar(select(Token).where(Token.token_hash == token_digest(revoked)))
        row.revoked_at = utcnow()
    read_only = await rig.token_for(rig["alder"].actor_id, scopes="read")
    before = (await rig.count(Post), await rig.count(Actor))
    cases = [(None, 401), ("not-a-token", 401), (revoked, 401), ("", 401), (read_only, 403)]
    for token, wanted in cases:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        for method, path, body in (("POST", "/api/v1/statuses", {"status": "intrus"}),
                                   ("PATCH", "/api/v1/accounts/update_credentials", {"note": "intrus"})):
            async with rig.client.request(method, path, json=body, headers=headers) as response:
                payload = await response.json(content_type=None)
                assert response.status == wanted, (token, path, response.status)
                assert isinstance(payload, dict) and isinstance(payload.get("error"), str), payload
    assert (await rig.count(Post), await rig.count(Actor)) == before
    alder = (await rig.rows(Actor, Actor.id == rig["alder"].actor_id))[0]
    assert "intrus" not in alder.note
