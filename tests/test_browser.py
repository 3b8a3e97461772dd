"""The demo shop in headless Chromium, through the edge: pz.js beacons change what the next page shows."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from pz.local_stack import LocalStack
from tests.browser_helpers import open_page, view_a_lamp_three_times

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(120)]


def test_viewing_a_product_three_times_changes_the_recommendations_on_the_next_page(
    stack: LocalStack, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    open_page(page, f"{stack.edge_url}/")
    # a fresh visitor: whatever the shared stack made popular so far, nothing similar yet
    assert page.get_attribute("#recs", "data-pz-rule") != "similar_to_recent"
    view_a_lamp_three_times(page, stack.edge_url)
    # The third beacon travels edge -> Kafka -> aggregator -> Kafka -> edge: milliseconds, but not zero.
    for _ in range(50):
        open_page(page, f"{stack.edge_url}/category/shoes")
        shown = page.eval_on_selector_all("#recs a.pz-item", "els => els.map(e => e.dataset.pzItem)")
        # the rule flips with the delta; the lamps' popularity comes with the next snapshot (1 s here)
        if page.get_attribute("#recs", "data-pz-rule") == "similar_to_recent" and {"p0121", "p0122"} <= set(
            shown
        ):
            break
        page.wait_for_timeout(100)
    assert page.get_attribute("#recs", "data-pz-rule") == "similar_to_recent"
    assert "p0125" in (page.inner_text("[data-pz-slot=hero]") or "")
    assert {"p0121", "p0122"} <= set(shown) and "p0125" not in shown
    page.screenshot(path=str(stack.options.state_dir / "recs.png"), full_page=True)

    # The same visitor with JavaScript off: the edge filled the slots while proxying the page.
    no_script = browser.new_context(java_script_enabled=False)
    no_script.add_cookies(
        [{"name": c["name"], "value": c["value"], "url": stack.edge_url} for c in context.cookies()]
    )
    static = no_script.new_page()
    # A page decision over its 5 ms budget keeps the placeholders' content (a slow moment of the
    # machine): then a reload, as a visitor would.
    for _ in range(5):
        static.goto(f"{stack.edge_url}/category/books")
        injected = static.eval_on_selector_all("#recs a.pz-item", "els => els.map(e => e.dataset.pzItem)")
        if "p0125" in static.inner_text("[data-pz-slot=hero]") and {"p0121", "p0122"} <= set(injected):
            break
    assert "p0125" in static.inner_text("[data-pz-slot=hero]")
    assert {"p0121", "p0122"} <= set(injected)
    static.screenshot(path=str(stack.options.state_dir / "recs-no-js.png"), full_page=True)
    no_script.close()
    context.close()


def test_a_visitor_with_global_privacy_control_sends_nothing(stack: LocalStack, browser: Browser) -> None:
    context = browser.new_context()
    context.add_init_script("Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})")
    page = context.new_page()
    sent: list[str] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.url) if "/pz/collect" in request.url or "/pz/decide" in request.url else None
        ),
    )
    page.goto(f"{stack.edge_url}/product/p0001")
    page.wait_for_load_state("networkidle")
    page.click("button[data-pz-event=add_to_cart]")
    page.wait_for_load_state("networkidle")
    assert sent == []
    assert page.evaluate("window.pz.optedOut()") is True
    context.close()
