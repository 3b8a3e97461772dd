"""ASGI middleware counting requests by route and status, with bounded label values."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_worker import metrics
from edge_worker.hot_metrics import CounterChild

_ROUTES = frozenset({"/pz/decide", "/pz/collect", "/pz/pz.js", "/healthz", "/readyz", "/metrics"})


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str], CounterChild] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in _ROUTES else "origin"
        status = "500"

        async def send_and_count(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            counter = self._children.get((route, status))
            if counter is None:  # labels() checks and builds a key: once per pair is enough
                counter = self._children[(route, status)] = metrics.REQUESTS.labels(route, status)
            counter.inc()
