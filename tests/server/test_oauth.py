"""OAuth 2 as Mastodon apps use it: app registration, the login/consent page with PKCE, the token
grants, revocation and the server metadata."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from voisinage.models.actor import Actor
from voisinage.models.base import utcnow
from voisinage.models.db import write_session
from voisinage.models.oauth import Application, AuthorizationCode, Token, token_digest
from voisinage.server.app import create_app

from ..conftest import make_settings
from ..rig import cast
from ..rig.commune import Commune

OOB = "urn:ietf:wg:oauth:2.0:oob"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- helpers (also used by test_registration.py and test_pages.py) ---------------------------------

async def register_app(client: Any, scopes: str = "read write follow",
                       redirect_uris: Any = "icecubesapp://oauth") -> dict[str, Any]:
    async with client.post("/api/v1/apps", json={"client_name": "Test App", "redirect_uris": redirect_uris,
                                                 "scopes": scopes, "website": "https://app.example"}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def post_token(client: Any, **data: Any) -> tuple[int, Any]:
    async with client.post("/oauth/token", data=data) as r:
        return r.status, await r.json()


async def app_token(client: Any, scopes: str = "read write follow") -> str:
    """A client_credentials token of a fresh app (what apps get before POST /api/v1/accounts)."""
    app = await register_app(client, scopes=scopes)
    status, body = await post_token(client, grant_type="client_credentials", client_id=app["client_id"],
                                    client_secret=app["client_secret"], scope=scopes)
    assert status == 200, body
    return body["access_token"]


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def open_authorize(client: Any, app: dict[str, Any], **extra: str) -> tuple[int, str]:
    params = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": app["redirect_uris"][0],
              "scope": "read write", "state": "xyz", **extra}
    async with client.get("/oauth/authorize", params=params) as r:
        return r.status, await r.text()


def hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


async def submit_login(client: Any, html: str, login: str, password: str,
                       decision: str = "allow") -> Any:
    import html as htmllib

    form = {k: htmllib.unescape(v) for k, v in hidden_fields(html).items()}
    form.update(login=login, password=password, decision=decision)
    return await client.post("/oauth/authorize", data=form, allow_redirects=False)


async def authorize_code(rig: Commune, app: dict[str, Any], challenge: str | None = None) -> str:
    extra = {"code_challenge": challenge, "code_challenge_method": "S256"} if challenge else {}
    status, html = await open_authorize(rig.client, app, **extra)
    assert status == 200, html
    async with await submit_login(rig.client, html, "alder@example.org", cast.PASSWORD) as r:
        assert r.status == 302, await r.text()
        location = r.headers["Location"]
    assert location.startswith(app["redirect_uris"][0] + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["xyz"]
    return query["code"][0]


# --- app registration ------------------------------------------------------------------------------

async def test_register_app_as_json_form_and_query_string(commune):
    client = commune.client
    async with client.post("/api/v1/apps", json={
            "client_name": "Ice Cubes", "redirect_uris": ["icecubesapp://", OOB],
            "scopes": "read write follow push", "website": "https://github.com/Dimillian/IceCubesApp"}) as r:
        assert r.status == 200
        as_json = await r.json()
    assert as_json["name"] == "Ice Cubes"
    assert as_json["redirect_uris"] == ["icecubesapp://", OOB]
    assert as_json["redirect_uri"] == f"icecubesapp://\n{OOB}"
    assert as_json["scopes"] == ["read", "write", "follow", "push"]
    assert as_json["client_secret_expires_at"] == 0 and as_json["vapid_key"] == ""
    assert isinstance(as_json["id"], str) and as_json["client_id"] and as_json["client_secret"]

    async with client.post("/api/v1/apps", data={"client_name": "Ivory",
                                                 "redirect_uris": "com.tapbots.Ivory.10217:/request_token"}) as r:
        assert r.status == 200
        as_form = await r.json()
    assert as_form["redirect_uris"] == ["com.tapbots.Ivory.10217:/request_token"]
    assert as_form["scopes"] == ["read"]

    async with client.post("/api/v1/apps", params={"client_name": "Query", "redirect_uris": f"{OOB} https://x.example/cb",
                                                   "scopes": "read+write"}) as r:
        assert r.status == 200
        as_query = await r.json()
    assert as_query["redirect_uris"] == [OOB, "https://x.example/cb"]
    assert as_query["scopes"] == ["read", "write"]

    rows = {row.client_id: row for row in await commune.rows(Application)}
    assert rows[as_json["client_id"]].redirect_uris == f"icecubesapp://\n{OOB}"
    assert rows[as_form["client_id"]].name == "Ivory"
    assert rows[as_query["client_id"]].scopes == "read write"


async def test_bad_apps_are_refused_and_not_stored(commune):
    bad = [
        {"redirect_uris": OOB},  # no name
        {"client_name": "  ", "redirect_uris": OOB},
        {"client_name": "x", "redirect_uris": "javascript:alert(1)"},
        {"client_name": "x", "redirect_uris": "data:text/html,<script>alert(1)</script>"},
        {"client_name": "x", "redirect_uris": "not a uri at all"},
        {"client_name": "x", "redirect_uris": "https://x.example/cb#frag"},
        {"client_name": "x", "redirect_uris": "https:///nohost"},
        {"client_name": "x", "redirect_uris": ""},
        {"client_name": "x", "redirect_uris": OOB, "scopes": "read everything"},
        {"client_name": "x", "redirect_uris": OOB, "website": "javascript:alert(1)"},
    ]
    for body in bad:
        async with commune.client.post("/api/v1/apps", json=body) as r:
            assert r.status == 422, (body, await r.text())
            assert "error" in await r.json()
    assert await commune.count(Application) == 0


async def test_verify_app_credentials_with_an_app_token(commune):
    token = await app_token(commune.client, scopes="read write")
    status, body = await commune.api().get("/api/v1/apps/verify_credentials",
                                           headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    assert body["name"] == "Test App" and body["scopes"] == ["read", "write"]
    assert body["website"] == "https://app.example" and body["redirect_uris"] == ["icecubesapp://oauth"]
    assert "client_secret" not in body


async def test_metadata_lists_endpoints_and_grants(commune):
    status, body = await commune.api().get("/.well-known/oauth-authorization-server")
    assert status == 200
    assert body["issuer"] == "https://a.test/"
    assert body["token_endpoint"] == "https://a.test/oauth/token"
    assert body["authorization_endpoint"] == "https://a.test/oauth/authorize"
    assert body["revocation_endpoint"] == "https://a.test/oauth/revoke"
    assert body["app_registration_endpoint"] == "https://a.test/api/v1/apps"
    assert body["grant_types_supported"] == ["authorization_code", "password", "client_credentials"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"]
    assert "read:statuses" in body["scopes_supported"] and "write" in body["scopes_supported"]


# --- authorization code + PKCE through the HTML form -----------------------------------------------

async def test_full_authorization_code_flow_with_pkce(rig):
    app = await register_app(rig.client)
    verifier, challenge = pkce_pair()
    status, html = await open_authorize(rig.client, app, code_challenge=challenge, code_challenge_method="S256")
    assert status == 200
    assert 'name="viewport"' in html and "Test App" in html
    assert "lire vos messages" in html or "lire votre compte" in html  # scopes in plain (French) words
    assert csrf_of(html)
    async with await submit_login(rig.client, html, "alder@example.org", cast.PASSWORD) as r:
        assert r.status == 302
        location = r.headers["Location"]
    assert location.startswith("icecubesapp://oauth?")
    code = parse_qs(urlsplit(location).query)["code"][0]
    stored = await rig.rows(AuthorizationCode, AuthorizationCode.code_hash == token_digest(code))
    assert stored[0].code_challenge == challenge and stored[0].actor_id == rig["alder"].actor_id
    before = await rig.count(Token)
    status, body = await post_token(rig.client, grant_type="authorization_code", code=code,
                                    redirect_uri=app["redirect_uris"][0], client_id=app["client_id"],
                                    client_secret=app["client_secret"], code_verifier=verifier)
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["scope"] == "read write"
    assert isinstance(body["created_at"], int)
    rows = await rig.rows(Token, Token.token_hash == token_digest(body["access_token"]))
    assert len(rows) == 1 and rows[0].actor_id == rig["alder"].actor_id
    assert await rig.count(Token) == before + 1
    status, me = await rig.api().get("/api/v1/apps/verify_credentials",
                                     headers={"Authorization": f"Bearer {body['access_token']}"})
    assert status == 200 and me["name"] == "Test App"


async def test_login_by_account_name_and_json_exchange(rig):
    app = await register_app(rig.client)
    status, html = await open_authorize(rig.client, app)
    async with await submit_login(rig.client, html, "Birch", cast.PASSWORD) as r:
        assert r.status == 302
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    async with rig.client.post("/oauth/token", json={
            "grant_type": "authorization_code", "code": code, "redirect_uri": app["redirect_uris"][0],
            "client_id": app["client_id"], "client_secret": app["client_secret"]}) as r:
        assert r.status == 200
        body = await r.json()
    rows = await rig.rows(Token, Token.token_hash == token_digest(body["access_token"]))
    assert rows[0].actor_id == rig["birch"].actor_id


async def test_wrong_verifier_reused_code_and_wrong_redirect_are_refused(rig):
    app = await register_app(rig.client, redirect_uris=["icecubesapp://oauth", "https://other.example/cb"])
    verifier, challenge = pkce_pair()
    code = await authorize_code(rig, app, challenge)
    base = dict(grant_type="authorization_code", code=code, client_id=app["client_id"],
                client_secret=app["client_secret"], redirect_uri="icecubesapp://oauth")
    before = await rig.count(Token)
    for changes in ({"code_verifier": pkce_pair()[0]}, {}, {"code_verifier": verifier,
                                                            "redirect_uri": "https://other.example/cb"}):
        status, body = await post_token(rig.client, **{**base, **changes})
        assert status == 400 and body["error"] == "invalid_grant", body
        assert body["error_description"]
    assert await rig.count(Token) == before
    status, body = await post_token(rig.client, **base, code_verifier=verifier)
    assert status == 200
    status, body = await post_token(rig.client, **base, code_verifier=verifier)  # reused
    assert status == 400 and body["error"] == "invalid_grant"
    assert await rig.count(Token) == before + 1


async def test_code_of_another_client_or_expired_is_refused(rig):
    app = await register_app(rig.client)
    other = await register_app(rig.client)
    code = await authorize_code(rig, app)
    status, body = await post_token(rig.client, grant_type="authorization_code", code=code,
                                    client_id=other["client_id"], client_secret=other["client_secret"],
                                    redirect_uri=app["redirect_uris"][0])
    assert status == 400 and body["error"] == "invalid_grant"
    status, body = await post_token(rig.client, grant_type="authorization_code", code=code,
                                    client_id=app["client_id"], client_secret="wrong",
                                    redirect_uri=app["redirect_uris"][0])
    assert status == 401 and body["error"] == "invalid_client"
    from voisinage.server.keys import CLOCK

    real = rig.app[CLOCK]
    rig.app[CLOCK] = lambda: real() + 11 * 60
    try:
        status, body = await post_token(rig.client, grant_type="authorization_code", code=code,
                                        client_id=app["client_id"], client_secret=app["client_secret"],
                                        redirect_uri=app["redirect_uris"][0])
    finally:
        rig.app[CLOCK] = real
    assert status == 400 and body["error"] == "invalid_grant"
    assert await rig.count(Token, Token.application_id.in_([int(app["id"]), int(other["id"])])) == 0


async def test_public_client_needs_pkce_to_skip_the_secret(rig):
    app = await register_app(rig.client)
    code = await authorize_code(rig, app)  # no challenge: the secret is required
    status, body = await post_token(rig.client, grant_type="authorization_code", code=code,
                                    client_id=app["client_id"], redirect_uri=app["redirect_uris"][0])
    assert status == 401 and body["error"] == "invalid_client"
    verifier, challenge = pkce_pair()
    code = await authorize_code(rig, app, challenge)
    status, body = await post_token(rig.client, grant_type="authorization_code", code=code,
                                    client_id=app["client_id"], redirect_uri=app["redirect_uris"][0],
                                    code_verifier=verifier)
    assert status == 200


async def test_oob_shows_the_code_on_a_page(rig):
    app = await register_app(rig.client, redirect_uris=OOB)
    status, html = await open_authorize(rig.client, app)
    async with await submit_login(rig.client, html, "alder@example.org", cast.PASSWORD) as r:
        assert r.status == 200
        page = await r.text()
    code = re.search(r'<code class="code" id="code">([^<]+)</code>', page).group(1)
    status, body = await post_token(rig.client, grant_type="authorization_code", code=code, redirect_uri=OOB,
                                    client_id=app["client_id"], client_secret=app["client_secret"])
    assert status == 200 and body["access_token"]


async def test_authorize_errors_are_pages_never_redirects(rig):
    app = await register_app(rig.client, scopes="read")
    cases = [
        {"client_id": "unknown"},
        {"redirect_uri": "https://evil.example/cb"},
        {"scope": "read write"},  # outside the app's scopes
        {"scope": "read nonsense"},
        {"code_challenge": pkce_pair()[1], "code_challenge_method": "plain"},
        {"code_challenge": pkce_pair()[1], "code_challenge_method": ""},
        {"response_type": "token"},
    ]
    for case in cases:
        params = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": app["redirect_uris"][0],
                  "scope": "read", **case}
        async with rig.client.get("/oauth/authorize", params=params, allow_redirects=False) as r:
            assert r.status == 400, case
            assert "Location" not in r.headers
            assert "text/html" in r.headers["Content-Type"]
            assert "<form" not in await r.text()


async def test_wrong_password_shows_the_page_again_and_issues_nothing(rig):
    app = await register_app(rig.client)
    status, html = await open_authorize(rig.client, app)
    for login in ("alder@example.org", "alder", "nobody@example.org"):
        async with await submit_login(rig.client, html, login, "wrong password") as r:
            assert r.status == 401
            page = await r.text()
            assert "Location" not in r.headers
        assert "incorrect" in page and csrf_of(page)
    assert await rig.count(AuthorizationCode) == 0


async def test_suspended_account_cannot_log_in(rig):
    async with write_session(rig.sessionmaker) as session:
        actor = await session.get(Actor, rig["alder"].actor_id)
        actor.suspended_at = utcnow()
    app = await register_app(rig.client)
    status, html = await open_authorize(rig.client, app)
    async with await submit_login(rig.client, html, "alder", cast.PASSWORD) as r:
        assert r.status == 401
        assert "suspendu" in await r.text()
    status, body = await post_token(rig.client, grant_type="password", username="alder", password=cast.PASSWORD,
                                    client_id=app["client_id"], client_secret=app["client_secret"])
    assert status == 400 and body["error"] == "invalid_grant"
    assert await rig.count(AuthorizationCode) == 0
    assert await rig.count(Token, Token.application_id == int(app["id"])) == 0


async def test_deny_redirects_with_access_denied(rig):
    app = await register_app(rig.client)
    status, html = await open_authorize(rig.client, app)
    async with await submit_login(rig.client, html, "", "", decision="deny") as r:
        assert r.status == 302
        query = parse_qs(urlsplit(r.headers["Location"]).query)
    assert query == {"error": ["access_denied"], "state": ["xyz"]}
    assert await rig.count(AuthorizationCode) == 0


async def test_post_without_or_with_wrong_csrf_token_is_refused(rig):
    app = await register_app(rig.client)
    status, html = await open_authorize(rig.client, app)
    form = hidden_fields(html)
    form.update(login="alder", password=cast.PASSWORD)
    for token in (None, "0" * 64):
        data = dict(form)
        if token is None:
            data.pop("csrf_token")
        else:
            data["csrf_token"] = token
        async with rig.client.post("/oauth/authorize", data=data, allow_redirects=False) as r:
            assert r.status == 403
            assert "Location" not in r.headers
    # the right form token without the cookie is refused too (double submit)
    rig.client.session.cookie_jar.clear()
    async with rig.client.post("/oauth/authorize", data=form, allow_redirects=False) as r:
        assert r.status == 403
    assert await rig.count(AuthorizationCode) == 0


async def test_csrf_cookie_flags(rig):
    app = await register_app(rig.client)
    params = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": app["redirect_uris"][0]}
    async with rig.client.get("/oauth/authorize", params=params) as r:
        cookie = r.headers["Set-Cookie"]
        assert r.headers["X-Frame-Options"] == "DENY"
    assert "voisinage_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in tests


async def test_login_attempts_are_rate_limited_per_ip(db_url, tmp_path, aiohttp_client):
    settings = make_settings(db_url, tmp_path, ratelimit={"logins_per_5min": 2})
    rig = await Commune(await aiohttp_client(create_app(settings))).hold_clock().seed("alder")
    app = await register_app(rig.client)
    status, html = await open_authorize(rig.client, app)
    for _ in range(2):
        async with await submit_login(rig.client, html, "alder", "wrong password") as r:
            assert r.status == 401
    async with await submit_login(rig.client, html, "alder", cast.PASSWORD) as r:
        assert r.status == 429
        assert r.headers["X-RateLimit-Limit"] == "2" and r.headers["X-RateLimit-Remaining"] == "0"
        assert "Location" not in r.headers
    status, body = await post_token(rig.client, grant_type="password", username="alder", password=cast.PASSWORD,
                                    client_id=app["client_id"], client_secret=app["client_secret"])
    assert status == 429
    assert await rig.count(AuthorizationCode) == 0
    assert await rig.count(Token, Token.application_id == int(app["id"])) == 0


# --- password and client_credentials grants, revoke ------------------------------------------------

async def test_password_grant_with_email_and_with_username(rig):
    app = await register_app(rig.client)
    for username in ("alder@example.org", "ALDER@example.org", "alder", "@alder", "alder@a.test"):
        status, body = await post_token(rig.client, grant_type="password", username=username,
                                        password=cast.PASSWORD, client_id=app["client_id"],
                                        client_secret=app["client_secret"], scope="read write")
        assert status == 200, (username, body)
        assert body["scope"] == "read write"
        rows = await rig.rows(Token, Token.token_hash == token_digest(body["access_token"]))
        assert rows[0].actor_id == rig["alder"].actor_id


async def test_password_grant_refusals_store_nothing(rig):
    app = await register_app(rig.client, scopes="read")
    cases = [
        (400, "invalid_grant", {"username": "alder", "password": "wrong password"}),
        (400, "invalid_grant", {"username": "nobody", "password": cast.PASSWORD}),
        (400, "invalid_scope", {"username": "alder", "password": cast.PASSWORD, "scope": "write"}),
        (401, "invalid_client", {"username": "alder", "password": cast.PASSWORD, "client_secret": "nope"}),
    ]
    for status_wanted, error, changes in cases:
        data = {"grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
                **changes}
        status, body = await post_token(rig.client, **data)
        assert (status, body["error"]) == (status_wanted, error), body
    assert await rig.count(Token, Token.application_id == int(app["id"])) == 0


async def test_client_credentials_with_http_basic(rig):
    app = await register_app(rig.client)
    basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    async with rig.client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "read"},
                               headers={"Authorization": f"Basic {basic}"}) as r:
        assert r.status == 200
        body = await r.json()
    rows = await rig.rows(Token, Token.token_hash == token_digest(body["access_token"]))
    assert rows[0].actor_id is None and rows[0].scopes == "read"
    # an app token is no user: user routes answer 422
    status, _ = await rig.api().get("/api/v1/timelines/home",
                                    headers={"Authorization": f"Bearer {body['access_token']}"})
    assert status == 422


async def test_refresh_token_and_unknown_grants_are_unsupported(rig):
    app = await register_app(rig.client)
    for grant in ("refresh_token", "implicit", ""):
        status, body = await post_token(rig.client, grant_type=grant, refresh_token="x",
                                        client_id=app["client_id"], client_secret=app["client_secret"])
        assert status == 400 and body["error"] == "unsupported_grant_type"
    assert await rig.count(Token, Token.application_id == int(app["id"])) == 0


async def test_revoke_makes_the_token_fail_at_once(rig):
    app = await register_app(rig.client)
    status, body = await post_token(rig.client, grant_type="password", username="alder", password=cast.PASSWORD,
                                    client_id=app["client_id"], client_secret=app["client_secret"])
    token = body["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    status, _ = await rig.api().get("/api/v1/apps/verify_credentials", headers=auth)
    assert status == 200  # now cached in the process
    other = await register_app(rig.client)
    async with rig.client.post("/oauth/revoke", data={"client_id": other["client_id"],
                                                      "client_secret": other["client_secret"], "token": token}) as r:
        assert r.status == 200  # another app cannot revoke it, and learns nothing
    status, _ = await rig.api().get("/api/v1/apps/verify_credentials", headers=auth)
    assert status == 200
    async with rig.client.post("/oauth/revoke", data={"client_id": app["client_id"],
                                                      "client_secret": "wrong", "token": token}) as r:
        assert r.status == 401
    async with rig.client.post("/oauth/revoke", json={"client_id": app["client_id"],
                                                      "client_secret": app["client_secret"], "token": token}) as r:
        assert r.status == 200 and await r.json() == {}
    status, body = await rig.api().get("/api/v1/apps/verify_credentials", headers=auth)
    assert status == 401 and "error" in body
    rows = await rig.rows(Token, Token.token_hash == token_digest(token))
    assert rows[0].revoked_at is not None


# --- languages -------------------------------------------------------------------------------------

async def test_page_language_default_query_and_accept_language(rig):
    app = await register_app(rig.client)
    status, html = await open_authorize(rig.client, app)
    assert '<html lang="fr">' in html and "Mot de passe" in html
    status, html = await open_authorize(rig.client, app, lang="de")
    assert '<html lang="de">' in html and "Passwort" in html
    params = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": app["redirect_uris"][0]}
    async with rig.client.get("/oauth/authorize", params=params,
                              headers={"Accept-Language": "nl-BE,nl;q=0.9,en;q=0.8"}) as r:
        html = await r.text()
    assert '<html lang="nl">' in html and "Wachtwoord" in html
    async with rig.client.get("/oauth/authorize", params={**params, "lang": "es"},
                              headers={"Accept-Language": "es, en;q=0.5"}) as r:
        html = await r.text()
    assert '<html lang="en">' in html and "Password" in html


# --- a real client library -------------------------------------------------------------------------

async def test_mastodon_py_registers_and_logs_in_with_a_password(db_url, tmp_path, aiohttp_client):
    """Mastodon.py reads the metadata's token_endpoint, so the instance's own URL must be reachable."""
    import asyncio
    import socket

    from mastodon import Mastodon

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(db_url, tmp_path, domain=f"127.0.0.1:{port}").replace(instance={"scheme": "http"})
    rig = await Commune(await aiohttp_client(create_app(settings), server_kwargs={"port": port})).seed("alder")
    base = f"http://127.0.0.1:{port}"

    def log_in() -> tuple[str, str]:
        client_id, client_secret = Mastodon.create_app("Mastodon.py test", api_base_url=base,
                                                       scopes=["read", "write"])
        api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=base,
                       version_check_mode="none")
        return client_id, api.log_in("alder@example.org", cast.PASSWORD, scopes=["read", "write"], allow_http=True)

    client_id, token = await asyncio.to_thread(log_in)
    rows = await rig.rows(Token, Token.token_hash == token_digest(token))
    assert rows[0].actor_id == rig["alder"].actor_id and rows[0].scopes == "read write"
    apps = await rig.rows(Application, Application.client_id == client_id)
    assert apps[0].redirect_uris == OOB
