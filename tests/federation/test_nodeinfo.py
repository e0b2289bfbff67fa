"""NodeInfo discovery and the 2.0 / 2.1 documents."""

from __future__ import annotations

from typing import Any


async def test_discovery_links(commune: Any) -> None:
    response = await commune.client.get("/.well-known/nodeinfo")
    assert response.status == 200
    links = (await response.json())["links"]
    assert links == [
        {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "https://a.test/nodeinfo/2.0"},
        {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": "https://a.test/nodeinfo/2.1"},
    ]


async def test_documents(rig: Any) -> None:
    status, _ = await rig.api("alder").post("/api/v1/statuses", json={"status": "hello", "visibility": "public"})
    assert status == 200
    for version in ("2.0", "2.1"):
        response = await rig.client.get(f"/nodeinfo/{version}")
        assert response.status == 200
        assert f"schema/{version}" in response.headers["Content-Type"]
        doc = await response.json(content_type=None)
        assert doc["version"] == version
        assert doc["software"]["name"] == "voisinage" and doc["software"]["version"]
        assert ("repository" in doc["software"]) is (version == "2.1")
        assert doc["protocols"] == ["activitypub"]
        assert doc["openRegistrations"] is False
        assert doc["usage"]["users"]["total"] == 4
        assert doc["usage"]["users"]["activeMonth"] == 1  # alder posted; nobody logged in
        assert doc["usage"]["users"]["activeHalfyear"] == 1
        assert doc["usage"]["localPosts"] == 1
        assert doc["metadata"]["nodeName"] == "a.test"
        assert {"slug": "north", "name": "Nord"} in doc["metadata"]["villages"]
        assert len(doc["metadata"]["villages"]) == 3


async def test_unknown_version(commune: Any) -> None:
    response = await commune.client.get("/nodeinfo/1.0")
    assert response.status == 404
