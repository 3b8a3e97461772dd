"""The windows the rules declare decide how long the aggregator keeps each kind of event."""

from __future__ import annotations

import redis.asyncio as redis

from aggregator.config import AggregatorConfig
from aggregator.pipeline import Pipeline
from aggregator.state_store import StateStore
from schemas.rules import load_rules_text
from schemas.rules.horizons import SESSION_HORIZON_S, horizons

LONG_VIEWS = """
version: long-1
segments:
  browsed_today: views(within=1d) >= 3
slots:
  recs:
    rules:
      - when: browsed_today
        recommend: recently_viewed(within=2d)
      - when: carts(within=2h) >= 1
        headers: {X-Cart: "1"}
    default:
      recommend: popular()
"""


def test_each_kind_needs_the_longest_window_that_looks_at_it() -> None:
    assert horizons(load_rules_text(LONG_VIEWS)) == {"view": 2 * 86_400, "cart": 7200, "purchase": 0}
    sessions = LONG_VIEWS.replace("carts(within=2h) >= 1", "session_views(gap=20m) >= 4").replace(
        "long-1", "s-1"
    )
    assert horizons(load_rules_text(sessions)) == {
        "view": 2 * 86_400,
        "cart": SESSION_HORIZON_S,
        "purchase": SESSION_HORIZON_S,
    }


def test_the_aggregator_stretches_its_horizons_to_the_rules_in_force_and_back_to_its_own() -> None:
    rules = [load_rules_text(LONG_VIEWS)]
    config = AggregatorConfig(window_s=600, cart_window_s=86_400, purchase_window_s=86_400)
    pipeline = Pipeline(config, StateStore(redis.Redis(), 60), lambda: rules[0])
    first = pipeline._window_settings()  # noqa: SLF001 - what the next batch will use
    assert (first.horizon_s("view"), first.horizon_s("cart"), first.horizon_s("purchase")) == (
        172_800,
        86_400,
        86_400,
    )
    rules[0] = load_rules_text(
        "version: small-1\nslots:\n  recs:\n    default:\n      recommend: popular()\n"
    )
    second = pipeline._window_settings()  # noqa: SLF001
    assert second.horizon_s("view") == 600  # back to what was configured once the rules no longer need more


def test_a_tumbling_window_needs_its_whole_period() -> None:
    weekly = LONG_VIEWS.replace("carts(within=2h) >= 1", "this_period(purchase, week) >= 1").replace(
        "long-1", "w-1"
    )
    assert horizons(load_rules_text(weekly))["purchase"] == 7 * 86_400
