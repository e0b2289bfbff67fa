"""Walk the route table: every route outside DESIGN.md's open list refuses anonymous callers (401)
and tokens without its scope (403), before its handler runs."""

from voisinage.server.routes import ROUTES

OPEN_PREFIXES = ("/api/v1/instance", "/api/v2/instance", "/api/v1/apps", "/oauth/", "/.well-known/",
                 "/nodeinfo/", "/register", "/login", "/users/", "/villages/", "/inbox", "/actor", "/media/")


def _concrete(path: str) -> str:
    return (path.replace("{id}", "1234").replace("{hashtag}", "annonce").replace("{account_id}", "1234")
            .replace("{name}", "x").replace("{stream:[a-z/:]+}", "user"))


def test_only_routes_of_the_open_list_are_open():
    for route in ROUTES:
        if route.scope is None:
            assert route.path.startswith(OPEN_PREFIXES), f"{route.method} {route.path} is open"


async def test_every_protected_route_refuses_anonymous_and_scopeless_tokens(rig):
    push_only = await rig.token_for(rig["alder"].actor_id, scopes="push")
    checked = 0
    for route in ROUTES:
        if route.scope is None or route.scope == "push":
            continue
        path = _concrete(route.path)
        async with rig.client.request(route.method, path) as response:
            assert response.status == 401, f"{route.method} {path} anonymous -> {response.status}"
            assert "error" in await response.json()
        async with rig.client.request(route.method, path,
                                      headers={"Authorization": f"Bearer {push_only}"}) as response:
            assert response.status == 403, f"{route.method} {path} without scope -> {response.status}"
        checked += 1
    assert checked >= 30
