"""Fault test: the broker is killed (kill -9) under a running edge, then comes back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pz.embedded import create_topics
from pz.local_stack import LocalStack
from pz.processes import wait_for_tcp
from schemas import decode_event
from schemas.topics import event_topic
from tests.conftest import running_stack
from tests.kafka_helpers import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
BUFFER = 20


@pytest.fixture(scope="module")
def small_buffer_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(
        Path(tmp_path_factory.mktemp("outage")),
        with_shop=False,
        partitions=2,
        snapshot_interval_s=5.0,
        extra_env={"PZ_EVENT_BUFFER_SIZE": str(BUFFER)},
    ) as local:
        yield local


def beacon(client: httpx.Client, item: str) -> httpx.Response:
    return client.post(
        "/pz/collect",
        json={"type": "page_view", "item": item, "category": "c", "ts": int(time.time() * 1000)},
    )


def test_edge_keeps_deciding_buffers_then_refuses_and_delivers_after_the_broker_returns(
    small_buffer_stack: LocalStack,
) -> None:
    stack = small_buffer_stack
    with httpx.Client(base_url=stack.edge_url, timeout=5) as client:
        assert beacon(client, "before").status_code == 202
        deadline = time.monotonic() + 10
        while client.get("/readyz").json()["pending_events"] and time.monotonic() < deadline:
            time.sleep(0.05)

        assert client.get("/readyz").json()["checks"]["broker"] is True
        stack.processes["broker"].kill()
        killed_ms = time.time() * 1000

        assert client.get("/pz/decide", params={"slots": "recs,hero"}).status_code == 200
        accepted = [f"held{i:02d}" for i in range(BUFFER)]
        for item in accepted:
            assert beacon(client, item).status_code == 202
        refused = beacon(client, "overflow")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "overloaded"
        assert client.get("/pz/decide", params={"slots": "recs"}).status_code == 200
        # Readiness tells the truth within 10 s: the broker is down, and since when.
        deadline = time.monotonic() + 10
        while (ready := client.get("/readyz")).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"snapshot": True, "broker": False}
        assert ready.json()["broker"]["down_since_ms"] <= killed_ms + 1000

        # The embedded broker keeps topics in memory only: it comes back empty, on the same port. The edge
        # is held (SIGSTOP) until the topics are made anew: a record produced into the restarted broker
        # before its topic exists is lost with the topic's creation (an embedded-broker artefact).
        stack.processes["edge"].pause()
        stack.restart("broker")
        port = int(stack.kafka_bootstrap.rsplit(":", 1)[1])
        wait_for_tcp(stack.processes["broker"], port)
        asyncio.run(create_topics(stack.kafka_bootstrap, 2))
        stack.processes["edge"].resume()

        def delivered(records: list[tuple[object, bytes]]) -> bool:
            items = {decode_event(value).item for _, value in records}
            return set(accepted) <= items

        records = asyncio.run(
            read_topic(stack.kafka_bootstrap, event_topic("page_view"), delivered, timeout_s=40)
        )
        assert "overflow" not in {decode_event(value).item for _, value in records}
        assert client.get("/readyz").json()["pending_events"] == 0
        deadline = time.monotonic() + 15
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/readyz").json()["checks"]["broker"] is True  # back once it answers again
        assert beacon(client, "after").status_code == 202


def held_item(n: int) -> str:
    """The item user n views while the broker hangs: one of the demo shop's own (p0211..p0240), so
    that pages of the shared stack that later show it as popular can show its image too."""
    return f"p{211 + n:04d}"


@pytest.mark.timeout(150)
def test_a_broker_hung_for_ten_seconds_loses_no_update(stack: LocalStack) -> None:
    """Users view a product three times each while the broker answers nothing; once it is back,
    every one of them gets the changed decision."""
    clients = [httpx.Client(base_url=stack.edge_url, timeout=10) for _ in range(30)]
    try:
        for client in clients:
            assert client.get("/pz/decide", params={"slots": "recs"}).status_code == 200  # identity cookie
        broker = stack.processes["broker"]
        broker.pause()
        try:
            hung_at = time.monotonic()
            for view_no in range(3):
                for n, client in enumerate(clients):
                    item = held_item(n)
                    response = client.post(
                        "/pz/collect",
                        json={
                            "type": "page_view",
                            "item": item,
                            "category": "hung",
                            "ts": int(time.time() * 1000),
                        },
                    )
                    assert response.status_code == 202, (view_no, response.text)
                assert clients[0].get("/pz/decide", params={"slots": "recs"}).status_code == 200
            time.sleep(max(0.0, 10 - (time.monotonic() - hung_at)))
        finally:
            broker.resume()
        deadline = time.monotonic() + 60
        waiting = set(range(len(clients)))
        while waiting and time.monotonic() < deadline:
            for n in sorted(waiting):
                recs = clients[n].get("/pz/decide", params={"slots": "recs"}).json()["slots"]["recs"]
                if recs["rule"] == "similar_to_recent" and recs["based_on"] == held_item(n):
                    waiting.discard(n)
            time.sleep(0.2)
        assert waiting == set(), f"{len(waiting)} users never got their update"
    finally:
        for client in clients:
            client.close()
