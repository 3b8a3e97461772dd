"""The reverse proxy to the origin, streaming both ways.

The origin client is our own (`origin_client`, on httptools): keep-alive pooled, bounded memory per
response, and several times faster than general clients. Headers follow `ForwardingPolicy`; HTML pages
can be rewritten on the way (`PageRewriter`); everything else passes byte for byte, undecoded.
The answer is sent straight to the ASGI server as it arrives: the first byte never waits for the
body, and memory per response is a chunk.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from edge_worker import metrics
from edge_worker.circuit_breaker import BreakerState, CircuitBreaker
from edge_worker.encodings import DECODABLE, ORIGIN_ACCEPT_ENCODING, chosen_encoding, decoder_for
from edge_worker.forwarding import ForwardingPolicy, shared_cacheable
from edge_worker.html_inject import Resolver
from edge_worker.origin_client import OriginError, OriginPool, OriginResponse, OriginTimeouts
from edge_worker.page_charset import header_charset
from edge_worker.page_rewrite import PageRewriter
from edge_worker.request_parts import headers_of
from schemas.bounded_body import read_bounded

MAX_PROXY_BODY_BYTES = 1024 * 1024
_INJECTED = metrics.PROXIED.labels("injected")  # labels() costs a lookup per call: once is enough
_PASSED_THROUGH = metrics.PROXIED.labels("passthrough")
# Dropped from a page the edge fills: it is no longer the origin's bytes, nor one cache entry for all.
_REWRITE_DROPS = frozenset(
    {b"content-length", b"content-encoding", b"cache-control", b"etag", b"last-modified"}
)


class OriginProxy:
    def __init__(
        self,
        policy: ForwardingPolicy,
        breaker: CircuitBreaker | None = None,
        fallback_html: bytes | None = None,
    ) -> None:
        self._policy = policy
        self._breaker = breaker or CircuitBreaker()
        metrics.ORIGIN_BREAKER_OPEN.set_function(
            lambda: float(self._breaker.state is not BreakerState.CLOSED)
        )
        self._fallback_html = fallback_html
        origin = urlsplit(policy.origin_url)
        if origin.scheme not in ("http", "https") or not origin.hostname:
            raise ValueError(f"the origin must be an http:// or https:// URL, not {policy.origin_url!r}")
        self._origin_host = origin.hostname
        self._tls = ssl.create_default_context() if origin.scheme == "https" else None
        self._origin_port = origin.port or (443 if self._tls is not None else 80)
        self._origin_path = origin.path.rstrip("/").encode("latin-1")
        self._pool: OriginPool | None = None

    def _client(self) -> OriginPool:
        if self._pool is None:  # made on the serving loop, at the first request
            self._pool = OriginPool(self._origin_host, self._origin_port, OriginTimeouts(), tls=self._tls)
        return self._pool

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def forward(
        self,
        request: Request,
        extra_headers: list[tuple[str, str]],
        inject: Callable[[], Resolver] | None = None,
        strip: frozenset[str] = frozenset(),
        identity_cookie: bytes | None = None,
        on_page: Callable[[], None] | None = None,
        headers_by_name: Mapping[str, str] | None = None,
    ) -> Response:
        """The origin's answer, streamed; with `inject`, HTML pages get their placeholders filled.
        `strip`: more header names (spelled, `forwarding.spelled`) a client may not send.
        `identity_cookie` is a Set-Cookie value for responses no shared cache may store; `on_page`
        is called when the answer is an HTML page (200, text/html), filled or not. `headers_by_name`:
        the request's headers as `request_parts.headers_of` reads them, if the caller has them."""
        body = b""
        if request.method not in ("GET", "HEAD"):
            read = await read_bounded(request, MAX_PROXY_BODY_BYTES)
            if read is None:
                reason = f"larger than {MAX_PROXY_BODY_BYTES} bytes"
                return JSONResponse(
                    {"error": "payload_too_large", "field": "body", "reason": reason}, status_code=413
                )
            body = read
        scope = request.scope
        by_name = headers_by_name if headers_by_name is not None else headers_of(scope)
        client = self._policy.client_side(
            by_name, scope["client"][0] if scope.get("client") else "", scope.get("scheme", "http")
        )
        forwarded = self._policy.request_headers(scope["headers"], client, strip) + extra_headers
        accept = by_name.get("accept", "*/*")
        method = request.method
        may_inject = inject is not None and method == "GET" and _may_want_html(accept)
        if may_inject:
            # Only what the edge can decode: an HTML body must be read to be rewritten.
            forwarded = [(n, v) for n, v in forwarded if n.lower() != "accept-encoding"]
            forwarded.append(("accept-encoding", ORIGIN_ACCEPT_ENCODING))
        if not self._breaker.allow():
            metrics.ORIGIN_SHORT_CIRCUITED.inc()
            reason = "the origin failed repeatedly; not asking it again for a few seconds"
            return self._unavailable(accept, 503, "origin_unavailable", reason)
        target = self._origin_path + (
            scope.get("raw_path") or scope["path"].encode()
        )  # as the client sent it
        query: bytes = scope.get("query_string", b"")
        if query:
            target += b"?" + query
        wire_headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in forwarded]
        try:
            upstream = await self._client().request(method.encode(), target, wire_headers, body)
        except OriginError as exc:
            metrics.ORIGIN_ERRORS.inc()
            self._breaker.failed()
            return self._unavailable(accept, 502, "origin_unreachable", str(exc))
        if upstream.status >= 500:
            self._breaker.failed()  # its answer still goes to the client as it is
        else:
            self._breaker.succeeded()
        headers = self._policy.response_headers(upstream.headers, client)
        if on_page is not None and method == "GET" and _is_page(upstream):
            on_page()
        if may_inject and inject is not None and _injectable(upstream):
            _INJECTED.inc()
            coding = chosen_encoding(by_name.get("accept-encoding", ""))
            kept = [(n, v) for n, v in headers if n not in _REWRITE_DROPS]
            # A page filled for one visitor must not be cached for another, nor validated as the origin's.
            kept += [(b"cache-control", b"private, no-store"), (b"vary", b"Cookie, Accept-Encoding")]
            if coding:
                kept.append((b"content-encoding", coding.encode()))
            if identity_cookie is not None:
                kept.append((b"set-cookie", identity_cookie))
            rewriter = PageRewriter(inject(), upstream.header(b"content-type"), coding)
            return _OriginAnswer(upstream, upstream.status, kept, rewriter)
        _PASSED_THROUGH.inc()
        if identity_cookie is not None and not shared_cacheable(headers, upstream.status):
            headers.append((b"set-cookie", identity_cookie))
        return _OriginAnswer(upstream, upstream.status, headers, None)

    def _unavailable(self, accept: str, status: int, error: str, reason: str) -> Response:
        headers = {"Retry-After": str(self._breaker.retry_after_s()), "Cache-Control": "no-store"}
        if self._fallback_html is not None and _may_want_html(accept):
            return Response(self._fallback_html, status_code=status, media_type="text/html", headers=headers)
        return JSONResponse({"error": error, "reason": reason}, status_code=status, headers=headers)


class _OriginAnswer(Response):
    """The origin's response sent on as it arrives; the connection goes back to the pool (or is
    closed, if the client left early) when it ends."""

    def __init__(
        self,
        upstream: OriginResponse,
        status: int,
        headers: list[tuple[bytes, bytes]],
        rewriter: PageRewriter | None,
    ) -> None:
        self.status_code = status
        self.raw_headers = headers
        self._upstream = upstream
        self._rewriter = rewriter
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        upstream = self._upstream
        rewriter = self._rewriter
        finished = False
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            if scope.get("method") == "HEAD":
                finished = True
                await send({"type": "http.response.body", "body": b""})
                return
            if rewriter is not None:
                await self._rewritten(upstream, rewriter, send)
            else:
                async for chunk in upstream.body():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            finished = True
        except OriginError as exc:
            # The origin broke off mid-body: the client must see a broken response, not a short one.
            metrics.ORIGIN_ERRORS.inc()
            raise OriginBrokeOff(str(exc)) from exc
        finally:
            if finished:
                upstream.release()
            else:
                upstream.close()

    @staticmethod
    async def _rewritten(upstream: OriginResponse, rewriter: PageRewriter, send: Send) -> None:
        decoder = decoder_for(upstream.header(b"content-encoding"))
        async for chunk in upstream.body():
            for piece in decoder.pieces(chunk):
                out = rewriter.feed(piece)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        out = b"".join(rewriter.feed(piece) for piece in decoder.pieces(b"", final=True)) + rewriter.finish()
        if out:
            await send({"type": "http.response.body", "body": out, "more_body": True})
        for slot in rewriter.replaced:  # only slots the rules decided: as many labels as rule slots
            metrics.SLOTS_INJECTED.labels(slot).inc()
        for slot in rewriter.left_unfilled:
            metrics.SLOTS_LEFT_UNFILLED.labels(slot).inc()
        if rewriter.charset is not None and rewriter.charset.codec is None:
            metrics.PAGES_NOT_REWRITTEN.labels("charset").inc()


class OriginBrokeOff(Exception):
    """The origin's body ended early; the ASGI server then aborts the client's response."""


def _may_want_html(accept: str) -> bool:
    return "text/html" in accept or "*/*" in accept


def _is_page(upstream: OriginResponse) -> bool:
    content_type = upstream.header(b"content-type")
    return upstream.status == 200 and content_type.partition(";")[0].strip().lower() == "text/html"


def _injectable(upstream: OriginResponse) -> bool:
    if not _is_page(upstream):
        return False  # 206, 304, redirects, errors and anything but HTML pass through untouched
    content_type = upstream.header(b"content-type")
    charset = header_charset(content_type)
    if charset and charset.lower().replace("_", "-") in ("utf-16", "utf-16le", "utf-16be"):
        return False  # not ASCII-compatible: the page passes as it is
    return (upstream.header(b"content-encoding") or "identity").strip().lower() in DECODABLE
