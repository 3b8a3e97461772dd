"""Content codings of rewritten pages: what to ask the origin for, and how to re-encode for a client.

An HTML page must be decoded to be rewritten, so the edge asks the origin only for codings it can
decode (br with the `brotli` package, gzip and deflate with zlib), in pieces of at most
MAX_PIECE_BYTES whatever a chunk expands to (a small compressed chunk can hold megabytes). What it sends back
follows the client's Accept-Encoding: br when accepted (smaller pages), else gzip, else nothing.
Every chunk is flushed as it is encoded, so bytes still leave as the page streams through.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli

ORIGIN_ACCEPT_ENCODING = "br, gzip, deflate"
DECODABLE = frozenset({"identity", "br", "gzip", "deflate"})
MAX_PIECE_BYTES = 256 * 1024  # a piece of a decoded body is at most twice this


class Encoder(Protocol):
    def chunk(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _Identity:
    def chunk(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Gzip:
    def __init__(self) -> None:
        self._z = zlib.compressobj(6, zlib.DEFLATED, 31)

    def chunk(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._z.flush()


class _Brotli:
    def __init__(self) -> None:
        self._b = brotli.Compressor(quality=5)  # a streaming quality: close to gzip's speed, smaller

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._b.process(data)) + bytes(self._b.flush())

    def finish(self) -> bytes:
        return bytes(self._b.finish())


def chosen_encoding(accept_encoding: str) -> str:
    """ "br", "gzip" or "" (identity) for a client's Accept-Encoding; q=0 refuses a coding."""
    accepted: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0  # a q we cannot read is not an acceptance
        accepted[name.strip().lower()] = q
    wildcard = accepted.get("*", 0.0)
    for coding in ("br", "gzip"):
        if accepted.get(coding, wildcard) > 0:
            return coding
    return ""


def encoder_for(coding: str) -> Encoder:
    if coding == "br":
        return _Brotli()
    return _Gzip() if coding == "gzip" else _Identity()


class Decoder(Protocol):
    def pieces(self, data: bytes, final: bool = False) -> Iterator[bytes]: ...


class _NoDecoding:
    def pieces(self, data: bytes, final: bool = False) -> Iterator[bytes]:
        if data:
            yield data


class _Inflate:
    """gzip, and deflate with or without its zlib wrapper (servers send both)."""

    def __init__(self, coding: str) -> None:
        self._wbits = 31 if coding == "gzip" else 15
        self._z = zlib.decompressobj(self._wbits)
        self._started = False

    def pieces(self, data: bytes, final: bool = False) -> Iterator[bytes]:
        if not self._started and data and self._wbits == 15:
            self._started = True
            if data[0] & 0x0F != 8:  # no zlib header: raw deflate
                self._z = zlib.decompressobj(-15)
        out = self._z.decompress(data, MAX_PIECE_BYTES) if data else b""
        while True:
            if out:
                yield out
            if len(out) < MAX_PIECE_BYTES and not self._z.unconsumed_tail:
                break
            out = self._z.decompress(self._z.unconsumed_tail, MAX_PIECE_BYTES)
        if final:
            rest = self._z.flush()
            if rest:
                yield rest


class _Unbrotli:
    def __init__(self) -> None:
        self._b = brotli.Decompressor()

    def pieces(self, data: bytes, final: bool = False) -> Iterator[bytes]:
        # The limit stops the output buffer growing (it may end up to twice as large); output still
        # pending comes out of further calls with no input.
        out = self._b.process(data, output_buffer_limit=MAX_PIECE_BYTES) if data else b""
        while out:
            yield out
            if len(out) < MAX_PIECE_BYTES or self._b.is_finished():
                break
            out = self._b.process(b"", output_buffer_limit=MAX_PIECE_BYTES)


def decoder_for(coding: str) -> Decoder:
    """The decoder for an origin's Content-Encoding (one of DECODABLE)."""
    coding = coding.strip().lower()
    if coding == "br":
        return _Unbrotli()
    if coding in ("gzip", "deflate"):
        return _Inflate(coding)
    return _NoDecoding()
