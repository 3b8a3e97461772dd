"""Same-run baselines for `pz bench decide`: one flag evaluation with equivalent targeting in the
GrowthBook Python SDK and in the LaunchDarkly Python server SDK (its TestData source: no network).

The targeting, in both: segments contain cart_abandoner and country in [DE, AT, CH] → "banner";
else device == mobile → "compact"; else "default". Each evaluation gets a fresh set of attributes,
as a request would.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

ATTRIBUTE_SETS = [
    {"id": "u1", "segments": ["cart_abandoner", "high_intent"], "country": "DE", "device": "desktop"},
    {"id": "u2", "segments": ["window_shopper"], "country": "US", "device": "mobile"},
    {"id": "u3", "segments": [], "country": "FR", "device": "desktop"},
    {"id": "u4", "segments": ["cart_abandoner"], "country": "CH", "device": "mobile"},
]
EXPECTED = ["banner", "compact", "default", "banner"]


def _time_us(evaluate: Callable[[dict[str, Any]], Any], rounds: int) -> float:
    for i, attributes in enumerate(ATTRIBUTE_SETS):  # the targeting is what we say it is
        assert evaluate(attributes) == EXPECTED[i], (evaluate(attributes), EXPECTED[i])
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for i in range(rounds):
            evaluate(ATTRIBUTE_SETS[i & 3])
        runs.append((time.perf_counter() - started) / rounds * 1e6)
    return statistics.median(runs)


def growthbook_eval_us(rounds: int) -> tuple[float, str]:
    from growthbook import GrowthBook

    features = {
        "hero": {
            "defaultValue": "default",
            "rules": [
                {
                    "condition": {
                        "segments": {"$elemMatch": {"$eq": "cart_abandoner"}},
                        "country": {"$in": ["DE", "AT", "CH"]},
                    },
                    "force": "banner",
                },
                {"condition": {"device": "mobile"}, "force": "compact"},
            ],
        }
    }

    def evaluate(attributes: dict[str, Any]) -> Any:
        # One instance per request, as its docs advise (destroy() clears the attributes it was given).
        gb = GrowthBook(attributes=dict(attributes), features=features)
        value = gb.get_feature_value("hero", "default")
        gb.destroy()
        return value

    return _time_us(evaluate, rounds), version("growthbook")


def launchdarkly_eval_us(rounds: int) -> tuple[float, str]:
    import ldclient
    from ldclient import Context
    from ldclient.config import Config
    from ldclient.integrations.test_data import TestData

    td = TestData.data_source()
    td.update(
        td.flag("hero")
        .variations("banner", "compact", "default")
        .fallthrough_variation(2)
        .if_match("segments", "cart_abandoner")
        .and_match("country", "DE", "AT", "CH")
        .then_return(0)
        .if_match("device", "mobile")
        .then_return(1)
    )
    client = ldclient.LDClient(Config("sdk-key", update_processor_class=td, send_events=False))
    try:

        def evaluate(attributes: dict[str, Any]) -> Any:
            context = (
                Context.builder(attributes["id"])
                .set("segments", attributes["segments"])
                .set("country", attributes["country"])
                .set("device", attributes["device"])
                .build()
            )
            return client.variation("hero", context, "default")

        return _time_us(evaluate, rounds), version("launchdarkly-server-sdk")
    finally:
        client.close()  # type: ignore[no-untyped-call]
