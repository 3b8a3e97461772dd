from __future__ import annotations

from collections.abc import Mapping

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_worker._html_scan import ordinary_run_end, parse_start_tag
from edge_worker._html_scan_spec import ordinary_run
from edge_worker.html_inject import MAX_HELD_BYTES, HtmlInjector
from edge_worker.html_tags import parse_start_tag_in_python

FRAGMENTS = {"hero": b"<p>HERO</p>", "recs": b"<ul><li>R</li></ul>"}


def resolve(name: str, attributes: Mapping[str, str]) -> bytes | None:
    return FRAGMENTS.get(name)


def inject(page: bytes, cuts: list[int] | None = None) -> bytes:
    injector = HtmlInjector(resolve)
    out = []
    last = 0
    for cut in sorted(set(cuts or [])):
        out.append(injector.feed(page[last:cut]))
        last = cut
    out.append(injector.feed(page[last:]))
    out.append(injector.finish())
    return b"".join(out)


def test_the_element_placeholder_gets_the_fragment_and_loses_its_content() -> None:
    page = b'<html><body><div class="x" data-pz-slot="hero"><b>default</b></div><p>after</p></body></html>'
    assert inject(page) == (
        b'<html><body><div class="x" data-pz-slot="hero"><p>HERO</p></div><p>after</p></body></html>'
    )


def test_nested_elements_of_the_same_name_are_followed_to_the_matching_close() -> None:
    page = b'<div data-pz-slot="recs"><div><div>a</div></div>b</div><div>kept</div>'
    assert inject(page) == b'<div data-pz-slot="recs"><ul><li>R</li></ul></div><div>kept</div>'


def test_the_comment_form() -> None:
    page = b"<p>x</p><!--pz:slot hero--><em>default</em><!--/pz:slot--><p>y</p>"
    assert inject(page) == b"<p>x</p><!--pz:slot hero--><p>HERO</p><!--/pz:slot--><p>y</p>"


def test_placeholders_inside_scripts_comments_and_attribute_values_are_text() -> None:
    page = (
        b"<script>var s = '<div data-pz-slot=\"hero\">x</div>';</script>"
        b'<!-- <div data-pz-slot="hero">x</div> -->'
        b"<a title='<div data-pz-slot=\"hero\">'>link</a>"
        b"<style>/* <!--pz:slot hero--> */</style>"
    )
    assert inject(page) == page


def test_a_close_tag_inside_a_script_in_the_replaced_content_does_not_end_it() -> None:
    page = b'<div data-pz-slot="recs"><script>document.write("</div>")</script>old</div>tail'
    assert inject(page) == b'<div data-pz-slot="recs"><ul><li>R</li></ul></div>tail'


def test_an_unknown_slot_keeps_its_original_content() -> None:
    page = b'<div data-pz-slot="banner">default banner</div><!--pz:slot nope-->kept<!--/pz:slot-->'
    assert inject(page) == page


def test_a_quoted_greater_than_does_not_end_the_tag() -> None:
    page = b'<div data-x="a>b" data-pz-slot="hero">old</div>'
    assert inject(page) == b'<div data-x="a>b" data-pz-slot="hero"><p>HERO</p></div>'


def test_text_streams_out_at_once_and_only_an_unfinished_tag_is_held() -> None:
    injector = HtmlInjector(resolve)
    assert injector.feed(b"<html><body>hello wor") == b"<html><body>hello wor"
    assert injector.feed(b"ld <div data-pz-sl") == b"ld "
    assert injector.feed(b'ot="hero">old</div>') == b'<div data-pz-slot="hero"><p>HERO</p></div>'


def test_memory_stays_bounded_for_a_huge_comment_and_a_runaway_tag() -> None:
    injector = HtmlInjector(resolve)
    out = [injector.feed(b"<!--")]
    for _ in range(100):
        out.append(injector.feed(b"x" * 10_000))
        assert len(injector._held) < MAX_HELD_BYTES  # noqa: SLF001
    out.append(injector.feed(b'--><div data-pz-slot="hero">o</div>'))
    out.append(injector.feed(b"<div " + b"a" * (MAX_HELD_BYTES + 10)))
    assert len(injector._held) <= MAX_HELD_BYTES + 20  # noqa: SLF001
    out.append(injector.finish())
    assert b"<p>HERO</p>" in b"".join(out)


fragments = st.sampled_from(
    [
        b"<html>",
        b"<body class='a'>",
        b"</body>",
        b"text ",
        b"a < b ",
        b"&amp;",
        b"<br/>",
        b'<img src="x>y">',
        b'<div data-pz-slot="hero">',
        b'<div data-pz-slot="recs">',
        b'<div data-pz-slot="other">',
        b"<div>",
        b"</div>",
        b"<!--pz:slot hero-->",
        b"<!--/pz:slot-->",
        b"<!-- plain comment -->",
        b"<script>if (a<b) {}</script>",
        b"<style>p>a{}</style>",
        b"<!doctype html>",
        b"\xc3\xa9t\xc3\xa9",
        b"<p>",
        b"</p>",
        b"<",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fragments, max_size=40), st.lists(st.integers(0, 2000), max_size=12))
def test_any_split_gives_the_same_output_as_the_whole_page(parts: list[bytes], cuts: list[int]) -> None:
    page = b"".join(parts)
    assert inject(page, [c % (len(page) + 1) for c in cuts]) == inject(page)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=8))
def test_pages_without_placeholders_come_out_byte_identical(page: bytes, cuts: list[int]) -> None:
    page = page.replace(b"pz", b"zp")
    assert inject(page, [c % (len(page) + 1) for c in cuts]) == page


tricky = st.sampled_from(
    [
        b'<a title="<script>">',
        b"<DIV DATA-PZ-SLOT='hero'>",
        b"<div\tdata-pz-slot=recs>",
        b'<p data-pz-slotx="hero">',
        b'<p title="data-pz-slot">',
        b"<scriptx>",
        b"<SCRIPT>x</SCRIPT>",
        b"<a href=x>",
        b"<textarea><div data-pz-slot='hero'></textarea>",
        b"</div >",
        b"<div/>",
        b'<img alt="a>b" data-pz-slot="hero">',
        b"<!---->",
        b"<?xml?>",
        b"< p>",
        b"<!-- pz:slot hero -->",
        b"<!--  /pz:slot -->",
        b"<!-- pz:slotx -->",
        b"<!-->",
        b"<!--->",
        b"<!-- -- -->",
        b"<!--",
        b"-->",
        b'"',
        b"=",
        b'<div class="a>b">',
        b"</div\n>",
        b"<Div>",
        b"<div",
        b"<div title='</div>'>",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(fragments, tricky), max_size=40), st.lists(st.integers(0, 2000), max_size=12))
def test_the_fast_path_over_ordinary_markup_changes_nothing(parts: list[bytes], cuts: list[int]) -> None:
    """The same page, split the same way, with the one-regex fast path on and off (the tokenizer alone)."""
    page = b"".join(parts)
    split = [c % (len(page) + 1) for c in cuts]
    fast = inject(page, split)
    HtmlInjector.ordinary_runs = False
    try:
        assert inject(page, split) == fast
    finally:
        HtmlInjector.ordinary_runs = True


scan_edges = st.sampled_from(
    [
        b"<a b = \"c\" d='e' f=g/ >",
        b"<a =x>",
        b'<a b="x',
        b"<a b='x",
        b"<a b=",
        b"<A/B>",
        b"<a b=x/>",
        b"<a\x0bb>",
        b"<!--\x0bpz:slot hero-->",
        b"<!--\x0b/pz:slot-->",
        b"<!-- /pz:slot-->",
        b"<!--pz:slo-->",
        b"<NoEmbed>",
        b"<noframesx>",
        b"<iframe/>",
        b"<title",
        b"<xmp\r>",
        b"<data-pz-slot>",
        b"<a Data-Pz-Slot>",
        b"<a data-pz-slot",
        b"<a data-pz-slot=",
        b"<a x data-pz-slot/>",
        b"</",
        b"</a",
        b"</1>",
        b"<!-",
        b"<!--",
        b"<!--->",
        b"-->",
        b"\x00<\xff>",
        b"<script>a<b>c</script>",
        b"<SCRIPT x='>'>y</Script\t>",
        b"<style data-pz-slot=hero>",
        b"</style>",
        b"</STYLE",
        b"<textarea></textareax></textarea>",
        b"<title/>t</title/>",
        b"<!doctype html>",
        b"<!DOCTYPE",
        b"<?pi x?>",
        b"<!-x>",
        b"<!->",
        b"<!>",
    ]
)


attribute_edges = st.sampled_from(
    [
        b"<a b=c b=d>",
        b"<a B='\xff\xfe'>",
        b'<a \xe9=x \xc3\xa9="y">',
        b"<a b = 'c' / d >",
        b"<a b=>",
        b"<a ='x'>",
        b'<a "b">',
        b"<a b='c",
        b"<a b=c",
        b"<a b",
        b"<a/b/c/>",
        b"<a " + b"x" * 70 + b"=1>",
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(fragments, tricky, scan_edges, st.binary(max_size=8)), max_size=30),
    st.sampled_from([None, b"div", b"p", b"a", b"script", b"d"]),
)
def test_the_c_scan_ends_every_run_where_its_regex_specification_does(
    parts: list[bytes], stop: bytes | None
) -> None:
    page = b"".join(parts)
    for pos in range(len(page) + 1):
        expected = ordinary_run(stop).match(page, pos)
        assert expected is not None  # the expression matches the empty run too
        assert ordinary_run_end(page, pos, stop) == expected.end(), (page, pos, stop)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(fragments, tricky, scan_edges, attribute_edges, st.binary(max_size=8)), max_size=20)
)
def test_the_c_tag_reader_reads_every_tag_as_its_python_specification_does(parts: list[bytes]) -> None:
    page = b"".join(parts)
    for pos in range(len(page) + 1):
        assert parse_start_tag(page, pos) == parse_start_tag_in_python(page, pos), (page, pos)


def test_a_placeholder_tag_is_read_with_every_attribute_the_resolver_may_use() -> None:
    seen: list[Mapping[str, str]] = []

    def remember(name: str, attributes: Mapping[str, str]) -> bytes:
        seen.append(attributes)
        return b"<p>X</p>"

    page = (
        b"<DIV Data-PZ-Slot=hero data-pz-item-href='/p/{id}' data-pz-item-img=\"/i/\xc3\xa9.svg\""
        b" hidden data-pz-slot=other title=a/b>old<div>older</div ></Div\n><p>after</p>"
    )
    injector = HtmlInjector(remember)
    assert injector.feed(page) + injector.finish() == (
        page[: page.index(b">old") + 1] + b"<p>X</p></Div\n><p>after</p>"
    )
    assert seen == [
        {
            "data-pz-slot": "hero",  # the first of a name wins
            "data-pz-item-href": "/p/{id}",
            "data-pz-item-img": "/i/\u00e9.svg",
            "hidden": "",
            "title": "a/b",
        }
    ]
