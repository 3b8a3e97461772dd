"""The demo shop's own rules (pz/demo_shop/rules.yaml), in headless Chromium through the edge: the
brief's rule, the mobile hero, the 50/50 hero experiment and the cart-abandoner banner for DACH.

The one change to the file: a cart counts as abandoned after 2 s instead of the demo's minute."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from pz.local_stack import LocalStack, demo_rules_file
from tests.browser_helpers import open_page, view_a_lamp_three_times
from tests.conftest import running_stack

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(180)]
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = Path(tmp_path_factory.mktemp("demo-rules"))
    rules = state / "rules.yaml"
    text = demo_rules_file().read_text()
    assert "since_last(cart) >= 1m" in text
    rules.write_text(text.replace("since_last(cart) >= 1m", "since_last(cart) >= 2s"))
    with running_stack(state, rules_file=rules, default_country="DE") as local:  # as `pz up` runs the demo
        yield local


def hero(page: Page) -> str:
    return page.inner_text("[data-pz-slot=hero]")


def test_a_desktop_visitor_is_in_the_hero_experiment_and_stays_in_its_variant(
    demo_stack: LocalStack, browser: Browser
) -> None:
    both = {"Welcome! Have a look around.", "New season, new finds: have a look."}
    seen: set[str] = set()
    visitors = 0
    while seen != both and visitors < 40:  # new visitors until both variants showed (50/50: a few)
        visitors += 1
        page = browser.new_context().new_page()
        open_page(page, f"{demo_stack.edge_url}/")
        assert page.get_attribute("[data-pz-slot=hero]", "data-pz-rule") == "hero test"
        first = hero(page)
        open_page(page, f"{demo_stack.edge_url}/category/lamps")
        assert hero(page) == first  # each visitor keeps theirs
        seen.add(first)
        page.context.close()
    assert seen == both, f"after {visitors} visitors only {seen}"


def test_a_mobile_visitor_gets_the_compact_hero(demo_stack: LocalStack, browser: Browser) -> None:
    page = browser.new_context(
        user_agent=IPHONE, is_mobile=True, viewport={"width": 390, "height": 844}
    ).new_page()
    open_page(page, f"{demo_stack.edge_url}/")
    assert hero(page) == "New in: tap to explore"
    assert page.get_attribute("[data-pz-slot=hero]", "data-pz-rule") == "mobile hero"
    page.context.close()


def test_three_views_lead_with_similar_items_and_an_abandoned_cart_brings_the_banner(
    demo_stack: LocalStack, browser: Browser
) -> None:
    page = browser.new_context().new_page()
    view_a_lamp_three_times(page, demo_stack.edge_url)
    for _ in range(60):
        open_page(page, f"{demo_stack.edge_url}/category/shoes")
        if page.get_attribute("#recs", "data-pz-rule") == "viewed a product 3 times in 10 minutes":
            break
        page.wait_for_timeout(100)
    assert page.get_attribute("#recs", "data-pz-rule") == "viewed a product 3 times in 10 minutes"
    assert "p0125" in hero(page)
    assert page.inner_text("#banner") == ""  # nothing in the cart yet

    open_page(page, f"{demo_stack.edge_url}/product/p0125")
    page.click("button[data-pz-event=add_to_cart]")  # the beacon, then the cart page
    page.wait_for_url("**/cart")
    for _ in range(80):  # 2 s must pass after the cart event before the banner applies
        open_page(page, f"{demo_stack.edge_url}/")
        if "Your cart misses you" in page.inner_text("#banner"):
            break
        page.wait_for_timeout(100)
    assert "Your cart misses you" in page.inner_text("#banner")

    open_page(page, f"{demo_stack.edge_url}/cart")
    page.click("#checkout")  # the purchase beacon: no longer an abandoned cart
    page.wait_for_selector("text=Thank you for your order!")
    for _ in range(80):
        open_page(page, f"{demo_stack.edge_url}/")
        if page.inner_text("#banner") == "":
            break
        page.wait_for_timeout(100)
    assert page.inner_text("#banner") == ""
    page.context.close()
