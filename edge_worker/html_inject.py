"""Streaming HTML injection: fill personalization placeholders while the page streams through.

Two placeholder forms are replaced by the fragment decided for their slot:

    <div data-pz-slot="NAME">original content</div>       (any element; nesting is followed)
    <!--pz:slot NAME-->original content<!--/pz:slot-->    (for templates that cannot change markup)

The injector is a small tokenizer, not a search for strings: a placeholder written inside a
comment, a `<script>` or `<style>`, or an attribute value is text and left alone. It works on bytes
(the markup it looks for is ASCII, so any ASCII-compatible charset works), holds back at most an
unfinished tag or comment opening between chunks (bounded by MAX_HELD_BYTES), and never the page:
a placeholder split across chunks at any byte is found, and output leaves as each chunk is read.

When a slot has no fragment (the resolver returns None) its original content stays.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from edge_worker._html_scan import ordinary_run_end, parse_start_tag, skip_replaced

MAX_HELD_BYTES = 16 * 1024  # a tag longer than this is passed through as text, not held
_COMMENT_LOOKAHEAD = 128  # enough to read `<!--pz:slot NAME-->` before deciding what a comment is
_RAW_TEXT = frozenset(
    {b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed", b"noframes"}
)
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
_RAW_TEXT_END = {
    name: re.compile(rb"</" + re.escape(name) + rb"[\t\n\f\r />]", re.IGNORECASE) for name in _RAW_TEXT
}
_TAG_NAME = re.compile(rb"[a-zA-Z][^\t\n\f\r />]*")
_ATTRIBUTE = re.compile(
    rb"[\t\n\f\r /]*([^\t\n\f\r />\"'=][^\t\n\f\r />=]*)"
    rb"(?:[\t\n\f\r ]*=[\t\n\f\r ]*(\"[^\"]*\"|'[^']*'|[^\t\n\f\r >\"'][^\t\n\f\r >]*))?"
)
_TAG_CLOSE = re.compile(rb"[\t\n\f\r /]*>")
_END_TAG = re.compile(rb"</([a-zA-Z][^\t\n\f\r />]*)[^>]*>")
# Outside placeholders almost everything is text, ordinary tags, end tags, comments, raw-text
# elements and doctypes, which pass unchanged. This matches the longest run of exactly that: a start
# tag is ordinary when it does not open raw text (script, style, …) and has no data-pz-slot attribute;
# a raw-text element passes whole, up to its end tag, when that end tag has arrived; the run stops
# before anything else (a marker comment, a placeholder, an unfinished construct), which the tokenizer
# below then handles one construct at a time. Start tags: _TAG_NAME, _ATTRIBUTE and _TAG_CLOSE,
# written atomic and possessive (linear time whatever the origin sends: no ReDoS).
# The injector runs the same scan in C (edge_worker/_html_scan.c, ~20x faster); these expressions are
# its specification, and tests hold the two equal.
_RAW_TEXT_NAMES = b"|".join(sorted(_RAW_TEXT))
_ANY_ATTRIBUTES = (
    rb"(?>[\t\n\f\r /]*+[^\t\n\f\r />\"'=][^\t\n\f\r />=]*+"
    rb"(?>[\t\n\f\r ]*+=[\t\n\f\r ]*+(?>\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'][^\t\n\f\r >]*+))?)*+"
)


def ordinary_run(stop: bytes | None = None) -> re.Pattern[bytes]:
    """The run of ordinary markup; with `stop` (a lower-case tag name), the run also stops before any
    start or end tag of that name (replacing an element's old content, the injector must see those)."""
    pattern = _ORDINARY_RUNS.get(stop)
    if pattern is None:
        not_stop = rb"(?!(?i:" + re.escape(stop) + rb")[\t\n\f\r />])" if stop else b""
        raw_text_elements = b"|".join(  # one alternative per name: re has no use for a group here
            rb"<"
            + not_stop
            + rb"(?i:"
            + name
            + rb")(?=[\t\n\f\r />])"
            + _ANY_ATTRIBUTES
            + rb"[\t\n\f\r /]*+/?>"
            rb"(?>[^<]++|<(?!/(?i:" + name + rb")[\t\n\f\r />]))*+(?=</(?i:" + name + rb")[\t\n\f\r />])"
            for name in sorted(_RAW_TEXT)
        )
        pattern = re.compile(
            rb"(?>[^<]++"
            rb"|<" + not_stop + rb"(?!(?i:" + _RAW_TEXT_NAMES + rb")[\t\n\f\r />])[a-zA-Z][^\t\n\f\r />]*+"
            rb"(?>[\t\n\f\r /]*+(?!(?i:data-pz-slot)[\t\n\f\r />=])[^\t\n\f\r />\"'=][^\t\n\f\r />=]*+"
            rb"(?>[\t\n\f\r ]*+=[\t\n\f\r ]*+(?>\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'][^\t\n\f\r >]*+))?)*+"
            rb"[\t\n\f\r /]*+/?>"
            + rb"|"
            + raw_text_elements  # placeholders are never filled there: up to its end tag
            + rb"|</"
            + not_stop
            + rb"[a-zA-Z][^>]*+>"
            rb"|<!--(?!\s*+/?pz:slot)(?>[^-]++|-(?!->))*+-->"  # a whole comment that is not a pz marker
            rb"|<!(?!--)[^>]*+>|<\?[^>]*+>"  # doctype, processing instruction
            rb")*+"
        )
        if len(_ORDINARY_RUNS) >= 256:
            _ORDINARY_RUNS.clear()
        _ORDINARY_RUNS[stop] = pattern
    return pattern


_ORDINARY_RUNS: dict[bytes | None, re.Pattern[bytes]] = {}
_SLOT_OPEN = re.compile(rb"\s*pz:slot\s+([A-Za-z0-9_.:-]{1,64})\s*$")
_SLOT_CLOSE = re.compile(rb"\s*/pz:slot\s*$")

Resolver = Callable[[str, Mapping[str, str]], bytes | None]


# A start tag read whole: where it ends, its lower-case name, its attributes (the first of a name
# wins). There is no self-closing flag: HTML ignores `/>` on elements that are not void, so
# `<div data-pz-slot="x"/>` opens a div and `<script/>` opens raw text, as in a browser.
StartTag = tuple[int, bytes, dict[str, str]]
NOT_A_TAG = 0
INCOMPLETE = -1


def parse_start_tag_in_python(buf: bytes, pos: int) -> StartTag | int:
    """The start tag at buf[pos] ('<' + letter), NOT_A_TAG, or INCOMPLETE. The injector reads
    placeholders with the same function in C (edge_worker._html_scan.parse_start_tag); this is its
    specification, and tests hold the two equal."""
    name = _TAG_NAME.match(buf, pos + 1)
    if name is None:
        return NOT_A_TAG
    at = name.end()
    attributes: dict[str, str] = {}
    while True:
        close = _TAG_CLOSE.match(buf, at)
        if close is not None:
            return close.end(), name.group().lower(), attributes
        attribute = _ATTRIBUTE.match(buf, at)
        if attribute is None or attribute.end() == len(buf):
            return INCOMPLETE  # the tag goes on past what has arrived
        key = attribute.group(1).lower().decode("latin-1")
        value = attribute.group(2) or b""
        if value[:1] in (b'"', b"'"):  # the expression only takes a quoted value with its closing quote
            value = value[1:-1]
        attributes.setdefault(key, value.decode("utf-8", "replace"))
        at = attribute.end()


class HtmlInjector:
    ordinary_runs = True  # the C-level fast path over ordinary markup; tests compare with it off

    def __init__(self, resolve: Resolver) -> None:
        self._resolve = resolve
        self._held = b""
        self._raw_end: re.Pattern[bytes] | None = None  # inside <script> and friends
        self._in_comment = False  # inside a long ordinary comment
        self._skip_element: bytes | None = None  # replacing the content of this element...
        self._skip_depth = 0  # ...nested this deep
        self._skip_comment = False  # replacing up to <!--/pz:slot-->
        self.replaced: list[str] = []

    @property
    def _skipping(self) -> bool:
        return self._skip_element is not None or self._skip_comment

    def feed(self, chunk: bytes) -> bytes:
        return self._run(self._held + chunk if self._held else chunk, final=False)

    def finish(self) -> bytes:
        return self._run(self._held, final=True)

    def _run(self, buf: bytes, final: bool) -> bytes:
        out: list[bytes] = []
        emit = out.append
        pos = 0
        end = len(buf)
        while pos < end:
            if self._raw_end is not None:
                match = self._raw_end.search(buf, pos)
                if match is None:
                    keep = 0 if final else min(end - pos, 16)  # a closing tag may be arriving
                    if not self._skipping:
                        emit(buf[pos : end - keep])
                    pos = end - keep
                    break
                if not self._skipping:
                    emit(buf[pos : match.start()])
                pos = match.start()
                self._raw_end = None
                continue
            if self._in_comment:
                close = buf.find(b"-->", pos)
                if close < 0:
                    keep = 0 if final else min(end - pos, 2)
                    if not self._skipping:
                        emit(buf[pos : end - keep])
                    pos = end - keep
                    break
                if not self._skipping:
                    emit(buf[pos : close + 3])
                pos = close + 3
                self._in_comment = False
                continue
            # A run of ordinary markup ends at the end of buf or before a '<' the tokenizer reads.
            if self.ordinary_runs and not self._skipping:
                run_end = ordinary_run_end(buf, pos)
                if run_end > pos:
                    emit(buf[pos:run_end])
                    pos = run_end
                    if pos == end or (not final and end - pos < MAX_HELD_BYTES and buf.find(b">", pos) < 0):
                        break  # nothing more can complete in this chunk: wait for the next one
            elif self.ordinary_runs:
                # Old content being replaced: dropped, up to what can end it (the element's own end
                # tag, after any nested ones, or the closing marker comment).
                if self._skip_element is not None:
                    pos, self._skip_depth = skip_replaced(buf, pos, self._skip_element, self._skip_depth)
                else:
                    pos = ordinary_run_end(buf, pos)
                if pos == end:
                    break
            else:  # the tokenizer alone
                lt = buf.find(b"<", pos)
                if lt < 0:
                    if not self._skipping:
                        emit(buf[pos:])
                    pos = end
                    break
                if not self._skipping:
                    emit(buf[pos:lt])
                pos = lt
            step = self._construct(buf, pos, final, emit)
            if step is None:  # unfinished: hold it for the next chunk
                break
            pos = step
        self._held = buf[pos:] if not final else b""
        if final and self._held:
            out.append(self._held)
            self._held = b""
        return b"".join(out)

    def _construct(self, buf: bytes, pos: int, final: bool, emit: Callable[[bytes], None]) -> int | None:
        """Handle what starts at buf[pos] == '<'; returns where to go on, or None to wait for more."""
        end = len(buf)
        if end - pos < 4 and not final and b"<!--".startswith(buf[pos:]):
            return None
        if buf.startswith(b"<!--", pos):
            return self._comment(buf, pos, final, emit)
        if end - pos < 2:
            if final:
                self._text(buf[pos:], emit)
                return end
            return None
        second = buf[pos + 1 : pos + 2]
        if second == b"/":
            match = _END_TAG.match(buf, pos)
            if match is None:
                return self._wait_or_text(buf, pos, final, emit, b">" not in buf[pos:])
            self._end_tag(match.group(1).lower(), buf[pos : match.end()], emit)
            return match.end()
        if second.isalpha():
            tag = parse_start_tag(buf, pos) if self.ordinary_runs else parse_start_tag_in_python(buf, pos)
            if tag == INCOMPLETE:
                return self._wait_or_text(buf, pos, final, emit, True)
            if not isinstance(tag, tuple):
                self._text(b"<", emit)
                return pos + 1
            tag_end, name, attributes = tag
            self._start_tag(name, attributes, buf[pos:tag_end], emit)
            return tag_end
        if second in (b"!", b"?"):  # doctype, CDATA-ish, processing instruction: up to '>'
            close = buf.find(b">", pos)
            if close < 0:
                return self._wait_or_text(buf, pos, final, emit, True)
            self._text(buf[pos : close + 1], emit)
            return close + 1
        self._text(b"<", emit)
        return pos + 1

    def _wait_or_text(
        self, buf: bytes, pos: int, final: bool, emit: Callable[[bytes], None], could_complete: bool
    ) -> int | None:
        if could_complete and not final and len(buf) - pos < MAX_HELD_BYTES:
            return None
        self._text(b"<", emit)  # never going to be a tag: it is text
        return pos + 1

    def _text(self, data: bytes, emit: Callable[[bytes], None]) -> None:
        if not self._skipping:
            emit(data)

    def _comment(self, buf: bytes, pos: int, final: bool, emit: Callable[[bytes], None]) -> int | None:
        close = buf.find(b"-->", pos + 4)
        if close < 0:
            if not final and len(buf) - pos < _COMMENT_LOOKAHEAD:
                return None  # it may be a short pz marker: wait to see it whole
            self._in_comment = True  # a long ordinary comment: stream it
            self._text(b"<!--", emit)
            return pos + 4
        body = buf[pos + 4 : close]
        whole = buf[pos : close + 3]
        if self._skip_comment and _SLOT_CLOSE.match(body):
            self._skip_comment = False
            emit(whole)
            return close + 3
        if not self._skipping:
            opening = _SLOT_OPEN.match(body)
            emit(whole)
            if opening is not None:
                name = opening.group(1).decode()
                fragment = self._resolve(name, {})
                if fragment is not None:
                    emit(fragment)
                    self._skip_comment = True
                    self.replaced.append(name)
        return close + 3

    def _start_tag(
        self, name: bytes, attributes: dict[str, str], raw: bytes, emit: Callable[[bytes], None]
    ) -> None:
        if name in _RAW_TEXT:
            self._raw_end = _RAW_TEXT_END[name]
        if self._skipping:
            if name == self._skip_element and name not in _VOID:
                self._skip_depth += 1
            return
        emit(raw)
        slot = attributes.get("data-pz-slot")
        if slot is None or name in _VOID or name in _RAW_TEXT:
            return
        fragment = self._resolve(slot, attributes)
        if fragment is None:
            return
        emit(fragment)
        self._skip_element = name
        self._skip_depth = 1
        self.replaced.append(slot)

    def _end_tag(self, name: bytes, raw: bytes, emit: Callable[[bytes], None]) -> None:
        if self._skip_element is not None and name == self._skip_element:
            self._skip_depth -= 1
            if self._skip_depth == 0:
                self._skip_element = None
                emit(raw)
            return
        if not self._skipping:
            emit(raw)
