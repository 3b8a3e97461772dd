"""ASGI middleware counting requests by route and status, with bounded label values, and giving
each response one Date: the server's own is off, so a proxied response keeps the origin's alone."""

from __future__ import annotations

import time
from email.utils import formatdate

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
                headers = message.get("headers")
                if headers is None or not any(key == b"date" for key, _ in headers):
                    message["headers"] = [*(headers or ()), (b"date", _http_date())]
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            counter = self._children.get((route, status))
            if counter is None:  # labels() checks and builds a key: once per pair is enough
                counter = self._children[(route, status)] = metrics.REQUESTS.labels(route, status)
            counter.inc()


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    """Now as an HTTP date, formatted once a second."""
    global _date_cache  # noqa: PLW0603 - one process-wide cache of one value
    now_s = int(time.time())
    if _date_cache[0] != now_s:
        _date_cache = (now_s, formatdate(now_s, usegmt=True).encode())
    return _date_cache[1]
