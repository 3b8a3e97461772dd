"""The reverse proxy fills placeholders in the shop's pages as they stream through."""

from __future__ import annotations

import time

import httpx
import pytest

from edge_worker.encodings import ORIGIN_ACCEPT_ENCODING
from edge_worker.fragments import render_slot
from pz.local_stack import LocalStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_pages_come_filled_gzip_reencoded_and_private(stack: LocalStack) -> None:
    with httpx.Client(base_url=stack.edge_url, timeout=5) as client:
        page = client.get("/category/books", headers={"accept": "text/html", "accept-encoding": "gzip"})
        assert page.status_code == 200
        assert page.headers["content-encoding"] == "gzip"
        assert "content-length" not in page.headers  # the body changed: chunked
        assert page.headers["cache-control"] == "private, no-store"
        assert "Welcome! Have a look around." in page.text  # the hero's default fragment, from the edge
        assert "Welcome to the pz demo shop." not in page.text  # the origin's placeholder content is gone
        plain = client.get("/category/books", headers={"accept": "text/html", "accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers and "Welcome! Have a look around." in plain.text


def test_br_from_the_origin_is_decoded_and_the_page_reencoded_as_the_client_asks(stack: LocalStack) -> None:
    origin = httpx.get(
        f"{stack.shop_url}/category/books",
        headers={"accept": "text/html", "accept-encoding": ORIGIN_ACCEPT_ENCODING},
    )
    assert origin.headers["content-encoding"] == "br"  # what the edge gets when it asks
    with httpx.Client(base_url=stack.edge_url, timeout=5) as client:
        for accepted, expected in (("br", "br"), ("gzip, br;q=0", "gzip"), ("br;q=0.5, gzip;q=0.9", "br")):
            page = client.get("/category/books", headers={"accept": "text/html", "accept-encoding": accepted})
            assert page.headers["content-encoding"] == expected, accepted
            assert "Welcome! Have a look around." in page.text  # decoded by httpx, filled by the edge


def test_a_reloaded_page_shows_what_three_views_changed_without_javascript(stack: LocalStack) -> None:
    with httpx.Client(base_url=stack.edge_url, timeout=5) as client:
        client.get("/")  # identity cookie
        for _ in range(3):
            view = {"type": "page_view", "item": "p0161", "category": "plants", "ts": int(time.time() * 1000)}
            assert client.post("/pz/collect", json=view).status_code == 202
        deadline = time.monotonic() + 20
        html = ""
        while "Still thinking about <b>p0161</b>" not in html and time.monotonic() < deadline:
            html = client.get("/category/toys", headers={"accept": "text/html"}).text
            time.sleep(0.05)
        assert "Still thinking about <b>p0161</b>" in html


def test_everything_that_is_not_an_html_page_passes_byte_for_byte(stack: LocalStack) -> None:
    for path, headers in (
        ("/img/p0001.svg", {}),
        ("/products.json", {"accept-encoding": "identity"}),
        ("/shop/healthz", {}),
    ):
        direct = httpx.get(f"{stack.shop_url}{path}", headers=headers)
        proxied = httpx.get(f"{stack.edge_url}{path}", headers=headers)
        assert proxied.status_code == direct.status_code == 200
        assert proxied.content == direct.content
        assert proxied.headers.get("cache-control") == direct.headers.get("cache-control")
    missing = httpx.get(f"{stack.edge_url}/product/nope", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "Welcome to the pz demo shop." in missing.text  # errors untouched
    head = httpx.head(f"{stack.edge_url}/category/books")
    assert head.status_code == 200 and head.content == b""


def test_rendered_items_are_escaped() -> None:
    decision = {"items": [{"id": 'x"><script>alert(1)</script>'}]}
    html = render_slot(decision, {"data-pz-item-href": "/p/{id}", "data-pz-item-img": "/i/{id}.svg"})
    assert html is not None and b"<script>" not in html
    assert b"&quot;&gt;&lt;script&gt;" in html and b"/p/x%22%3E%3Cscript%3E" in html
    assert render_slot({"items": []}, {}) is None  # nothing to show: the origin's content stays
    assert render_slot(None, {}) is None


def test_the_origin_gets_segments_variant_and_a_bounded_bucket_never_the_clients(stack: LocalStack) -> None:
    spoofed = {"x-pz-variant": "recs=vip", "x-pz-bucket": "99", "x-pz-segments": "admin"}
    with httpx.Client(base_url=stack.edge_url, timeout=5) as other:  # another toy is popular
        view = {"type": "page_view", "item": "p0202", "category": "toys", "ts": int(time.time() * 1000)}
        assert other.post("/pz/collect", json=view).status_code == 202
    with httpx.Client(base_url=stack.edge_url, timeout=5) as client:
        seen = client.get("/shop/headers", headers=spoofed).json()
        # a fresh visitor: the default hero, and whatever is popular so far, nothing similar yet
        hero, recs = seen["x-pz-variant"].split(";")
        assert hero == "hero=default" and recs.startswith("recs=") and recs != "recs=similar_to_recent"
        assert seen["x-pz-segments"] == "" and 0 <= int(seen["x-pz-bucket"]) < 16
        for _ in range(3):
            view = {"type": "page_view", "item": "p0201", "category": "toys", "ts": int(time.time() * 1000)}
            assert client.post("/pz/collect", json=view).status_code == 202
        deadline = time.monotonic() + 20
        while (
            seen["x-pz-variant"] != "hero=similar_to_recent;recs=similar_to_recent"
            and time.monotonic() < deadline
        ):
            seen = client.get("/shop/headers", headers=spoofed).json()
            time.sleep(0.05)
        assert seen["x-pz-variant"] == "hero=similar_to_recent;recs=similar_to_recent"
        page = client.get("/product/p0001", headers={"accept": "text/html"}).text
        assert (
            "variant <code>hero=similar_to_recent;recs=similar_to_recent</code>" in page
        )  # the shop used it


def test_a_decision_over_its_budget_gives_each_slot_its_default(stack: LocalStack) -> None:
    edge = stack.add_edge("edge-no-budget", extra_env={"PZ_DECISION_BUDGET_MS": "0"})
    page = httpx.get(f"{edge}/category/books", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "Welcome! Have a look around." in page.text  # the hero's default fragment
    assert "Welcome to the pz demo shop." not in page.text
    assert 'id="recs" data-pz-slot="recs"' in page.text  # recs' default shows nothing: the origin's stays
    assert "pz_edge_decisions_over_budget_total 1.0" in httpx.get(f"{edge}/metrics").text
    decided = httpx.get(f"{edge}/pz/decide", params={"slots": "hero,recs"}).json()["slots"]
    assert (
        decided == {"hero": decided["hero"], "recs": {"rule": "default"}}
        and decided["hero"]["rule"] == "default"
    )
