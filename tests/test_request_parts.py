"""Query strings, headers and cookies read from the ASGI scope, as the decision path reads them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from edge_worker.request_context import ContextReader, ContextSettings
from edge_worker.request_parts import cookie_of, headers_of, query_of
from schemas.rules.periods import PERIOD_STARTS, period_starts


def test_query_takes_the_first_value_and_keeps_blank_ones() -> None:
    scope = {"query_string": b"slots=hero,recs&path=%2Fa%3Fb%3D1&slots=x&explain="}
    assert query_of(scope) == {"slots": "hero,recs", "path": "/a?b=1", "explain": ""}
    assert query_of(scope) is query_of(scope)  # parsed once


def test_cookies_are_read_leniently_like_starlette_does() -> None:
    headers = headers_of(
        {"headers": [(b"cookie", b'_ga=GA1.2.3; weird="a b; pz_uid=abc.def'), (b"x-a", b"1")]}
    )
    assert headers["x-a"] == "1"
    assert cookie_of(headers, "pz_uid") == "abc.def"  # a malformed neighbour does not hide it
    assert cookie_of({}, "pz_uid") is None


def test_context_reads_only_what_the_rules_use() -> None:
    reader = ContextReader(
        ContextSettings(country_header="x-country", default_country="DE", timezone="Europe/Berlin")
    )
    headers = {"x-country": "ch", "user-agent": "Mozilla/5.0 (Linux; Android 14) Mobile"}
    page = "/sale/shoes?utm_source=news&utm_campaign=spring"
    context = reader.read(
        frozenset({"country", "device", "path", "utm_campaign", "hour"}), headers, page, "", 0
    )
    assert context["country"] == "CH" and context["device"] == "mobile" and context["path"] == "/sale/shoes"
    assert context["utm_campaign"] == "spring" and context["hour"] == 1  # midnight UTC is 1:00 in Berlin
    assert reader.read(frozenset({"country"}), {"x-country": "Germany"}, "/", "", 0) == {"country": "DE"}
    assert reader.read(frozenset(), headers, page, "", 0) == {}
    ref = reader.read(frozenset({"referrer"}), {}, "/", "https://www.google.com/search?q=x", 0)
    assert ref == {"referrer": "www.google.com"}


def test_period_starts_follow_the_sites_calendar_and_clock_changes() -> None:
    berlin = ContextReader(ContextSettings(timezone="Europe/Berlin"))
    # Wednesday 2026-03-04 10:30 in Berlin (UTC+1)
    now = datetime(2026, 3, 4, 10, 30, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    starts = berlin.read(frozenset({PERIOD_STARTS}), {}, "/", "", now)[PERIOD_STARTS]
    assert starts == {
        "hour": int(datetime(2026, 3, 4, 10, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()),
        "day": int(datetime(2026, 3, 4, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()),
        "week": int(datetime(2026, 3, 2, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()),  # Monday
    }
    # the day the clocks go forward is 23 hours long: local midnight, not now - 24 h
    after = datetime(2026, 3, 29, 12, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    day = period_starts(after, ZoneInfo("Europe/Berlin"))["day"]
    assert after - day == 11 * 3600
    assert berlin.read(frozenset({"country"}), {}, "/", "", now).get(PERIOD_STARTS) is None  # only if used


def test_headers_named_in_connection_and_personalization_headers_in_any_spelling_stay_behind() -> None:
    from edge_worker.forwarding import ClientSide, ForwardingPolicy

    raw = [
        (b"host", b"shop.example"),
        (b"connection", b"keep-alive, X-Secret-Hop"),
        (b"x-secret-hop", b"for the next hop only"),
        (b"x-pz-segments", b"vip"),
        (b"x_pz_segments", b"vip"),
        (b"X_Pz_Variant", b"b"),
        (b"x-country", b"DE"),
        (b"accept", b"text/html"),
    ]
    policy = ForwardingPolicy("http://127.0.0.1:9000")
    client = ClientSide("203.0.113.7", "https", "shop.example", trusted_peer=False)
    forwarded = dict(policy.request_headers(raw, client, strip=frozenset({"x-country"})))
    assert forwarded == {
        "accept": "text/html",
        "host": "shop.example",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-host": "shop.example",
        "x-forwarded-proto": "https",
        "forwarded": 'for=203.0.113.7;host="shop.example";proto=https',
    }
