"""Errors answered as Mastodon does: `{"error": "..."}` with the status code."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> web.Response:
        body = {"error": self.message, **self.extra}
        return web.Response(status=self.status, body=orjson.dumps(body), content_type="application/json",
                            headers=self.headers)


def not_found(what: str = "Record not found") -> ApiError:
    return ApiError(404, what)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, f"Validation failed: {message}")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json",
                        headers=headers)
