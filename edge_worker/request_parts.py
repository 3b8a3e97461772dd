"""The parts of a request the decision path reads, taken straight from the ASGI scope.

Query strings and cookie headers repeat across requests (the same page, the same visitor), so their
parses are remembered in small bounded tables; Starlette parses them anew on every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import cookie_parser

_LIMIT = 4096
_queries: dict[bytes, dict[str, str]] = {}
_cookies: dict[tuple[str, str], str | None] = {}


def query_of(scope: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters (the first value of each); callers must not modify the result."""
    raw: bytes = scope.get("query_string", b"")
    found = _queries.get(raw)
    if found is None:
        found = {}
        for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            found.setdefault(key, value)
        if len(_queries) >= _LIMIT:
            _queries.clear()
        _queries[raw] = found
    return found


def headers_of(scope: Mapping[str, Any]) -> dict[str, str]:
    """Request headers by lowercase name (the last of repeated ones)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def cookie_of(headers: Mapping[str, str], name: str) -> str | None:
    header = headers.get("cookie")
    if not header:
        return None
    key = (header, name)
    if key in _cookies:
        return _cookies[key]
    value = cookie_parser(header).get(name)  # Starlette's own lenient parser, as request.cookies uses
    if len(_cookies) >= _LIMIT:
        _cookies.clear()
    _cookies[key] = value
    return value
