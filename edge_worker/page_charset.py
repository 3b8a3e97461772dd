"""The charset a page is read in, found as a browser finds it, so fragments can be written in it.

The HTML standard's order (encoding sniffing): a byte order mark, then the `charset` of the
`Content-Type` header, then a prescan of the first 1 024 bytes for `<meta charset>` or
`<meta http-equiv="content-type" content="…; charset=…">`. Labels are resolved with the WHATWG
Encoding standard's table (`webencodings`): `iso-8859-1` and `latin1` mean windows-1252, as in every
browser. A page that declares nothing gets fragments in ASCII with every other character as a
numeric character reference, which reads right whatever charset the browser then guesses.

UTF-16 and the stateful ISO-2022 charsets are not ASCII-compatible: such pages pass unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import webencodings

from edge_worker._html_scan import parse_start_tag

PRESCAN_BYTES = 1024
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16be"), (b"\xff\xfe", "utf-16le"))
_NOT_ASCII_COMPATIBLE = frozenset({"utf-16be", "utf-16le", "iso-2022-jp", "replacement"})
_CHARSET_IN_CONTENT = re.compile(
    rb"charset[\t\n\f\r ]*=[\t\n\f\r ]*(\"[^\"]*\"|'[^']*'|[^\t\n\f\r ;\"']+)", re.I
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*("[^"]*"|[^\s;"]+)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PageCharset:
    """`codec`: the Python codec to write fragments in, or None when the page cannot be rewritten;
    `source`: where it was found (bom, header, meta, none)."""

    name: str
    codec: str | None
    source: str


UNDECLARED = PageCharset("undeclared", "ascii", "none")


def header_charset(content_type: str) -> str:
    """The charset label of a Content-Type header value, or ""."""
    match = _HEADER_CHARSET.search(content_type)
    return match.group(1).strip("\"'").strip() if match else ""


def needs_prescan(content_type: str) -> bool:
    """Whether the page's first bytes decide its charset (no usable label in the header)."""
    return webencodings.lookup(header_charset(content_type)) is None


def page_charset(content_type: str, head: bytes) -> PageCharset:
    """The page's charset from its Content-Type header and its first bytes (at least PRESCAN_BYTES
    of them, or the whole page if shorter)."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return _charset(name, "bom")
    from_header = webencodings.lookup(header_charset(content_type))
    if from_header is not None:
        return _charset(from_header.name, "header")
    label = _prescan(head[:PRESCAN_BYTES])
    if label is None:
        return UNDECLARED
    name = label.name
    if name in ("utf-16be", "utf-16le"):
        name = "utf-8"  # a page that could be prescanned is not UTF-16, whatever it says
    elif name == "x-user-defined":
        name = "windows-1252"
    return _charset(name, "meta")


def _charset(name: str, source: str) -> PageCharset:
    if name in _NOT_ASCII_COMPATIBLE:
        return PageCharset(name, None, source)
    encoding = webencodings.lookup(name)
    assert encoding is not None  # every name here is one of the standard's own
    return PageCharset(name, encoding.codec_info.name, source)


def _prescan(head: bytes) -> webencodings.Encoding | None:
    """The HTML standard's prescan for a <meta> that declares the charset (comments and other tags
    skipped, attribute values read whole)."""
    if b"<meta" not in head.lower():
        return None  # most pages that declare nothing in their header say it in the first tags
    pos = 0
    end = len(head)
    while pos < end:
        lt = head.find(b"<", pos)
        if lt < 0:
            return None
        if head.startswith(b"<!--", lt):
            close = head.find(b"-->", lt + 2)  # `<!-->` ends a comment too
            if close < 0:
                return None
            pos = close + 3
            continue
        letter = head[lt + 1 : lt + 2].isalpha()
        if letter:
            tag = parse_start_tag(head, lt)
            if isinstance(tag, tuple):
                tag_end, name, attributes = tag
                if name == b"meta":
                    found = _meta_charset(attributes)
                    if found is not None:
                        return found
                pos = tag_end
                continue
        close = head.find(b">", lt + 1)
        if close < 0:
            return None
        pos = close + 1
    return None


def _meta_charset(attributes: dict[str, str]) -> webencodings.Encoding | None:
    if "charset" in attributes:
        return webencodings.lookup(attributes["charset"])
    if attributes.get("http-equiv", "").strip().lower() != "content-type":
        return None
    match = _CHARSET_IN_CONTENT.search(attributes.get("content", "").encode("utf-8", "replace"))
    if match is None:
        return None
    return webencodings.lookup(match.group(1).strip(b"\"'").decode("latin-1"))
