"""Every page of the corpus comes out as its expected bytes, for every content coding the origin may
use and every way the network may cut it (whole, 1-, 7-, 64- and 4 096-byte reads)."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from edge_worker.encodings import decoder_for
from edge_worker.page_rewrite import PageRewriter
from tests.page_corpus import PAGES, Page, resolve

CODINGS = ("identity", "gzip", "deflate", "deflate-raw", "br")
CHUNKINGS = (0, 1, 7, 64, 4096)  # 0: the whole body in one read


def encoded(body: bytes, coding: str) -> tuple[bytes, str]:
    """The body as an origin sends it, and the Content-Encoding it names."""
    if coding == "gzip":
        return gzip.compress(body), "gzip"
    if coding == "deflate":
        return zlib.compress(body), "deflate"
    if coding == "deflate-raw":  # what some servers send as "deflate": no zlib wrapper
        squeeze = zlib.compressobj(6, zlib.DEFLATED, -15)
        return squeeze.compress(body) + squeeze.flush(), "deflate"
    if coding == "br":
        return brotli.compress(body), "br"
    return body, ""


def rewritten(page: Page, coding: str, chunk: int, client_coding: str = "") -> tuple[bytes, PageRewriter]:
    wire, content_encoding = encoded(page.body, coding)
    decoder = decoder_for(content_encoding)
    rewriter = PageRewriter(resolve, page.content_type, client_coding)
    out = []
    step = chunk or len(wire) or 1
    for at in range(0, len(wire), step):
        for piece in decoder.pieces(wire[at : at + step]):
            out.append(rewriter.feed(piece))
    for piece in decoder.pieces(b"", final=True):
        out.append(rewriter.feed(piece))
    out.append(rewriter.finish())
    return b"".join(out), rewriter


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_the_page_comes_out_as_expected_for_every_chunking(page: Page, coding: str) -> None:
    for chunk in CHUNKINGS:
        out, rewriter = rewritten(page, coding, chunk)
        assert out == page.expected, (page.name, coding, chunk)
        assert tuple(rewriter.left_unfilled) == page.unfilled, (page.name, coding, chunk)


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_the_filled_page_is_reencoded_as_the_client_asked(page: Page) -> None:
    out, _ = rewritten(page, "gzip", 64, client_coding="br")
    assert brotli.decompress(out) == page.expected
    out, _ = rewritten(page, "br", 7, client_coding="gzip")
    assert gzip.decompress(out) == page.expected


def test_a_small_compressed_chunk_that_expands_a_lot_comes_out_in_bounded_pieces() -> None:
    bomb = gzip.compress(b"<p>" + b"x" * 20_000_000 + b"</p>")
    assert len(bomb) < 100_000
    sizes = [len(piece) for piece in decoder_for("gzip").pieces(bomb, final=True)]
    assert sum(sizes) == 20_000_007 and max(sizes) <= 256 * 1024
    sizes = [len(piece) for piece in decoder_for("br").pieces(brotli.compress(b"y" * 5_000_000))]
    assert sum(sizes) == 5_000_000 and max(sizes) <= 2 * 256 * 1024
