"""Hostile item ids and tokens rendered in Chromium, by pz.js and by the edge's injector: they stay
text, in their attributes, and nothing runs (no page error, no dialog)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, Dialog, Page, Route

from edge_worker.fragments import render_slot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

HOSTILE = [
    'x" onmouseover="alert(1)" data-x="',
    "y' onfocus='alert(2)' autofocus='",
    "</a><img src=x onerror=alert(3)>",
    "&lt;b&gt;&amp;",
    "<script>alert(4)</script>",
]
SITE = "http://shop.test"
PZ_JS = resources.files("edge_worker").joinpath("static/pz.js").read_bytes()


def watched(browser: Browser, page_html: bytes) -> tuple[Page, list[str]]:
    """A page of SITE with this HTML, pz.js and a /pz/decide answering with the hostile items;
    every page error and dialog is noted."""
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def dialog_opened(dialog: Dialog) -> None:
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", dialog_opened)
    decision = {"slots": {"recs": {"rule": "r", "items": [{"id": i, "token": i} for i in HOSTILE]}}}

    def serve(route: Route) -> None:
        url = route.request.url
        if url.startswith(f"{SITE}/pz/pz.js"):
            route.fulfill(body=PZ_JS, content_type="text/javascript")
        elif url.startswith(f"{SITE}/pz/decide"):
            route.fulfill(body=orjson.dumps(decision), content_type="application/json")
        elif url.startswith(f"{SITE}/pz/collect"):
            route.fulfill(status=204)
        elif url == f"{SITE}/":
            route.fulfill(body=page_html, content_type="text/html; charset=utf-8")
        else:
            route.fulfill(status=404, body=b"")

    page.route(f"{SITE}/**", serve)
    return page, problems


def links(page: Page) -> list[dict[str, Any]]:
    return list(
        page.eval_on_selector_all(
            "[data-pz-slot=recs] a.pz-item",
            "els => els.map(a => ({item: a.getAttribute('data-pz-item'),"
            " token: a.getAttribute('data-pz-token'), href: a.getAttribute('href'), text: a.textContent,"
            " attributes: a.attributes.length, imgs: a.querySelectorAll('img').length}))",
        )
    )


def test_pz_js_renders_hostile_ids_as_text(browser: Browser) -> None:
    html = (
        b'<!doctype html><html><body><div data-pz-slot="recs" data-pz-item-href="/p/{id}">old</div>'
        b'<script src="/pz/pz.js"></script></body></html>'
    )
    page, problems = watched(browser, html)
    try:
        page.goto(f"{SITE}/")
        page.wait_for_selector("html[data-pz-ready='1']", timeout=10_000)
        page.hover("[data-pz-slot=recs] a.pz-item")  # an onmouseover that got out would fire now
        found = links(page)
        assert [link["item"] for link in found] == HOSTILE
        assert [link["token"] for link in found] == HOSTILE
        assert [link["text"] for link in found] == HOSTILE  # shown as text, not markup
        assert all(link["attributes"] == 5 and link["imgs"] == 0 for link in found)  # nothing broke out
        assert problems == []
    finally:
        page.close()


def test_the_injectors_fragments_keep_hostile_ids_as_text(browser: Browser) -> None:
    decision = {"items": [{"id": i, "token": i} for i in HOSTILE]}
    fragment = render_slot(decision, {"data-pz-item-href": "/p/{id}"})
    assert fragment is not None
    html = b'<!doctype html><html><body><div data-pz-slot="recs">' + fragment + b"</div></body></html>"
    page, problems = watched(browser, html)
    try:
        page.goto(f"{SITE}/")
        page.hover("[data-pz-slot=recs] a.pz-item")
        found = links(page)
        assert [link["item"] for link in found] == HOSTILE
        assert [link["text"] for link in found] == HOSTILE
        assert all(link["attributes"] == 5 and link["imgs"] == 0 for link in found)
        assert problems == []
    finally:
        page.close()
