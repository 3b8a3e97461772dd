"""Which coding a rewritten page goes back in, and that each encoder's stream decodes to the input."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import brotli
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_worker.encodings import chosen_encoding, encoder_for
from edge_worker.html_inject import HtmlInjector
from tests.test_html_inject import fragments, inject, resolve


def compressed(coding: str, data: bytes) -> bytes:
    if coding == "br":
        return bytes(brotli.compress(data))
    if coding in ("gzip", "deflate"):
        return zlib.compress(data, wbits=31 if coding == "gzip" else 15)
    return data


def decoded(coding: str, data: bytes) -> bytes:
    if coding == "br":
        return bytes(brotli.decompress(data))
    return zlib.decompress(data, 31) if coding == "gzip" else data


def streaming_decoder(coding: str) -> Callable[[bytes], bytes]:
    if coding == "br":
        decompressor = brotli.Decompressor()
        return lambda piece: bytes(decompressor.process(piece))
    if coding in ("gzip", "deflate"):
        return zlib.decompressobj(31 if coding == "gzip" else 15).decompress
    return lambda piece: piece


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("gzip;q=0, br;q=0", ""),
        ("identity", ""),
        ("", ""),
        ("*", "br"),
        ("*;q=0.1, br;q=0", "gzip"),
        ("GZIP ; q=0.5", "gzip"),
        ("br;q=nonsense, gzip", "gzip"),
    ],
)
def test_the_clients_accept_encoding_decides(accept: str, chosen: str) -> None:
    assert chosen_encoding(accept) == chosen


@pytest.mark.parametrize("coding", ["br", "gzip", ""])
def test_every_chunk_is_flushed_and_the_stream_decodes_to_the_input(coding: str) -> None:
    encoder = encoder_for(coding)
    chunks = [b"<html><body>", b"<p>" + b"x" * 5000 + b"</p>", b"", b"</body></html>"]
    pieces = [encoder.chunk(c) for c in chunks]
    assert all(pieces[:2])  # something leaves with each non-empty chunk: nothing waits for the end
    assert decoded(coding, b"".join(pieces) + encoder.finish()) == b"".join(chunks)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(fragments, max_size=30),
    st.sampled_from(["br", "gzip", "deflate", ""]),
    st.sampled_from(["br", "gzip", ""]),
    st.lists(st.integers(0, 5000), max_size=10),
)
def test_a_compressed_page_split_anywhere_comes_out_as_the_whole_page_does(
    parts: list[bytes], origin_coding: str, client_coding: str, cuts: list[int]
) -> None:
    """Origin coding → split at any byte → decoded piece by piece → filled → re-encoded for the client:
    decoding what the client gets gives what the whole, plain page gives."""
    page = b"".join(parts)
    sent = compressed(origin_coding, page)
    decoder = streaming_decoder(origin_coding)
    injector = HtmlInjector(resolve)
    encoder = encoder_for(client_coding)
    out = []
    last = 0
    for cut in [*sorted({c % (len(sent) + 1) for c in cuts}), len(sent)]:
        out.append(encoder.chunk(injector.feed(decoder(sent[last:cut]))))
        last = cut
    out.append(encoder.chunk(injector.finish()) + encoder.finish())
    assert decoded(client_coding, b"".join(out)) == inject(page)
