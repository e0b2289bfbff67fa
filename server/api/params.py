"""Request parameters as Mastodon apps send them, and pagination.

Apps send the same parameters as a query string, a form (urlencoded or multipart) or JSON, and use
Rails-style names: `types[]=a&types[]=b`, `fields_attributes[0][name]=...`, `poll[options][]=...`.
`read_params` folds them all into one nested structure; the `get_*` accessors validate and raise a
422 (400 for a body that cannot be parsed) naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import bindparam

from ..errors import ApiError

MAX_BODY = 1 << 20  # JSON and form bodies; media uploads have their own limit
_KEY = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")
_TRUE = {"true", "1", "on", "yes", "t"}
_FALSE = {"false", "0", "off", "no", "f", ""}


def _split_key(key: str) -> list[str]:
    """`a[b][]` -> ["a", "b", ""]."""
    parts: list[str] = []
    for bare, bracketed in _KEY.findall(key):
        parts.append(bare if bare else bracketed)
    return parts or [key]


def _assign(target: dict[str, Any], key: str, value: Any) -> None:
    """Put `value` at the place a Rails-style key names: `a[b][]`, `a[0][name]`, `a[]`."""
    parts = _split_key(key)
    node = target
    for index, part in enumerate(parts[:-1]):
        if parts[index + 1] == "" and index + 2 == len(parts):
            values = node.get(part)
            if not isinstance(values, list):
                values = node[part] = []
            values.append(value)
            return
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    if parts[-1] != "":
        node[parts[-1]] = value


def fold_pairs(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if "[" in key:
            _assign(data, key, value)
        else:
            data[key] = value
    return data


class Params:
    """Validated access to merged query and body parameters."""

    def __init__(self, data: dict[str, Any], files: dict[str, web.FileField] | None = None) -> None:
        self.data = data
        self.files = files or {}

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def get_str(self, name: str, default: str | None = None, *, required: bool = False,
                max_len: int | None = None, choices: Sequence[str] | None = None) -> str | None:
        value = self.data.get(name)
        if value is None or (value == "" and required):
            if required:
                raise ApiError(422, f"Validation failed: {name} is missing")
            return default
        if isinstance(value, bool):
            value = "true" if value else "false"
        if isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            raise ApiError(422, f"Validation failed: {name} must be a string")
        if max_len is not None and len(value) > max_len:
            raise ApiError(422, f"Validation failed: {name} is too long (maximum is {max_len} characters)")
        if choices is not None and value not in choices:
            raise ApiError(422, f"Validation failed: {name} must be one of {', '.join(choices)}")
        return value

    def get_bool(self, name: str, default: bool | None = False) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.lower() in _TRUE:
            return True
        if isinstance(value, str) and value.lower() in _FALSE:
            return False
        raise ApiError(422, f"Validation failed: {name} must be true or false")

    def get_int(self, name: str, default: int | None = None, *, minimum: int | None = None,
                maximum: int | None = None, clamp: bool = False) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise ApiError(422, f"Validation failed: {name} must be a number")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ApiError(422, f"Validation failed: {name} must be a number") from None
        if minimum is not None and number < minimum:
            if not clamp:
                raise ApiError(422, f"Validation failed: {name} must be at least {minimum}")
            number = minimum
        if maximum is not None and number > maximum:
            if not clamp:
                raise ApiError(422, f"Validation failed: {name} must be at most {maximum}")
            number = maximum
        return number

    def get_id(self, name: str, *, required: bool = False) -> int | None:
        value = self.get_str(name, required=required)
        if value is None:
            return None
        return parse_id(value, name)

    def get_list(self, name: str, *, max_items: int = 100) -> list[str]:
        value = self.data.get(name)
        if value is None:
            return []
        if isinstance(value, dict):  # a[0]=x&a[1]=y
            value = [value[k] for k in sorted(value, key=lambda k: (len(k), k))]
        if not isinstance(value, list):
            value = [value]
        if len(value) > max_items:
            raise ApiError(422, f"Validation failed: too many values for {name}")
        out = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise ApiError(422, f"Validation failed: {name} must be a list of strings")
            out.append(str(item))
        return out

    def get_dict(self, name: str) -> dict[str, Any] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, list):  # JSON arrays of objects, e.g. fields_attributes
            return {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, dict):
            raise ApiError(422, f"Validation failed: {name} must be an object")
        return value


def parse_id(value: str, name: str = "id") -> int:
    """Ids are decimal strings of 63-bit numbers; anything else cannot name a record."""
    if not value.isdigit() or len(value) > 19:
        raise ApiError(404, "Record not found")
    number = int(value)
    if number >= 1 << 63:
        raise ApiError(404, "Record not found")
    return number


def path_id(request: web.Request, name: str = "id") -> int:
    return parse_id(request.match_info[name], name)


async def read_params(request: web.Request) -> Params:
    """Query string, then the body (JSON, urlencoded or multipart) on top of it."""
    cached = request.get("params")
    if cached is not None:
        return cached
    data = fold_pairs(request.query.items())
    files: dict[str, web.FileField] = {}
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.can_read_body:
        ctype = request.content_type
        if ctype == "application/json" or ctype.endswith("+json"):
            raw = await request.read()
            if raw.strip():
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise ApiError(400, "The request body is not valid JSON") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "The request body must be a JSON object")
                data.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            try:
                form: MultiDictProxy[Any] = await request.post()
            except ValueError as exc:
                raise ApiError(400, f"The request body cannot be read: {exc}") from None
            pairs = []
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value
                else:
                    pairs.append((key, value))
            data.update(fold_pairs(pairs))
    _drop_nul(data)
    params = Params(data, files)
    request["params"] = params
    return params


def _drop_nul(data: dict[str, Any]) -> None:
    """Drop NUL characters from every name and text, in place: PostgreSQL text cannot hold them, and
    dropping them (not an error) is what the statuses API has always done."""
    stack: list[dict[str, Any] | list[Any]] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in [k for k in node if isinstance(k, str) and "\x00" in k]:
                node[key.replace("\x00", "")] = node.pop(key)
        for key, value in (node.items() if isinstance(node, dict) else enumerate(node)):
            if isinstance(value, str):
                if "\x00" in value:
                    node[key] = value.replace("\x00", "")  # type: ignore[index]
            elif isinstance(value, (dict, list)):
                stack.append(value)


@dataclass(frozen=True)
class Page:
    max_id: int | None
    since_id: int | None
    min_id: int | None
    limit: int

    @property
    def ascending(self) -> bool:
        """`min_id` asks for the page just after it (oldest first), returned newest first."""
        return self.min_id is not None and self.max_id is None

    def apply(self, query: Any, column: Any, *, bound: bool = False) -> Any:
        """Narrow `query` to this page (one row more than the limit, to know whether more exist).
        With `bound`, the bounds are bind parameters named as in `values()`: the statement then suits
        every page of the same `shape` and can be built once."""
        def value(name: str, given: int) -> Any:
            return bindparam(name) if bound else given

        if self.max_id is not None:
            query = query.where(column < value("max_id", self.max_id))
        if self.since_id is not None:
            query = query.where(column > value("since_id", self.since_id))
        if self.min_id is not None:
            query = query.where(column > value("min_id", self.min_id))
        order = column.asc() if self.ascending else column.desc()
        return query.order_by(order).limit(value("page_limit", self.limit + 1))

    @property
    def shape(self) -> tuple[bool, bool, bool]:
        """Which bounds the page has: pages of one shape share a `bound` statement."""
        return self.max_id is not None, self.since_id is not None, self.min_id is not None

    def values(self) -> dict[str, int]:
        """The bind parameters of a statement made by `apply(..., bound=True)`."""
        found = {"max_id": self.max_id, "since_id": self.since_id, "min_id": self.min_id}
        return {"page_limit": self.limit + 1, **{k: v for k, v in found.items() if v is not None}}

    def trim(self, rows: list[Any]) -> tuple[list[Any], bool]:
        """Cut the extra row asked for by `apply`; returns (rows newest first, whether more exist)."""
        more = len(rows) > self.limit
        rows = rows[: self.limit]
        if self.ascending:
            rows.reverse()
        return rows, more


def _page_id(params: Params, name: str) -> int | None:
    value = params.get_str(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 19:
        raise ApiError(422, f"Validation failed: {name} must be an id")
    return min(int(value), (1 << 63) - 1)


def get_page(params: Params, default: int = 20, maximum: int = 40) -> Page:
    return Page(
        max_id=_page_id(params, "max_id"),
        since_id=_page_id(params, "since_id"),
        min_id=_page_id(params, "min_id"),
        limit=params.get_int("limit", default, minimum=1, maximum=maximum, clamp=True) or default,
    )


def link_header(request: web.Request, base_url: str, page: Page, ids: list[int], more: bool) -> str | None:
    """`Link` with `next` first (toot's regex wants it so) and no `next` on the last page."""
    keep = [(k, v) for k, v in request.query.items() if k not in ("max_id", "min_id", "since_id")]
    url = base_url + request.path

    def build(extra: tuple[str, str]) -> str:
        from urllib.parse import urlencode

        return f"{url}?{urlencode(keep + [extra])}"

    links = []
    if ids:
        older_exist = more if not page.ascending else True
        if older_exist:
            links.append(f'<{build(("max_id", str(ids[-1])))}>; rel="next"')
        links.append(f'<{build(("min_id", str(ids[0])))}>; rel="prev"')
    elif page.min_id is not None or page.since_id is not None:
        links.append(f'<{build(("min_id", str(page.min_id or page.since_id)))}>; rel="prev"')
    return ", ".join(links) or None
