"""Pass-through reverse proxy to the origin, streaming both ways.

Client-supplied personalization headers (`x-pz-*`) are removed before forwarding, so an origin can
trust the ones the edge adds. HTML injection builds on this later; today bodies pass unchanged.
"""

from __future__ import annotations

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from edge_worker.bounded_body import read_bounded

# RFC 9110 §7.6.1 hop-by-hop headers, plus host (the client sets it for the origin).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
PZ_HEADER_PREFIX = "x-pz-"
MAX_PROXY_BODY_BYTES = 1024 * 1024


def forwardable_request_headers(request: Request) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in request.headers.items()
        if name not in _HOP_BY_HOP and not name.startswith(PZ_HEADER_PREFIX) and name != "content-length"
    ]


class OriginProxy:
    def __init__(self, origin_url: str) -> None:
        self._client = httpx.AsyncClient(
            base_url=origin_url,
            timeout=httpx.Timeout(30.0, connect=3.0),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def forward(self, request: Request, extra_headers: list[tuple[str, str]]) -> Response:
        body = b""
        if request.method not in ("GET", "HEAD"):
            read = await read_bounded(request, MAX_PROXY_BODY_BYTES)
            if read is None:
                reason = f"larger than {MAX_PROXY_BODY_BYTES} bytes"
                return JSONResponse(
                    {"error": "payload_too_large", "field": "body", "reason": reason}, status_code=413
                )
            body = read
        forwarded = forwardable_request_headers(request) + extra_headers
        client_host = request.client.host if request.client else ""
        forwarded.append(("x-forwarded-for", client_host))
        upstream_request = self._client.build_request(
            request.method,
            request.url.path,
            params=request.url.query,
            headers=forwarded,
            content=body,
        )
        try:
            upstream = await self._client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            return JSONResponse(
                {"error": "origin_unreachable", "reason": str(exc) or type(exc).__name__}, status_code=502
            )
        headers = [
            (name, value) for name, value in upstream.headers.multi_items() if name.lower() not in _HOP_BY_HOP
        ]
        response = StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            background=BackgroundTask(upstream.aclose),
        )
        response.raw_headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        return response
