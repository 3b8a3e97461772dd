"""Rules from a file to every decision: published in snapshots, hot-reloaded from the file and from
`PUT /admin/rules`, refused when invalid (the old rules keep serving), explained to admins only,
experiments logged as exposures, request context honoured, rule headers forwarded to the origin."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pz.local_stack import LocalStack
from schemas.event_codec import decode_event
from schemas.topics import EXPOSURE_TOPIC
from tests.conftest import running_stack
from tests.kafka_helpers import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MOBILE = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"}

RULES_V1 = """
version: v1
fragments:
  welcome: '<p>welcome v1</p>'
  compact: '<p>compact</p>'
  a: '<p>variant a</p>'
  b: '<p>variant b</p>'
  promo: '<p>promo for DACH</p>'
experiments:
  hero_test: {variants: {a: 50, b: 50}}
slots:
  hero:
    default: {fragment: welcome}
    rules:
      - name: mobile hero
        when: device == "mobile"
        fragment: compact
      - name: hero test
        when: country == "US"
        experiment: hero_test
        variants: {a: a, b: b}
  banner:
    rules:
      - name: dach promo
        when: country in ["DE", "AT", "CH"]
        fragment: promo
        headers: {X-Pz-Promo: dach}
"""


@pytest.fixture(scope="module")
def rules_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    state = Path(tmp_path_factory.mktemp("rules-stack"))
    rules = state / "rules.yaml"
    rules.write_text(RULES_V1)
    with running_stack(
        state,
        snapshot_interval_s=30.0,  # rules changes must not wait for the schedule
        rules_file=rules,
        # Edges poll snapshots every 30 s here: rules changes must come through pz.rules.
        extra_env={"PZ_ADMIN_TOKEN": TOKEN, "PZ_RULES_POLL_S": "0.2", "PZ_SNAPSHOT_POLL_S": "30"},
    ) as local:
        yield local, rules


def decide(url: str, slots: str = "hero,banner", headers: dict[str, str] | None = None, **params: str) -> Any:
    response = httpx.get(f"{url}/pz/decide", params={"slots": slots, **params}, headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_version(url: str, version: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = decide(url)["sync"]["rules_version"]
        if seen == version:
            return
        time.sleep(0.1)
    raise AssertionError(f"edge still decides with rules {seen!r}, not {version!r}")


def test_decisions_follow_the_rules_file_and_the_request_context(
    rules_stack: tuple[LocalStack, Path],
) -> None:
    stack, _ = rules_stack
    wait_for_version(stack.edge_url, "v1")
    assert decide(stack.edge_url)["slots"]["hero"]["html"] == "<p>welcome v1</p>"
    assert decide(stack.edge_url, headers=MOBILE)["slots"]["hero"]["rule"] == "mobile hero"
    assert (
        decide(stack.edge_url, headers={"Sec-CH-UA-Mobile": "?1"})["slots"]["hero"]["html"]
        == "<p>compact</p>"
    )
    german = decide(stack.edge_url, headers={"CF-IPCountry": "de"})["slots"]
    assert german["banner"]["rule"] == "dach promo" and german["banner"]["headers"] == {"X-Pz-Promo": "dach"}
    assert decide(stack.edge_url, headers={"CF-IPCountry": "FR"})["slots"]["banner"] == {"rule": "default"}
    unknown = decide(stack.edge_url, slots="hero,sidebar")
    assert "sidebar" not in unknown["slots"] and "no such slot" in unknown["skipped"]["sidebar"]
    bad = httpx.get(f"{stack.edge_url}/pz/decide", params={"slots": "Hero!"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["field"] == "slots"


def test_an_experiment_is_sticky_and_every_exposure_is_logged(rules_stack: tuple[LocalStack, Path]) -> None:
    stack, _ = rules_stack
    seen: dict[str, str] = {}
    with httpx.Client(base_url=stack.edge_url, headers={"CF-IPCountry": "US"}, timeout=5) as visitor:
        first = visitor.get("/pz/decide", params={"slots": "hero"}).json()["slots"]["hero"]
        assert first["experiment"] == "hero_test" and first["variant"] in ("a", "b")
        for _ in range(5):  # the same cookie, the same variant
            again = visitor.get("/pz/decide", params={"slots": "hero"}).json()["slots"]["hero"]
            assert again["variant"] == first["variant"]
        seen[first["variant"]] = first["html"]

    def six_exposures(records: list[tuple[object, bytes]]) -> bool:
        events = [decode_event(value) for _, value in records]
        mine = [e for e in events if e.attribution and e.attribution.variant == first["variant"]]
        return len(mine) >= 6

    records = asyncio.run(read_topic(stack.kafka_bootstrap, EXPOSURE_TOPIC, six_exposures))
    event = decode_event(records[-1][1])
    assert event.type == "exposure" and event.attribution is not None
    assert (event.attribution.experiment, event.attribution.slot) == ("hero_test", "hero")


def test_explanations_are_for_admins_only(rules_stack: tuple[LocalStack, Path]) -> None:
    stack, _ = rules_stack
    refused = httpx.get(f"{stack.edge_url}/pz/decide", params={"slots": "hero", "explain": "1"}, timeout=5)
    assert refused.status_code == 403 and refused.json()["field"] == "explain"
    wrong = httpx.get(
        f"{stack.edge_url}/pz/decide",
        params={"slots": "hero", "explain": "1"},
        headers={"Authorization": "Bearer nope"},
        timeout=5,
    )
    assert wrong.status_code == 403
    report = decide(stack.edge_url, "hero,banner", headers={**AUTH, "CF-IPCountry": "US"}, explain="1")[
        "explain"
    ]
    tried = report["slots"]["hero"]["tried"]
    assert tried[0] == {
        "rule": "mobile hero",
        "when": 'device == "mobile"',
        "because": ["device is 'desktop': device == \"mobile\" does not hold"],
        "matched": False,
    }
    assert tried[1]["matched"] is True and report["experiments"]["hero_test"] in ("a", "b")
    assert report["slots"]["banner"]["chosen"] == "default"


def test_rule_headers_reach_the_origin_and_clients_cannot_forge_them(
    rules_stack: tuple[LocalStack, Path],
) -> None:
    stack, _ = rules_stack
    forged = {"X-Pz-Promo": "forged", "CF-IPCountry": "FR"}
    echoed = httpx.get(f"{stack.edge_url}/shop/headers", headers=forged, timeout=5).json()
    assert "x-pz-promo" not in echoed
    german = httpx.get(f"{stack.edge_url}/shop/headers", headers={"CF-IPCountry": "CH"}, timeout=5).json()
    assert german["x-pz-promo"] == "dach"
    assert "banner=dach promo" in german["x-pz-variant"]


def test_a_changed_file_goes_live_and_an_invalid_one_is_refused(rules_stack: tuple[LocalStack, Path]) -> None:
    stack, rules = rules_stack
    aggregator_pid = stack.processes["aggregator"].pid
    rules.write_text(RULES_V1.replace("version: v1", "version: v2").replace("welcome v1", "welcome v2"))
    wait_for_version(stack.edge_url, "v2", timeout_s=5)  # well before the next snapshot poll
    assert decide(stack.edge_url)["slots"]["hero"]["html"] == "<p>welcome v2</p>"
    assert stack.processes["aggregator"].pid == aggregator_pid  # no restart

    rules.write_text(
        RULES_V1.replace("version: v1", "version: v3").replace("fragment: compact", "fragment: nope")
    )
    deadline = time.monotonic() + 5
    rejected = 0.0
    while rejected < 1 and time.monotonic() < deadline:
        metrics = httpx.get(f"{stack.aggregator_url}/metrics", timeout=5).text
        rejected = sum(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith('pz_aggregator_rules_rejected_total{source="file"}')
        )
        time.sleep(0.1)
    assert rejected >= 1
    ready = httpx.get(f"{stack.aggregator_url}/readyz", timeout=5).json()
    assert ready["rules_version"] == "v2"  # the old rules keep serving
    assert decide(stack.edge_url)["sync"]["rules_version"] == "v2"


def test_admins_can_put_rules_and_get_every_problem_back(rules_stack: tuple[LocalStack, Path]) -> None:
    stack, _ = rules_stack
    url = f"{stack.aggregator_url}/admin/rules"
    assert httpx.put(url, content=RULES_V1, timeout=5).status_code == 401
    invalid = httpx.put(
        url, content="slots:\n  hero:\n    default: {fragment: nope}\n", headers=AUTH, timeout=5
    )
    assert invalid.status_code == 422
    assert invalid.json()["problems"] == [
        {
            "line": 3,
            "column": 25,
            "path": "slots/hero/default/fragment",
            "message": "unknown fragment 'nope' (known: )",
        }
    ]
    sent = time.perf_counter()
    accepted = httpx.put(
        url, content=RULES_V1.replace("version: v1", "version: v9"), headers=AUTH, timeout=10
    )
    assert accepted.status_code == 200 and accepted.json()["version"] == "v9"
    wait_for_version(stack.edge_url, "v9", timeout_s=10)
    print(f"\nPUT /admin/rules -> the edge decides with them: {(time.perf_counter() - sent) * 1000:.0f} ms")
    current = httpx.get(url, headers=AUTH, timeout=5)
    assert current.status_code == 200 and current.json()["version"] == "v9"
