"""Streaming HTML injection: fill personalization placeholders while the page streams through.

Two placeholder forms are replaced by the fragment decided for their slot:

    <div data-pz-slot="NAME">original content</div>       (any element; nesting is followed)
    <!--pz:slot NAME-->original content<!--/pz:slot-->    (for templates that cannot change markup)

The injector is a small tokenizer, not a search for strings: a placeholder written inside a
comment, a `<script>` or `<style>`, a CDATA section of SVG or MathML, or an attribute value is text
and left alone. It works on bytes (the markup it looks for is ASCII, so any ASCII-compatible charset
works; page_rewrite puts fragments in the page's charset) and never holds the page: between chunks
it keeps at most an unfinished tag or comment opening (MAX_HELD_BYTES; a longer tag streams through
a LongStartTag) and, while a slot is being filled, that slot's old content (MAX_REPLACED_BYTES).
A placeholder split across chunks at any byte is found, and output leaves as each chunk is read.

Where a slot's old content ends is decided as a browser would: at the element's end tag (nesting
followed), an ancestor's end tag, a start tag that implicitly closes it (`<li>` after `<li>`), or
the end of the page. Whatever happens, no origin byte outside the old content is dropped: old
content that does not end within MAX_REPLACED_BYTES is given back unchanged and the slot is listed
in `left_unfilled`. When a slot has no fragment (the resolver returns None) its content stays.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from edge_worker._html_scan import ordinary_run_end, parse_start_tag
from edge_worker.html_tags import INCOMPLETE, RAW_TEXT, LongStartTag, parse_start_tag_in_python

MAX_HELD_BYTES = 16 * 1024  # a tag longer than this streams through a LongStartTag, not held
MAX_REPLACED_BYTES = 64 * 1024  # old content longer than this is given back, and the slot left unfilled
_COMMENT_LOOKAHEAD = 128  # enough to read `<!--pz:slot NAME-->` before deciding what a comment is
_VOID = frozenset(
    {
        b"area",
        b"base",
        b"br",
        b"col",
        b"embed",
        b"hr",
        b"img",
        b"input",
        b"link",
        b"meta",
        b"source",
        b"track",
        b"wbr",
    }
)

# Where each raw-text element ends: its end tag, any case.
RAW_TEXT_END = {
    name: re.compile(rb"</" + re.escape(name) + rb"[\t\n\f\r />]", re.IGNORECASE) for name in RAW_TEXT
}
_END_TAG = re.compile(rb"</([a-zA-Z][^\t\n\f\r />]*)[^>]*>")
_SLOT_OPEN = re.compile(rb"\s*pz:slot\s+([A-Za-z0-9_.:-]{1,64})\s*$")
_SLOT_CLOSE = re.compile(rb"\s*/pz:slot\s*$")

Resolver = Callable[[str, Mapping[str, str]], bytes | None]


# Start tags that close an open element of the given name without its end tag (HTML's implied end
# tags): `<li>a<li>b` is two items, so a slot on the first ends where the second begins.
_BLOCKS = frozenset(
    b"address article aside blockquote details div dl fieldset figcaption figure footer form h1 h2 h3 "
    b"h4 h5 h6 header hgroup hr main menu nav ol p pre section table ul".split()
)
_CLOSED_BY_START = {
    b"li": frozenset({b"li"}),
    b"dt": frozenset({b"dt", b"dd"}),
    b"dd": frozenset({b"dt", b"dd"}),
    b"p": _BLOCKS,
    b"option": frozenset({b"option", b"optgroup"}),
    b"td": frozenset({b"td", b"th", b"tr"}),
    b"th": frozenset({b"td", b"th", b"tr"}),
    b"tr": frozenset({b"tr"}),
}
_SCOPES = frozenset({b"ul", b"ol", b"dl", b"table", b"select"})  # inside one, those rules start over
_FOREIGN = frozenset({b"svg", b"math"})


class _Replacement:
    """A slot being filled: its fragment waits until the old content is known to end (its element's
    end tag, an ancestor's, or an element that implicitly closes it), and the old content is kept
    until then, so that it can be given back if it never ends within MAX_REPLACED_BYTES."""

    __slots__ = ("element", "fragment", "inner", "old", "old_bytes", "slot")

    def __init__(self, slot: str, element: bytes | None, fragment: bytes) -> None:
        self.slot = slot
        self.element = element  # None for the comment form
        self.fragment = fragment
        self.inner: list[bytes] = []  # elements opened inside the old content, still open
        self.old: list[bytes] = []
        self.old_bytes = 0


class HtmlInjector:
    """Feed it the page's bytes as they arrive; what it returns may leave at once.

    `replaced` lists the slots filled, `left_unfilled` those whose fragment could not be placed safely
    (old content that never ended within MAX_REPLACED_BYTES): their origin bytes pass unchanged."""

    ordinary_runs = True  # the C-level fast path over ordinary markup; tests compare with it off

    def __init__(self, resolve: Resolver) -> None:
        self._resolve = resolve
        self._held = b""
        self._raw_end: re.Pattern[bytes] | None = None  # inside <script> and friends
        self._opaque_end: bytes | None = None  # inside a long comment (-->) or a CDATA section (]]>)
        self._foreign_depth = 0  # inside <svg> or <math>
        self._long_tag: LongStartTag | None = None
        self._replacing: _Replacement | None = None
        self._out: list[bytes] = []
        self.replaced: list[str] = []
        self.left_unfilled: list[str] = []

    def feed(self, chunk: bytes) -> bytes:
        return self._run(self._held + chunk if self._held else chunk, final=False)

    def finish(self) -> bytes:
        return self._run(self._held, final=True)

    def _put(self, data: bytes) -> None:
        """Origin bytes: out, or kept with the old content of the slot being filled."""
        replacing = self._replacing
        if replacing is None:
            self._out.append(data)
            return
        replacing.old.append(data)
        replacing.old_bytes += len(data)
        if replacing.old_bytes > MAX_REPLACED_BYTES:
            self._give_back()

    def _give_back(self) -> None:
        replacing = self._replacing
        assert replacing is not None
        self._replacing = None
        self._out.extend(replacing.old)
        self.left_unfilled.append(replacing.slot)

    def _fill(self) -> None:
        replacing = self._replacing
        assert replacing is not None
        self._replacing = None
        self._out.append(replacing.fragment)
        self.replaced.append(replacing.slot)

    def _run(self, buf: bytes, final: bool) -> bytes:
        out: list[bytes] = []
        self._out = out
        pos = 0
        end = len(buf)
        while pos < end:
            if self._long_tag is not None:
                pos = self._read_long_tag(buf, pos)
                continue
            if self._raw_end is not None:
                match = self._raw_end.search(buf, pos)
                if match is None:
                    keep = 0 if final else min(end - pos, 16)  # a closing tag may be arriving
                    self._put(buf[pos : end - keep])
                    pos = end - keep
                    break
                self._put(buf[pos : match.start()])
                pos = match.start()
                self._raw_end = None
                continue
            if self._opaque_end is not None:
                close = buf.find(self._opaque_end, pos)
                if close < 0:
                    keep = 0 if final else min(end - pos, 2)
                    self._put(buf[pos : end - keep])
                    pos = end - keep
                    break
                self._put(buf[pos : close + 3])
                pos = close + 3
                self._opaque_end = None
                continue
            if self.ordinary_runs and self._replacing is None:
                # A run of ordinary markup ends at the end of buf or before a '<' the tokenizer reads.
                run_end = ordinary_run_end(buf, pos)
                if run_end > pos:
                    out.append(buf[pos:run_end])
                    pos = run_end
                    if pos == end or (not final and end - pos < MAX_HELD_BYTES and buf.find(b">", pos) < 0):
                        break  # nothing more can complete in this chunk: wait for the next one
            else:  # the tokenizer alone: always so through old content, to see every tag that may end it
                lt = buf.find(b"<", pos)
                if lt < 0:
                    self._put(buf[pos:])
                    pos = end
                    break
                self._put(buf[pos:lt])
                pos = lt
            step = self._construct(buf, pos, final)
            if step is None:  # unfinished: hold it for the next chunk
                break
            pos = step
        if final:
            self._put(buf[pos:])
            self._held = b""
            self._long_tag = None
            if self._replacing is not None:
                # Never closed and nothing closed it: everything to the end of the page was its content.
                self._fill()
        else:
            self._held = buf[pos:]
        self._out = []
        return b"".join(out)

    def _read_long_tag(self, buf: bytes, pos: int) -> int:
        tag = self._long_tag
        assert tag is not None
        stop = tag.feed(buf, pos)
        self._put(buf[pos:stop])
        if tag.done:
            self._long_tag = None
            self._start_tag(tag.lower_name, tag.attributes, b"")  # its bytes have passed already
        elif tag.failed:
            self._long_tag = None  # not a tag: what follows is read as text
        return stop

    def _construct(self, buf: bytes, pos: int, final: bool) -> int | None:
        """Handle what starts at buf[pos] == '<'; returns where to go on, or None to wait for more."""
        end = len(buf)
        if end - pos < 4 and not final and b"<!--".startswith(buf[pos:]):
            return None
        if buf.startswith(b"<!--", pos):
            return self._comment(buf, pos, final)
        if end - pos < 2:
            if final:
                self._put(buf[pos:])
                return end
            return None
        second = buf[pos + 1 : pos + 2]
        if second == b"/":
            match = _END_TAG.match(buf, pos)
            if match is None:
                return self._wait_or_text(buf, pos, final, b">" not in buf[pos:])
            self._end_tag(match.group(1).lower(), buf[pos : match.end()])
            return match.end()
        if second.isalpha():
            tag = parse_start_tag(buf, pos) if self.ordinary_runs else parse_start_tag_in_python(buf, pos)
            if tag == INCOMPLETE:
                if final or len(buf) - pos < MAX_HELD_BYTES:
                    return self._wait_or_text(buf, pos, final, True)
                self._long_tag = LongStartTag()  # too long to hold: read it as it streams through
                self._put(b"<")
                return pos + 1
            if not isinstance(tag, tuple):
                self._put(b"<")
                return pos + 1
            tag_end, name, attributes = tag
            self._start_tag(name, attributes, buf[pos:tag_end])
            return tag_end
        if self._foreign_depth and buf.startswith(b"<![CDATA[", pos):
            close = buf.find(b"]]>", pos + 9)
            if close < 0:  # text up to "]]>", however long: stream it
                self._opaque_end = b"]]>"
                self._put(b"<![CDATA[")
                return pos + 9
            self._put(buf[pos : close + 3])
            return close + 3
        if second in (b"!", b"?"):  # doctype, CDATA in HTML (a bogus comment), processing instruction
            close = buf.find(b">", pos)
            if close < 0:
                return self._wait_or_text(buf, pos, final, True)
            self._put(buf[pos : close + 1])
            return close + 1
        self._put(b"<")
        return pos + 1

    def _wait_or_text(self, buf: bytes, pos: int, final: bool, could_complete: bool) -> int | None:
        if could_complete and not final and len(buf) - pos < MAX_HELD_BYTES:
            return None
        self._put(b"<")  # never going to be a tag: it is text
        return pos + 1

    def _comment(self, buf: bytes, pos: int, final: bool) -> int | None:
        close = buf.find(b"-->", pos + 4)
        if close < 0:
            if not final and len(buf) - pos < _COMMENT_LOOKAHEAD:
                return None  # it may be a short pz marker: wait to see it whole
            self._opaque_end = b"-->"  # a long ordinary comment: stream it
            self._put(b"<!--")
            return pos + 4
        body = buf[pos + 4 : close]
        whole = buf[pos : close + 3]
        replacing = self._replacing
        if replacing is not None:
            if replacing.element is None and _SLOT_CLOSE.match(body):
                self._fill()
            self._put(whole)
            return close + 3
        self._out.append(whole)
        opening = _SLOT_OPEN.match(body)
        if opening is not None:
            name = opening.group(1).decode()
            fragment = self._resolve(name, {})
            if fragment is not None:
                self._replacing = _Replacement(name, None, fragment)
        return close + 3

    def _start_tag(self, name: bytes, attributes: dict[str, str], raw: bytes) -> None:
        if name in RAW_TEXT:
            self._raw_end = RAW_TEXT_END[name]
        elif name in _FOREIGN and not raw.endswith(b"/>"):
            self._foreign_depth += 1
        replacing = self._replacing
        if replacing is not None:
            closes = _CLOSED_BY_START.get(replacing.element or b"")
            if closes is not None and name in closes and not _SCOPES.intersection(replacing.inner):
                self._fill()  # this tag closes the slot's element: it is the page's again
            else:
                self._put(raw)
                if name not in _VOID:
                    replacing.inner.append(name)
                return
        self._out.append(raw)
        slot = attributes.get("data-pz-slot")
        if slot is None or name in _VOID or name in RAW_TEXT:
            return
        fragment = self._resolve(slot, attributes)
        if fragment is not None:
            self._replacing = _Replacement(slot, name, fragment)

    def _end_tag(self, name: bytes, raw: bytes) -> None:
        if name in _FOREIGN and self._foreign_depth:
            self._foreign_depth -= 1
        replacing = self._replacing
        if replacing is not None:
            inner = replacing.inner
            if name in inner:
                del inner[len(inner) - 1 - inner[::-1].index(name) :]
                self._put(raw)
                return
            if name == b"br":  # `</br>` is a <br> to a browser: it closes nothing
                self._put(raw)
                return
            # Its own end tag, an ancestor's, or a stray one: the fragment goes in now. A stray end
            # tag lets some old content show after the fragment; never a byte of the page is lost.
            self._fill()
        self._out.append(raw)
