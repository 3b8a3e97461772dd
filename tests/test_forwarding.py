"""The proxy's header policy, both ways, and which responses may carry the identity cookie."""

from __future__ import annotations

import pytest

from edge_worker.config import EdgeConfig
from edge_worker.forwarding import ForwardingPolicy, parse_trusted_proxies, shared_cacheable
from schemas.settings import ConfigError

ORIGIN = "http://10.0.0.5:8081"
RAW = [
    (b"host", b"shop.example"),
    (b"x-forwarded-for", b"198.51.100.1"),
    (b"x-forwarded-proto", b"https"),
    (b"x-forwarded-host", b"www.shop.example"),
    (b"forwarded", b"for=198.51.100.1;proto=https"),
]


def test_a_trusted_cdn_keeps_the_chain_and_an_untrusted_peer_starts_it_over() -> None:
    policy = ForwardingPolicy(ORIGIN, trusted_proxies=parse_trusted_proxies("203.0.113.0/24, 2001:db8::/32"))
    headers = {k.decode(): v.decode() for k, v in RAW}
    cdn = policy.client_side(headers, "203.0.113.9", "http")
    assert (cdn.proto, cdn.host, cdn.trusted_peer) == ("https", "www.shop.example", True)
    sent = dict(policy.request_headers(RAW, cdn, frozenset()))
    assert sent["x-forwarded-for"] == "198.51.100.1, 203.0.113.9"
    assert (
        sent["forwarded"]
        == 'for=198.51.100.1;proto=https, for=203.0.113.9;host="www.shop.example";proto=https'
    )
    assert sent["host"] == "shop.example"

    stranger = policy.client_side(headers, "2001:db9::1", "http")
    assert (stranger.proto, stranger.host, stranger.trusted_peer) == ("http", "shop.example", False)
    sent = dict(policy.request_headers(RAW, stranger, frozenset()))
    assert sent["x-forwarded-for"] == "2001:db9::1"
    assert sent["forwarded"] == 'for="[2001:db9::1]";host="shop.example";proto=http'
    assert sent["x-forwarded-proto"] == "http" and sent["x-forwarded-host"] == "shop.example"

    pinned = ForwardingPolicy(ORIGIN, origin_host="origin.internal")
    assert dict(pinned.request_headers(RAW, stranger, frozenset()))["host"] == "origin.internal"


def test_response_urls_naming_the_origin_move_to_the_public_address() -> None:
    policy = ForwardingPolicy(ORIGIN)
    client = policy.client_side({"host": "shop.example"}, "198.51.100.1", "https")
    out = dict(
        policy.response_headers(
            [
                (b"Location", b"http://10.0.0.5:8081/cart?x=1"),
                (b"content-location", b"HTTP://10.0.0.5:8081"),
                (b"refresh", b"5; url=http://10.0.0.5:8081/next"),
                (b"link", b"<http://10.0.0.5:8081/a>; rel=preload"),  # not a redirect: left alone
            ],
            client,
        )
    )
    assert out[b"location"] == b"https://shop.example/cart?x=1"
    assert out[b"content-location"] == b"https://shop.example"
    assert out[b"refresh"] == b"5; url=https://shop.example/next"
    assert out[b"link"] == b"<http://10.0.0.5:8081/a>; rel=preload"
    for other in (
        b"http://10.0.0.5:8082/x",
        b"http://10.0.0.5:80811/x",
        b"/relative",
        b"https://cdn.example/",
    ):
        assert dict(policy.response_headers([(b"location", other)], client))[b"location"] == other
    public = ForwardingPolicy(ORIGIN, public_url="https://www.shop.example")
    assert dict(public.response_headers([(b"location", b"http://10.0.0.5:8081/a")], client))[b"location"] == (
        b"https://www.shop.example/a"
    )


def test_hop_by_hop_headers_and_those_connection_names_stay_behind_and_server_is_configurable() -> None:
    raw = [
        (b"connection", b"close, x-internal"),
        (b"x-internal", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"date", b"Thu, 03 Dec 2026 10:00:00 GMT"),
        (b"date", b"Thu, 03 Dec 2026 10:00:01 GMT"),
        (b"server", b"nginx/1.22"),
        (b"content-type", b"text/html"),
    ]
    client = ForwardingPolicy(ORIGIN).client_side({}, "198.51.100.1", "http")
    assert ForwardingPolicy(ORIGIN).response_headers(raw, client) == [
        (b"date", b"Thu, 03 Dec 2026 10:00:00 GMT"),
        (b"server", b"nginx/1.22"),
        (b"content-type", b"text/html"),
    ]
    named = ForwardingPolicy(ORIGIN, server_header="pz").response_headers(raw, client)
    assert [v for k, v in named if k == b"server"] == [b"pz"]


@pytest.mark.parametrize(
    ("headers", "status", "cacheable"),
    [
        ([(b"cache-control", b"public, max-age=86400")], 200, True),
        ([(b"etag", b'"x"')], 200, True),  # heuristically fresh: a shared cache may keep it
        ([(b"last-modified", b"Thu, 03 Dec 2026 10:00:00 GMT")], 404, True),
        ([(b"expires", b"Thu, 03 Dec 2026 10:00:00 GMT")], 302, True),
        ([(b"cache-control", b"s-maxage=60")], 200, True),
        ([(b"cache-control", b"private, max-age=60")], 200, False),
        ([(b"cache-control", b"no-store")], 200, False),
        ([(b"etag", b'"x"')], 302, False),  # not cacheable by default, and nothing says otherwise
        ([], 200, False),
    ],
)
def test_which_responses_a_shared_cache_may_store(
    headers: list[tuple[bytes, bytes]], status: int, cacheable: bool
) -> None:
    assert shared_cacheable(headers, status) is cacheable


def test_bad_proxy_settings_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="PZ_TRUSTED_PROXIES: 'cdn.example' is not an IP"):
        EdgeConfig.from_env({"PZ_TRUSTED_PROXIES": "10.0.0.0/8, cdn.example"})
    with pytest.raises(ConfigError, match="PZ_PUBLIC_URL='shop.example'"):
        EdgeConfig.from_env({"PZ_PUBLIC_URL": "shop.example"})
    with pytest.raises(ConfigError, match="PZ_ORIGIN_URL='http://x:port'"):
        EdgeConfig.from_env({"PZ_ORIGIN_URL": "http://x:port"})
    config = EdgeConfig.from_env(
        {"PZ_TRUSTED_PROXIES": "10.0.0.0/8,::1", "PZ_PUBLIC_URL": "https://a.example/"}
    )
    assert len(config.trusted_proxies) == 2 and config.public_url == "https://a.example"
