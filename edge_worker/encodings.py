"""Content codings of rewritten pages: what to ask the origin for, and how to re-encode for a client.

An HTML page must be decoded to be rewritten, so the edge asks the origin only for codings it can
decode (httpx decodes br with the `brotli` package, gzip and deflate with zlib). What it sends back
follows the client's Accept-Encoding: br when accepted (smaller pages), else gzip, else nothing.
Every chunk is flushed as it is encoded, so bytes still leave as the page streams through.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli

ORIGIN_ACCEPT_ENCODING = "br, gzip, deflate"
DECODABLE = frozenset({"identity", "br", "gzip", "deflate"})


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
