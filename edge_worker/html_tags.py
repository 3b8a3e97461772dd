"""Reading start tags: whole ones from a buffer, and ones too long to hold, as they stream through.

The injector reads placeholders with the C reader (`edge_worker._html_scan.parse_start_tag`);
`parse_start_tag_in_python` is its specification, and tests hold the two equal. `LongStartTag`
reads a tag of any length in bounded memory with the same grammar: the tag's bytes pass through as
they are read, and only its name and short attribute values are kept, which is all a decision needs.
"""

from __future__ import annotations

import re

# A start tag read whole: where it ends, its lower-case name, its attributes (the first of a name
# wins). There is no self-closing flag: HTML ignores `/>` on elements that are not void, so
# `<div data-pz-slot="x"/>` opens a div and `<script/>` opens raw text, as in a browser.
StartTag = tuple[int, bytes, dict[str, str]]
# Elements whose content is text to the tokenizer, up to their own end tag.
RAW_TEXT = frozenset({b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed", b"noframes"})
NOT_A_TAG = 0
INCOMPLETE = -1

_TAG_NAME = re.compile(rb"[a-zA-Z][^\t\n\f\r />]*")
_ATTRIBUTE = re.compile(
    rb"[\t\n\f\r /]*([^\t\n\f\r />\"'=][^\t\n\f\r />=]*)"
    rb"(?:[\t\n\f\r ]*=[\t\n\f\r ]*(\"[^\"]*\"|'[^']*'|[^\t\n\f\r >\"'][^\t\n\f\r >]*))?"
)
_TAG_CLOSE = re.compile(rb"[\t\n\f\r /]*>")


def parse_start_tag_in_python(buf: bytes, pos: int) -> StartTag | int:
    """The start tag at buf[pos] ('<' + letter), NOT_A_TAG, or INCOMPLETE."""
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


MAX_KEPT_NAME_BYTES = 256  # a longer tag or attribute name is read through, not kept
MAX_KEPT_VALUE_BYTES = 8 * 1024  # a longer attribute value is read through and kept as ""

_WS = b"\t\n\f\r "
_GAP = re.compile(rb"[\t\n\f\r /]*")
_SPACES = re.compile(rb"[\t\n\f\r ]*")
_NAME_REST = re.compile(rb"[^\t\n\f\r />]*")
_KEY_REST = re.compile(rb"[^\t\n\f\r />=]*")
_UNQUOTED_REST = re.compile(rb"[^\t\n\f\r >]*")


class LongStartTag:
    """A start tag read piece by piece, in the grammar of `parse_start_tag_in_python`.

    `feed(buf, pos)` reads from buf[pos] and returns how far it read; then `done` says the tag ended
    (its name and attributes are ready), `failed` that the bytes are not a tag after all (the caller
    reads on from there as text). Memory stays bounded whatever the tag's length."""

    def __init__(self) -> None:
        self.name = bytearray()
        self.attributes: dict[str, str] = {}
        self.done = False
        self.failed = False
        self._state = "name"
        self._key = bytearray()
        self._value = bytearray()
        self._value_too_long = False
        self._quote = 0

    def feed(self, buf: bytes, pos: int) -> int:
        end = len(buf)
        while pos < end and not (self.done or self.failed):
            pos = self._step(buf, pos, end)
        return pos

    def _step(self, buf: bytes, pos: int, end: int) -> int:  # noqa: PLR0911, PLR0912 - one state each
        state = self._state
        if state == "name":
            run = _NAME_REST.match(buf, pos).end()  # type: ignore[union-attr]
            self._keep(self.name, buf[pos:run], MAX_KEPT_NAME_BYTES)
            if run < end:
                self._state = "gap"
            return run
        if state == "gap":
            run = _GAP.match(buf, pos).end()  # type: ignore[union-attr]
            if run == end:
                return run
            byte = buf[run]
            if byte == 0x3E:  # '>'
                self.done = True
                return run + 1
            if byte in b"\"'=":  # not an attribute name in this grammar: not a tag
                self.failed = True
                return run
            self._state = "key"
            return run
        if state == "key":
            run = _KEY_REST.match(buf, pos + (0 if self._key else 1)).end()  # type: ignore[union-attr]
            self._keep(self._key, buf[pos:run], MAX_KEPT_NAME_BYTES)
            if run < end:
                self._state = "after_key"
            return run
        if state == "after_key":
            run = _SPACES.match(buf, pos).end()  # type: ignore[union-attr]
            if run == end:
                return run
            if buf[run] == 0x3D:  # '='
                self._state = "before_value"
                return run + 1
            self._attribute()
            return pos  # the gap state reads the spaces again, as the expression does
        if state == "before_value":
            run = _SPACES.match(buf, pos).end()  # type: ignore[union-attr]
            if run == end:
                return run
            byte = buf[run]
            if byte in b"\"'":
                self._quote = byte
                self._state = "quoted"
                return run + 1
            if byte == 0x3E:  # `a=>`: the expression finds no tag here
                self.failed = True
                return run
            self._state = "unquoted"
            return run
        if state == "quoted":
            close = buf.find(bytes((self._quote,)), pos)
            stop = end if close < 0 else close
            self._keep_value(buf[pos:stop])
            if close < 0:
                return end
            self._attribute()
            return close + 1
        # unquoted
        run = _UNQUOTED_REST.match(buf, pos).end()  # type: ignore[union-attr]
        self._keep_value(buf[pos:run])
        if run < end:
            self._attribute()
        return run

    @staticmethod
    def _keep(into: bytearray, data: bytes, limit: int) -> None:
        room = limit + 1 - len(into)  # one byte past the limit marks it too long
        if room > 0:
            into += data[:room]

    def _keep_value(self, data: bytes) -> None:
        if not self._value_too_long:
            self._value += data
            if len(self._value) > MAX_KEPT_VALUE_BYTES:
                self._value_too_long = True
                self._value.clear()

    def _attribute(self) -> None:
        if len(self._key) <= MAX_KEPT_NAME_BYTES:
            value = "" if self._value_too_long else self._value.decode("utf-8", "replace")
            self.attributes.setdefault(bytes(self._key).lower().decode("latin-1"), value)
        self._key.clear()
        self._value.clear()
        self._value_too_long = False
        self._state = "gap"

    @property
    def lower_name(self) -> bytes:
        return bytes(self.name).lower() if len(self.name) <= MAX_KEPT_NAME_BYTES else b""
