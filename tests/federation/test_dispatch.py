"""The handler registry and the bounded JSON parser (no database)."""

from __future__ import annotations

import pytest

from voisinage.federation import dispatch, jsonguard
from voisinage.federation.handlers import follow, like, note


def test_lookup_prefers_the_object_type_then_falls_back() -> None:
    undo_follow = {"type": "Undo", "object": {"type": "Follow", "id": "https://b.test/f/1"}}
    undo_bare = {"type": "Undo", "object": "https://b.test/f/1"}
    assert dispatch.find_handler(undo_follow) is follow.on_undo_follow
    assert dispatch.find_handler(undo_bare) is like.on_undo
    assert dispatch.find_handler({"type": "Create", "object": {"type": "Note"}}) is note.on_create
    assert dispatch.find_handler({"type": "Move", "object": "https://b.test/u/x"}) is None


def test_registering_twice_is_an_error() -> None:
    with pytest.raises(dispatch.DuplicateHandler):
        dispatch.handles("Follow")(follow.on_follow)


@pytest.mark.parametrize("raw", [
    b"[" * 65 + b"]" * 65,
    b'{"a": [' + b",".join([b"1"] * 60_000) + b"]}",
    b"[1, 2]",  # not an object
    b'{"a": ',  # not JSON
    b"x" * (jsonguard.MAX_BYTES + 1),
])
def test_jsonguard_refuses(raw: bytes) -> None:
    with pytest.raises(jsonguard.JsonRefused):
        jsonguard.parse_object(raw)


def test_jsonguard_ignores_brackets_inside_strings() -> None:
    text = '{"content": "' + "[" * 500 + '\\"{"}'
    assert jsonguard.parse_object(text.encode())["content"].startswith("[[[")
