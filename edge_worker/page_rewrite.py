"""One HTML page's way through the edge: decoded origin bytes in, the filled page out, in the
client's content coding.

The page's charset must be known before the first fragment is written (fragments are UTF-8 and
are written in the page's charset, numeric character references for what it lacks), so when the
header does not name one, the first PRESCAN_BYTES are held for the prescan: about a kilobyte, once
per page. Everything after streams as it arrives.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge_worker.encodings import encoder_for
from edge_worker.html_inject import HtmlInjector, Resolver
from edge_worker.page_charset import PRESCAN_BYTES, PageCharset, needs_prescan, page_charset

_BOM_BYTES = 3


class PageRewriter:
    def __init__(self, resolve: Resolver, content_type: str, coding: str) -> None:
        self._resolve = resolve
        self._content_type = content_type
        self._prescan = needs_prescan(content_type)
        self._head = b""
        self._encoder = encoder_for(coding)
        self._injector: HtmlInjector | None = None
        self.charset: PageCharset | None = None  # known once the first bytes are read

    @property
    def replaced(self) -> list[str]:
        return self._injector.replaced if self._injector is not None else []

    @property
    def left_unfilled(self) -> list[str]:
        return self._injector.left_unfilled if self._injector is not None else []

    def feed(self, chunk: bytes) -> bytes:
        if self.charset is None:
            self._head += chunk
            if len(self._head) < (PRESCAN_BYTES if self._prescan else _BOM_BYTES):
                return b""
            chunk = self._decide()
        return self._encoder.chunk(self._injected(chunk))

    def finish(self) -> bytes:
        tail = self._decide() if self.charset is None else b""
        out = self._injected(tail)
        if self._injector is not None:
            out += self._injector.finish()
        return self._encoder.chunk(out) + self._encoder.finish()

    def _injected(self, data: bytes) -> bytes:
        return self._injector.feed(data) if self._injector is not None else data

    def _decide(self) -> bytes:
        """Settle the charset on the bytes held so far and hand them on."""
        charset = page_charset(self._content_type, self._head)
        self.charset = charset
        if charset.codec is not None:
            self._injector = HtmlInjector(_in_charset(self._resolve, charset.codec))
        head, self._head = self._head, b""
        return head


def _in_charset(resolve: Resolver, codec: str) -> Resolver:
    if codec == "utf-8":
        return resolve

    def resolve_in_charset(name: str, attributes: Mapping[str, str]) -> bytes | None:
        fragment = resolve(name, attributes)
        if fragment is None:
            return None
        return fragment.decode("utf-8", "replace").encode(codec, "xmlcharrefreplace")

    return resolve_in_charset
