"""Pass-through reverse proxy to the origin, streaming both ways.

Client-supplied personalization headers (`x-pz-*`) are removed before forwarding, so an origin can
trust the ones the edge adds. HTML pages can be rewritten on the way (see `forward`); everything else
passes byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from edge_worker import metrics
from edge_worker.circuit_breaker import BreakerState, CircuitBreaker
from edge_worker.encodings import DECODABLE, ORIGIN_ACCEPT_ENCODING, chosen_encoding, encoder_for
from edge_worker.html_inject import HtmlInjector, Resolver
from schemas.bounded_body import read_bounded

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


def _spelled(name: str) -> str:
    """One spelling of a header name: servers that map headers to variables (CGI, many frameworks)
    read `X_PZ_SEGMENTS` as `X-PZ-SEGMENTS`, so both spellings are the same header to an origin."""
    return name.lower().replace("_", "-")


def forwardable_request_headers(request: Request, strip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop ones, those its `Connection` header names (RFC 9110
    §7.6.1), and any personalization header it sent itself, in any spelling."""
    stripped = {_spelled(name) for name in strip}
    named = {
        _spelled(token.strip())
        for value in request.headers.getlist("connection")
        for token in value.split(",")
    }
    forwarded = []
    for name, value in request.headers.items():
        spelled = _spelled(name)
        if (
            spelled in _HOP_BY_HOP
            or spelled in named
            or spelled.startswith(PZ_HEADER_PREFIX)
            or spelled in stripped
            or spelled == "content-length"
        ):
            continue
        forwarded.append((name, value))
    return forwarded


class OriginProxy:
    def __init__(
        self, origin_url: str, breaker: CircuitBreaker | None = None, fallback_html: bytes | None = None
    ) -> None:
        self._breaker = breaker or CircuitBreaker()
        metrics.ORIGIN_BREAKER_OPEN.set_function(
            lambda: float(self._breaker.state is not BreakerState.CLOSED)
        )
        self._fallback_html = fallback_html
        self._client = httpx.AsyncClient(
            base_url=origin_url,
            timeout=httpx.Timeout(30.0, connect=3.0),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def forward(
        self,
        request: Request,
        extra_headers: list[tuple[str, str]],
        inject: Callable[[], Resolver] | None = None,
        strip: tuple[str, ...] = (),
    ) -> Response:
        """Stream the origin's answer back; with `inject`, fill the placeholders of HTML pages."""
        body = b""
        if request.method not in ("GET", "HEAD"):
            read = await read_bounded(request, MAX_PROXY_BODY_BYTES)
            if read is None:
                reason = f"larger than {MAX_PROXY_BODY_BYTES} bytes"
                return JSONResponse(
                    {"error": "payload_too_large", "field": "body", "reason": reason}, status_code=413
                )
            body = read
        forwarded = forwardable_request_headers(request, strip) + extra_headers
        client_host = request.client.host if request.client else ""
        forwarded.append(("x-forwarded-for", client_host))
        may_inject = inject is not None and request.method == "GET" and _may_want_html(request)
        if may_inject:
            # Only what the edge can decode: an HTML body must be read to be rewritten.
            forwarded = [(n, v) for n, v in forwarded if n != "accept-encoding"]
            forwarded.append(("accept-encoding", ORIGIN_ACCEPT_ENCODING))
        upstream_request = self._client.build_request(
            request.method,
            request.url.path,
            params=request.url.query,
            headers=forwarded,
            content=body,
        )
        if not self._breaker.allow():
            metrics.ORIGIN_SHORT_CIRCUITED.inc()
            reason = "the origin failed repeatedly; not asking it again for a few seconds"
            return self._unavailable(request, 503, "origin_unavailable", reason)
        try:
            upstream = await self._client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            metrics.ORIGIN_ERRORS.inc()
            self._breaker.failed()
            return self._unavailable(request, 502, "origin_unreachable", str(exc) or type(exc).__name__)
        if upstream.status_code >= 500:
            self._breaker.failed()  # its answer still goes to the client as it is
        else:
            self._breaker.succeeded()
        headers = [
            (name, value) for name, value in upstream.headers.multi_items() if name.lower() not in _HOP_BY_HOP
        ]
        if may_inject and inject is not None and _injectable(upstream):
            coding = chosen_encoding(request.headers.get("accept-encoding", ""))
            return self._injected(upstream, headers, inject(), coding)
        metrics.PROXIED.labels("passthrough").inc()
        response = StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            background=BackgroundTask(upstream.aclose),
        )
        response.raw_headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        return response

    def _unavailable(self, request: Request, status: int, error: str, reason: str) -> Response:
        headers = {"Retry-After": str(self._breaker.retry_after_s()), "Cache-Control": "no-store"}
        if self._fallback_html is not None and _may_want_html(request):
            return Response(self._fallback_html, status_code=status, media_type="text/html", headers=headers)
        return JSONResponse({"error": error, "reason": reason}, status_code=status, headers=headers)

    def _injected(
        self, upstream: httpx.Response, headers: list[tuple[str, str]], resolve: Resolver, coding: str
    ) -> Response:
        metrics.PROXIED.labels("injected").inc()
        dropped = {"content-length", "content-encoding", "cache-control", "etag", "last-modified"}
        kept = [(n, v) for n, v in headers if n.lower() not in dropped]
        # A page filled for one visitor must not be cached for another, nor validated as the origin's.
        kept.append(("cache-control", "private, no-store"))
        kept.append(("vary", "Cookie, Accept-Encoding"))
        if coding:
            kept.append(("content-encoding", coding))

        async def rewritten() -> AsyncIterator[bytes]:
            injector = HtmlInjector(resolve)
            encoder = encoder_for(coding)
            async for chunk in upstream.aiter_bytes():  # decoded: the origin was asked for what we decode
                out = encoder.chunk(injector.feed(chunk))  # flushed: bytes leave now, not at the end
                if out:
                    yield out
            out = encoder.chunk(injector.finish()) + encoder.finish()
            if out:
                yield out
            for slot in injector.replaced:  # only slots the rules decided: as many labels as rule slots
                metrics.SLOTS_INJECTED.labels(slot).inc()

        response = StreamingResponse(
            rewritten(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
        )
        response.raw_headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in kept]
        return response


# Charsets in which ASCII markup is ASCII bytes: the injector works on bytes.
_ASCII_COMPATIBLE = re.compile(r"(utf-?8|us-ascii|ascii|iso-8859-\d+|windows-125\d|latin-?1)$", re.IGNORECASE)


def _may_want_html(request: Request) -> bool:
    accept = request.headers.get("accept", "*/*")
    return "text/html" in accept or "*/*" in accept


def _injectable(upstream: httpx.Response) -> bool:
    if upstream.status_code != 200:
        return False  # 206, 304, redirects and errors pass through untouched
    content_type = upstream.headers.get("content-type", "")
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() != "text/html":
        return False
    charset = params.partition("charset=")[2].strip().strip('"')
    if charset and not _ASCII_COMPATIBLE.match(charset):
        return False
    return upstream.headers.get("content-encoding", "identity").lower() in DECODABLE
