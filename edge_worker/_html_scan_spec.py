"""The specification of the injector's C fast path (`edge_worker/_html_scan.c`, `ordinary_run_end`):
one regular expression per stop name. Tests hold the C scan equal to it on generated pages; the
injector itself only runs the C.
"""

from __future__ import annotations

import re

from edge_worker.html_tags import RAW_TEXT

# Outside placeholders almost everything is text, ordinary tags, end tags, comments, raw-text
# elements and doctypes, which pass unchanged. This matches the longest run of exactly that: a start
# tag is ordinary when it does not open raw text (script, style, …) and has no data-pz-slot attribute;
# a raw-text element passes whole, up to its end tag, when that end tag has arrived; the run stops
# before anything else (a marker comment, a placeholder, an unfinished construct), which the tokenizer
# below then handles one construct at a time; so do `<svg>`, `<math>` and their end tags (foreign content,
# where `<![CDATA[` opens a real CDATA section) and CDATA. Start tags: the grammar of html_tags,
# written atomic and possessive (linear time whatever the origin sends: no ReDoS).
# The injector runs the same scan in C (edge_worker/_html_scan.c, ~20x faster); these expressions are
# its specification, and tests hold the two equal.
RAW_TEXT_NAMES = b"|".join(sorted(RAW_TEXT))
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
            for name in sorted(RAW_TEXT)
        )
        pattern = re.compile(
            rb"(?>[^<]++"
            rb"|<"
            + not_stop
            + rb"(?!(?i:"
            + RAW_TEXT_NAMES
            + rb"|math|svg)[\t\n\f\r />])[a-zA-Z][^\t\n\f\r />]*+"
            rb"(?>[\t\n\f\r /]*+(?!(?i:data-pz-slot)[\t\n\f\r />=])[^\t\n\f\r />\"'=][^\t\n\f\r />=]*+"
            rb"(?>[\t\n\f\r ]*+=[\t\n\f\r ]*+(?>\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'][^\t\n\f\r >]*+))?)*+"
            rb"[\t\n\f\r /]*+/?>"
            + rb"|"
            + raw_text_elements  # placeholders are never filled there: up to its end tag
            + rb"|</"
            + not_stop
            + rb"(?!(?i:math|svg)[\t\n\f\r />])[a-zA-Z][^>]*+>"
            rb"|<!--(?!\s*+/?pz:slot)(?>[^-]++|-(?!->))*+-->"  # a whole comment that is not a pz marker
            rb"|<!(?!--|\[CDATA\[)[^>]*+>|<\?[^>]*+>"  # doctype, processing instruction
            rb")*+"
        )
        if len(_ORDINARY_RUNS) >= 256:
            _ORDINARY_RUNS.clear()
        _ORDINARY_RUNS[stop] = pattern
    return pattern


_ORDINARY_RUNS: dict[bytes | None, re.Pattern[bytes]] = {}
