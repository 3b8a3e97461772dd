from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from edge_worker.attribution import AttributionSigner, add_tokens
from pz.local_stack import LocalStack
from schemas import decode_event
from schemas.topics import event_topic
from tests.kafka_helpers import read_topic


def test_a_token_says_which_slot_rule_and_variant_showed_which_item() -> None:
    signer = AttributionSigner(b"secret")
    credit = signer.verify(signer.token("recs", "similar_to_recent", "hero=default;recs=similar", "p0042"))
    assert credit is not None
    assert (credit.slot, credit.rule, credit.variant, credit.item) == (
        "recs",
        "similar_to_recent",
        "hero=default;recs=similar",
        "p0042",
    )


def test_forged_altered_or_foreign_tokens_do_not_verify() -> None:
    signer = AttributionSigner(b"secret")
    token = signer.token("recs", "popular", "", "p1")
    body, tag = token.split(".")
    assert signer.verify(AttributionSigner(b"other").token("recs", "popular", "", "p1")) is None
    assert signer.verify(body[:-2] + "AA." + tag) is None
    assert signer.verify(token + "x") is None
    assert signer.verify("garbage") is None and signer.verify("a.b.c") is None


def test_every_recommended_item_gets_a_token() -> None:
    decision = {"recs": {"rule": "popular", "items": [{"id": "a"}, {"id": "b"}]}, "hero": {"html": "<p/>"}}
    signer = AttributionSigner(b"s")
    add_tokens(decision, signer, "hero=default;recs=popular")
    tokens = [item["token"] for item in decision["recs"]["items"]]  # type: ignore[index]
    assert [signer.verify(t).item for t in tokens] == ["a", "b"]  # type: ignore[union-attr]


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_clicks_are_credited_only_with_a_token_the_edge_issued(stack: LocalStack) -> None:
    with httpx.Client(base_url=stack.edge_url, timeout=5) as client:
        view = {"type": "page_view", "item": "p0221", "category": "toys", "ts": int(time.time() * 1000)}
        assert client.post("/pz/collect", json=view).status_code == 202  # popularity, so recs has items
        deadline = time.monotonic() + 20
        items: list[dict[str, str]] = []
        while not items and time.monotonic() < deadline:
            items = (
                client.get("/pz/decide", params={"slots": "recs"}).json()["slots"]["recs"].get("items", [])
            )
            time.sleep(0.2)
        shown = items[0]
        click = {
            "type": "click",
            "item": shown["id"],
            "ts": int(time.time() * 1000),
            "attribution": {"token": shown["token"]},
        }
        assert client.post("/pz/collect", json=click).status_code == 202
        for bad, reason in (
            (AttributionSigner(b"forger").token("recs", "vip", "", shown["id"]), "does not verify"),
            (shown["token"], "another item"),
        ):
            forged = {
                **click,
                "attribution": {"token": bad},
                "item": shown["id"] if reason != "another item" else "zz9",
            }
            response = client.post("/pz/collect", json=forged)
            assert response.status_code == 400
            assert response.json()["field"] == "attribution.token" and reason in response.json()["reason"]

    def credited(records: list[tuple[object, bytes]]) -> bool:
        events = [decode_event(value) for _, value in records]
        return any(
            e.item == shown["id"] and e.attribution is not None and e.attribution.slot == "recs"
            for e in events
        )

    records = asyncio.run(read_topic(stack.kafka_bootstrap, event_topic("click"), credited))
    event = next(decode_event(v) for _, v in records if decode_event(v).item == shown["id"])
    assert event.attribution is not None and event.attribution.rule in ("popular", "similar_to_recent")
