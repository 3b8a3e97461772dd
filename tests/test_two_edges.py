"""Several edges, two delta transports: 10 000 users updated through deltas are visible at both."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from benchmarks.http_load import LoadClient, build_request
from edge_worker.config import DEV_COOKIE_SECRET
from edge_worker.identity import CookieSigner
from pz.local_stack import LocalStack
from schemas import Event, encode_event, user_key
from schemas.topics import event_topic, partition_for_key
from tests.conftest import PARTITIONS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
USERS = 10_000
SECRET = DEV_COOKIE_SECRET.encode()


async def produce_three_views_each(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        now_ms = int(time.time() * 1000)
        for n in range(USERS):
            key = user_key(f"tenk-{n}", SECRET)
            event = encode_event(Event("page_view", key, now_ms, now_ms, item=f"t{n:05d}", category="tenk"))
            for _ in range(3):
                await producer.send(
                    event_topic("page_view"), event, partition=partition_for_key(key, PARTITIONS)
                )
        await producer.flush()
    finally:
        await producer.stop()


async def users_not_yet_visible(edge_url: str, users: set[int]) -> set[int]:
    signer = CookieSigner(SECRET)
    client = LoadClient(edge_url, connections=32)
    try:
        host = edge_url.removeprefix("http://")
        requests = {
            n: client.submit(
                build_request(
                    "GET",
                    host,
                    "/pz/decide?slots=recs",
                    {"Cookie": f"pz_uid={signer.cookie_value(f'tenk-{n}')}"},
                )
            )
            for n in users
        }
        missing = set()
        for n, pending in requests.items():
            recs = orjson.loads((await pending).body)["slots"]["recs"]
            if recs["rule"] != "similar_to_recent" or recs["based_on"] != f"t{n:05d}":
                missing.add(n)
        return missing
    finally:
        await client.aclose()


def test_ten_thousand_users_through_deltas_reach_a_kafka_edge_and_an_http_edge(stack: LocalStack) -> None:
    http_edge = stack.add_edge("edge-http", extra_env={"PZ_DELTA_TRANSPORT": "http"})
    asyncio.run(produce_three_views_each(stack.kafka_bootstrap))
    for edge_url in (stack.edge_url, http_edge):
        waiting = set(range(USERS))
        deadline = time.monotonic() + 90
        while waiting and time.monotonic() < deadline:
            waiting = asyncio.run(users_not_yet_visible(edge_url, waiting))
            if waiting:
                time.sleep(0.5)
        assert not waiting, f"{len(waiting)} users not visible at {edge_url}"
    ready = httpx.get(f"{http_edge}/readyz").json()
    assert ready["sync"]["delta_lag_s"] is not None


def test_the_delta_endpoint_refuses_bad_parameters(stack: LocalStack) -> None:
    for params, field in (
        ({"since": "zero"}, "since"),
        ({"since": "0:1", "wait_ms": "-5"}, "wait_ms"),
        ({"since": "0:1", "wait_ms": "999999999"}, "wait_ms"),
    ):
        response = httpx.get(f"{stack.aggregator_url}/sync/deltas", params=params)
        assert response.status_code == 400
        assert response.json()["field"] == field
