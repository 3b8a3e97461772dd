"""The page corpus through the real proxy path: an origin on a socket sending each page in its
content coding and cut into chunks on the wire, the edge's origin client, decoder, rewriter and
response. What the browser gets must be the corpus's expected bytes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge_worker.forwarding import ForwardingPolicy
from edge_worker.proxy import OriginProxy
from tests.page_corpus import PAGES, Page, resolve
from tests.test_page_corpus import encoded

WIRE_CHUNKS = (0, 7, 4096)  # 0: the whole body in one write


@contextlib.asynccontextmanager
async def corpus_origin() -> AsyncIterator[int]:
    """Serves /<page>/<coding>/<chunk>: the page encoded, in chunked transfer coding, one chunk per
    write of `chunk` bytes, each flushed."""
    by_name = {page.name: page for page in PAGES}
    writers: list[asyncio.StreamWriter] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                _, target, _ = head.split(b" ", 2)
                name, coding, chunk = target.decode().strip("/").split("/")
                page = by_name[name]
                body, content_encoding = encoded(page.body, coding)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
                    % page.content_type.encode()
                    + (b"Content-Encoding: %s\r\n" % content_encoding.encode() if content_encoding else b"")
                    + b"\r\n"
                )
                step = int(chunk) or len(body) or 1
                for at in range(0, len(body), step):
                    piece = body[at : at + step]
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await asyncio.sleep(0)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("coding", ["identity", "gzip", "deflate-raw", "br"])
async def test_every_page_of_the_corpus_comes_through_the_proxy_as_expected(coding: str) -> None:
    async with corpus_origin() as port:
        proxy = OriginProxy(ForwardingPolicy(f"http://127.0.0.1:{port}"))

        async def edge(request: Request) -> Response:
            return await proxy.forward(request, [], inject=lambda: resolve)

        app = Starlette(routes=[Route("/{path:path}", edge)])
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
                for page in PAGES:
                    for chunk in WIRE_CHUNKS:
                        answer = await client.get(
                            f"/{page.name}/{coding}/{chunk}",
                            headers={"accept": "text/html", "accept-encoding": "identity"},
                        )
                        assert answer.status_code == 200, (page.name, chunk)
                        assert answer.content == expected_for(page), (page.name, coding, chunk)
        finally:
            await proxy.aclose()


def expected_for(page: Page) -> bytes:
    return page.expected
