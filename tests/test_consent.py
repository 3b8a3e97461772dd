"""Consent at the edge: a visitor without it (GPC; no consent cookie under PZ_CONSENT=required) gets
pages and decisions, and nothing about them is kept: no identity cookie, no event in Kafka, no
exposure. Checked through the product: the proxy, /pz/decide, /pz/collect, the topics, /metrics."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from edge_worker.consent import ConsentPolicy
from pz.local_stack import LocalStack, demo_rules_file
from schemas import decode_event
from schemas.topics import event_topic
from tests.conftest import running_stack
from tests.kafka_helpers import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HTML = {"accept": "text/html"}
GPC = {"sec-gpc": "1"}


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack with the demo shop's rules: its hero test exposes every visitor it decides for."""
    with running_stack(tmp_path_factory.mktemp("consent"), rules_file=demo_rules_file()) as local:
        yield local


@pytest.fixture(scope="module")
def strict_edge(demo_stack: LocalStack) -> str:
    """A second edge that requires consent, read from a CMP's cookie `cmp_ok`."""
    return demo_stack.add_edge(
        "edge-consent-required", extra_env={"PZ_CONSENT": "required", "PZ_CONSENT_COOKIE": "cmp_ok"}
    )


def counter(edge: str, name: str, labels: str = "") -> float:
    text = httpx.get(f"{edge}/metrics", timeout=10).text
    found = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def beacon(client: httpx.Client, item: str, **extra: dict[str, str]) -> httpx.Response:
    event = {"type": "page_view", "item": item, "category": "consent", "ts": int(time.time() * 1000)}
    return client.post("/pz/collect", json=event, **extra)  # type: ignore[arg-type]


def test_without_consent_pages_and_decisions_come_and_nothing_is_kept(
    demo_stack: LocalStack, strict_edge: str
) -> None:
    run = secrets.token_hex(4)
    refused_before = counter(strict_edge, "pz_edge_events_without_consent_total")
    exposed_before = counter(strict_edge, "pz_edge_exposures_total", '{experiment="hero_test"}')
    with httpx.Client(base_url=strict_edge, timeout=10) as anonymous:
        page = anonymous.get("/", headers=HTML)
        assert page.status_code == 200 and "set-cookie" not in page.headers
        assert "Welcome! Have a look around." in page.text  # every experiment's holdout: the default hero
        decided = anonymous.get("/pz/decide", params={"slots": "hero,recs", "path": "/"})
        assert decided.status_code == 200 and "set-cookie" not in decided.headers
        assert "variant" not in decided.json()["slots"]["hero"]
        refused = beacon(anonymous, f"nogo-{run}")
        assert refused.status_code == 204 and "set-cookie" not in refused.headers
        # GPC wins over a consent cookie
        gpc = beacon(anonymous, f"nogo-gpc-{run}", headers={**GPC, "cookie": "cmp_ok=granted"})
        assert gpc.status_code == 204 and "set-cookie" not in gpc.headers
    assert counter(strict_edge, "pz_edge_events_without_consent_total") == refused_before + 2
    assert counter(strict_edge, "pz_edge_exposures_total", '{experiment="hero_test"}') == exposed_before

    with httpx.Client(base_url=strict_edge, timeout=10, cookies={"cmp_ok": "granted"}) as consenting:
        page = consenting.get("/", headers=HTML)  # the positive control: a consenting visitor is kept
        assert page.status_code == 200 and "pz_uid" in page.cookies
        accepted = beacon(consenting, f"go-{run}")
        assert accepted.status_code == 202
    assert counter(strict_edge, "pz_edge_exposures_total", '{experiment="hero_test"}') == exposed_before + 1

    # The consenting visitor's event was sent after the others, through the same edge: once it is in
    # Kafka, theirs would be too.
    def items(records: list[tuple[object, bytes]]) -> list[str]:
        return [decode_event(value).item for _, value in records]

    records = asyncio.run(
        read_topic(demo_stack.kafka_bootstrap, event_topic("page_view"), lambda r: f"go-{run}" in items(r))
    )
    assert not [
        item for item in items(records) if item.startswith(f"nogo-{run}") or item == f"nogo-gpc-{run}"
    ]


def test_global_privacy_control_is_honoured_by_default(demo_stack: LocalStack) -> None:
    exposed_before = counter(demo_stack.edge_url, "pz_edge_exposures_total", '{experiment="hero_test"}')
    with httpx.Client(base_url=demo_stack.edge_url, timeout=10, headers=GPC) as gpc:
        page = gpc.get("/", headers=HTML)
        assert page.status_code == 200 and "set-cookie" not in page.headers
        decided = gpc.get("/pz/decide", params={"slots": "hero", "path": "/"})
        assert decided.status_code == 200 and "set-cookie" not in decided.headers
        assert beacon(gpc, "gpc-item").status_code == 204
    assert (
        counter(demo_stack.edge_url, "pz_edge_exposures_total", '{experiment="hero_test"}') == exposed_before
    )
    with httpx.Client(base_url=demo_stack.edge_url, timeout=10) as plain:  # the same without GPC: kept
        page = plain.get("/", headers=HTML)
        assert "pz_uid" in page.cookies
    assert (
        counter(demo_stack.edge_url, "pz_edge_exposures_total", '{experiment="hero_test"}')
        == exposed_before + 1
    )


@pytest.mark.parametrize(
    ("mode", "headers", "allowed"),
    [
        ("off", {"sec-gpc": "1"}, True),
        ("gpc", {}, True),
        ("gpc", {"sec-gpc": "1"}, False),
        ("gpc", {"sec-gpc": " 1 "}, False),
        ("required", {}, False),
        ("required", {"cookie": "pz_consent=1"}, True),
        ("required", {"cookie": "a=b; pz_consent=Granted"}, True),
        ("required", {"cookie": "pz_consent=0"}, False),
        ("required", {"cookie": "pz_consent=no"}, False),
        ("required", {"cookie": "pz_consent=1", "sec-gpc": "1"}, False),
    ],
)
def test_which_requests_may_be_tied_to_a_visitor(mode: str, headers: dict[str, str], allowed: bool) -> None:
    assert ConsentPolicy(mode).allows(headers) is allowed
