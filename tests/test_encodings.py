"""Which coding a rewritten page goes back in, and that each encoder's stream decodes to the input."""

from __future__ import annotations

import zlib

import brotli
import pytest

from edge_worker.encodings import chosen_encoding, encoder_for


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
    stream = b"".join(pieces) + encoder.finish()
    decode = {"br": brotli.decompress, "gzip": lambda b: zlib.decompress(b, 31), "": lambda b: b}[coding]
    assert decode(stream) == b"".join(chunks)
