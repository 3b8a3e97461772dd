"""The demo origin compresses like real ones: br for clients that take it (the edge asks for it), gzip
for the others, so that the edge's decode, inject and re-encode paths are the ones exercised."""

from __future__ import annotations

import brotli
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_MINIMUM_SIZE = 500


def _takes_br(scope: Scope) -> bool:
    codings = Headers(scope=scope).get("accept-encoding", "")
    return any(part.split(";")[0].strip().lower() == "br" for part in codings.split(","))


class Compression:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._gzip = GZipMiddleware(app, minimum_size=_MINIMUM_SIZE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD" or not _takes_br(scope):
            await self._gzip(scope, receive, send)
            return
        start: Message = {}
        body = bytearray()

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            headers = MutableHeaders(raw=start["headers"])
            payload = bytes(body)
            if len(payload) >= _MINIMUM_SIZE and "content-encoding" not in headers:
                payload = brotli.compress(payload, quality=5)
                headers["content-encoding"] = "br"
                headers.add_vary_header("Accept-Encoding")
            headers["content-length"] = str(len(payload))
            await send(start)
            await send({"type": "http.response.body", "body": payload})

        await self._app(scope, receive, buffered)
