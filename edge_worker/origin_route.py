"""The shortest way from the ASGI server to the origin proxy.

Requests for the origin are most of an edge's traffic, and Starlette's router and exception layers
cost about a quarter of a proxied request's time (py-spy, `pz bench proxy`). They are the edge's
catch-all route anyway, so this middleware hands them to the same handler directly; /pz/*, the
health checks and /metrics go through Starlette as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

_EDGE_OWN = frozenset({"/healthz", "/readyz", "/metrics"})
# What the catch-all route forwards; anything else (TRACE, CONNECT, …) gets Starlette's 405.
PROXIED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_PROXIED = frozenset(PROXIED_METHODS)


class OriginFirst:
    def __init__(self, app: ASGIApp, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.app = app
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path.startswith("/pz/")
            or path in _EDGE_OWN
            or scope.get("method") not in _PROXIED
        ):
            await self.app(scope, receive, send)
            return
        response = await self._handler(Request(scope, receive))
        await response(scope, receive, send)
