"""Parse untrusted JSON with bounds: a byte cap, a nesting depth cap and an element-count cap.

orjson parses fast in C but has its own (deep) recursion limit and no element bound, so the raw bytes
are first scanned once, outside strings, counting nesting depth and separators. A body that passes is
then parsed by orjson; memory stays bounded by the byte cap. [Takahē JSONLD_MAX_SIZE; Mastodon 1 MB]
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ELEMENTS = 50_000

_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")
_COMMA = ord(",")


class JsonRefused(ValueError):
    """The body is too big, too deep, has too many elements, or is not a JSON object."""


def check_shape(raw: bytes, *, max_depth: int = MAX_DEPTH, max_elements: int = MAX_ELEMENTS) -> None:
    """Raise JsonRefused when `raw` nests deeper than `max_depth` or holds more than `max_elements`."""
    depth = 0
    elements = 0
    in_string = False
    escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
            continue
        if byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            elements += 1
            if depth > max_depth:
                raise JsonRefused(f"JSON nested deeper than {max_depth}")
        elif byte in _CLOSE:
            depth -= 1
        elif byte == _COMMA:
            elements += 1
            if elements > max_elements:
                raise JsonRefused(f"JSON has more than {max_elements} elements")


def has_nul_escape(raw: bytes) -> bool:
    """Whether a JSON text escapes a NUL character (`\\u0000` after an even run of backslashes)."""
    start = raw.find(b"\\u0000")
    while start != -1:
        before = start
        while before > 0 and raw[before - 1] == _BACKSLASH:
            before -= 1
        if (start - before) % 2 == 0:
            return True
        start = raw.find(b"\\u0000", start + 1)
    return False


def parse_object(raw: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
                 max_elements: int = MAX_ELEMENTS) -> dict[str, Any]:
    """Parse `raw` as one JSON object within the bounds, or raise JsonRefused."""
    if len(raw) > max_bytes:
        raise JsonRefused(f"body is over {max_bytes} bytes")
    check_shape(raw, max_depth=max_depth, max_elements=max_elements)
    if has_nul_escape(raw):  # no peer sends one, and PostgreSQL cannot store it in a text
        raise JsonRefused("JSON string with a NUL character")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise JsonRefused(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise JsonRefused("not a JSON object")
    return document
