"""Pages that broke or could break the injector, each with the bytes a browser-faithful injector
must produce: charsets (header, BOM, <meta>), placeholders never closed or mis-nested, foreign
content with CDATA, tags longer than the hold limit, CRLF, upper case, attributes that mention the
marker. The fragments hold characters outside Latin-1 and outside windows-1252, so a page's charset
shows in every filled byte."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

HERO = "<b>Café € 5</b>"  # é is in Latin-1, € only in windows-1252 (and Unicode)
RECS = "<i>Ωmega</i>"  # Ω in neither
FRAGMENTS = {"hero": HERO, "recs": RECS}


def resolve(name: str, attributes: Mapping[str, str]) -> bytes | None:
    fragment = FRAGMENTS.get(name)
    return fragment.encode() if fragment is not None else None


@dataclass(frozen=True)
class Page:
    name: str
    content_type: str
    body: bytes
    expected: bytes
    unfilled: tuple[str, ...] = ()  # slots the injector must give back unchanged


def _utf8(text: str) -> bytes:
    return text.encode()


def _cp1252(text: str) -> bytes:
    return text.encode("cp1252", "xmlcharrefreplace")


def _ncr(text: str) -> bytes:
    return text.encode("ascii", "xmlcharrefreplace")


HTML = "text/html"
UTF8 = "text/html; charset=utf-8"
LONG = "a" * 100_000
PAD = "<!-- " + "p" * 1100 + " -->"  # pushes what follows past the 1 024 bytes of the prescan

PAGES = [
    Page(
        "utf8-header",
        UTF8,
        _utf8('<p>Café</p><div data-pz-slot="hero">old</div>'),
        _utf8(f'<p>Café</p><div data-pz-slot="hero">{HERO}</div>'),
    ),
    Page(
        "latin1-header",
        "text/html; charset=ISO-8859-1",
        _cp1252('<p>Café</p><div data-pz-slot="hero">old</div><div data-pz-slot="recs">o</div>'),
        _cp1252(f'<p>Café</p><div data-pz-slot="hero">{HERO}</div><div data-pz-slot="recs">')
        + b"<i>&#937;mega</i></div>",
    ),
    Page(
        "latin1-meta-only",
        HTML,
        _cp1252(
            '<html><head><meta charset="iso-8859-1"><title>Café</title></head><body>'
            '<div data-pz-slot="hero">old</div></body></html>'
        ),
        _cp1252(
            '<html><head><meta charset="iso-8859-1"><title>Café</title></head><body>'
            f'<div data-pz-slot="hero">{HERO}</div></body></html>'
        ),
    ),
    Page(
        "http-equiv-windows-1251",
        HTML,
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251"><p>Привет</p>'
        '<div data-pz-slot="hero">old</div>'.encode("cp1251"),
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251"><p>Привет</p>'
        '<div data-pz-slot="hero"><b>Caf&#233; € 5</b></div>'.encode("cp1251"),
    ),
    Page(
        "undeclared",
        HTML,
        b'<p>plain</p><div data-pz-slot="hero">old</div>',
        b'<p>plain</p><div data-pz-slot="hero">' + _ncr(HERO) + b"</div>",
    ),
    Page(
        "meta-past-the-prescan",
        HTML,
        _utf8(PAD + '<meta charset="utf-8"><div data-pz-slot="hero">old</div>'),
        _utf8(PAD + '<meta charset="utf-8"><div data-pz-slot="hero">') + _ncr(HERO) + b"</div>",
    ),
    Page(
        "meta-in-a-comment-is-not-read",
        HTML,
        _utf8('<!-- <meta charset="iso-8859-1"> --><meta charset="utf-8"><div data-pz-slot="hero">o</div>'),
        _utf8(
            f'<!-- <meta charset="iso-8859-1"> --><meta charset="utf-8"><div data-pz-slot="hero">{HERO}</div>'
        ),
    ),
    Page(
        "bom-beats-the-header",
        "text/html; charset=iso-8859-1",
        b"\xef\xbb\xbf" + _utf8('<div data-pz-slot="hero">old</div>'),
        b"\xef\xbb\xbf" + _utf8(f'<div data-pz-slot="hero">{HERO}</div>'),
    ),
    Page(
        "utf16-passes-unchanged",
        HTML,
        b"\xff\xfe" + '<div data-pz-slot="hero">old</div>'.encode("utf-16-le"),
        b"\xff\xfe" + '<div data-pz-slot="hero">old</div>'.encode("utf-16-le"),
    ),
    Page(
        "unclosed-ended-by-body",
        UTF8,
        _utf8('<html><body><div data-pz-slot="hero">old <p>more</body></html>\n'),
        _utf8(f'<html><body><div data-pz-slot="hero">{HERO}</body></html>\n'),
    ),
    Page(
        "unclosed-to-the-end-of-the-page",
        UTF8,
        _utf8('<p>a</p><div data-pz-slot="hero">old <p>more'),
        _utf8(f'<p>a</p><div data-pz-slot="hero">{HERO}'),
    ),
    Page(
        "li-closed-by-the-next-li",
        UTF8,
        _utf8('<ul><li data-pz-slot="hero">old<li>next</ul><p>tail</p>'),
        _utf8(f'<ul><li data-pz-slot="hero">{HERO}<li>next</ul><p>tail</p>'),
    ),
    Page(
        "p-closed-by-a-block",
        UTF8,
        _utf8('<p data-pz-slot="hero">old<div>block</div>'),
        _utf8(f'<p data-pz-slot="hero">{HERO}<div>block</div>'),
    ),
    Page(
        "misnested-span-closed-by-its-ancestor",
        UTF8,
        _utf8('<div><span data-pz-slot="hero">old <b>x</div><p>after</p>'),
        _utf8(f'<div><span data-pz-slot="hero">{HERO}</div><p>after</p>'),
    ),
    Page(
        "stray-end-tag-keeps-every-byte-after-it",
        UTF8,
        _utf8('<div data-pz-slot="hero">old</span>rest</div>tail'),
        _utf8(f'<div data-pz-slot="hero">{HERO}</span>rest</div>tail'),
    ),
    Page(
        "comment-form-ended-by-its-container",
        UTF8,
        _utf8("<div><!--pz:slot hero-->old</div>tail"),
        _utf8(f"<div><!--pz:slot hero-->{HERO}</div>tail"),
    ),
    Page(
        "old-content-too-long-is-given-back",
        UTF8,
        _utf8('<div data-pz-slot="hero">' + "x" * 70_000 + '</div><div data-pz-slot="recs">o</div>'),
        _utf8('<div data-pz-slot="hero">' + "x" * 70_000 + f'</div><div data-pz-slot="recs">{RECS}</div>'),
        unfilled=("hero",),
    ),
    Page(
        "cdata-in-svg-is-text",
        UTF8,
        _utf8(
            '<svg><![CDATA[ <g> <div data-pz-slot="hero">x</div> ]]></svg><div data-pz-slot="recs">o</div>'
        ),
        _utf8(
            '<svg><![CDATA[ <g> <div data-pz-slot="hero">x</div> ]]></svg>'
            f'<div data-pz-slot="recs">{RECS}</div>'
        ),
    ),
    Page(
        "cdata-in-mathml-is-text",
        UTF8,
        _utf8('<MATH><![CDATA[<div data-pz-slot="hero">x</div>]]></MATH>'),
        _utf8('<MATH><![CDATA[<div data-pz-slot="hero">x</div>]]></MATH>'),
    ),
    Page(
        "cdata-in-html-is-a-bogus-comment",
        UTF8,
        _utf8('<svg/><![CDATA[ <b> <div data-pz-slot="hero">x</div> ]]>'),
        _utf8(f'<svg/><![CDATA[ <b> <div data-pz-slot="hero">{HERO}</div> ]]>'),
    ),
    Page(
        "huge-tag-before-the-marker",
        UTF8,
        _utf8(f'<div data-big="{LONG}" data-pz-slot="hero" class=x>old</div><p>after</p>'),
        _utf8(f'<div data-big="{LONG}" data-pz-slot="hero" class=x>{HERO}</div><p>after</p>'),
    ),
    Page(
        "huge-tag-without-a-marker",
        UTF8,
        _utf8(f"<img alt='{LONG}'><div data-pz-slot=\"recs\">o</div>"),
        _utf8(f"<img alt='{LONG}'><div data-pz-slot=\"recs\">{RECS}</div>"),
    ),
    Page(
        "crlf-and-upper-case",
        UTF8,
        _utf8('<DIV\r\nDATA-PZ-SLOT="hero"\r\n>old</DIV>\r\n<p>x</p>\r\n'),
        _utf8(f'<DIV\r\nDATA-PZ-SLOT="hero"\r\n>{HERO}</DIV>\r\n<p>x</p>\r\n'),
    ),
    Page(
        "attributes-that-mention-the-marker",
        UTF8,
        _utf8(
            '<div title=\'data-pz-slot="hero"\'>a</div><p data-pz-slotx="hero">b</p>'
            '<a href="?data-pz-slot=hero">c</a>'
        ),
        _utf8(
            '<div title=\'data-pz-slot="hero"\'>a</div><p data-pz-slotx="hero">b</p>'
            '<a href="?data-pz-slot=hero">c</a>'
        ),
    ),
    Page(
        "raw-text-and-comments-are-left-alone",
        UTF8,
        _utf8(
            '<textarea><div data-pz-slot="hero">t</div></textarea><script>"<!--pz:slot hero-->"</script>'
            '<!-- <div data-pz-slot="hero"> -->'
        ),
        _utf8(
            '<textarea><div data-pz-slot="hero">t</div></textarea><script>"<!--pz:slot hero-->"</script>'
            '<!-- <div data-pz-slot="hero"> -->'
        ),
    ),
]
