"""Running edges (real processes) fed tampered data: a delta over Kafka, a delta over the HTTP
transport, a snapshot from the aggregator. Each is refused and counted, the edge keeps serving what
it had, and the genuine delta or snapshot sent right after is applied (so the refusal was the
signature's doing, not an edge that ignores everything). The aggregator is a small stand-in here,
because the real one verifies what it relays and never serves tampered bytes."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge_worker.config import DEV_COOKIE_SECRET
from edge_worker.identity import CookieSigner
from pz.embedded import create_topics, start_broker
from pz.processes import ManagedProcess, free_port, spawn, wait_for_http
from schemas import (
    DeltaBatch,
    ItemHistory,
    PartitionPosition,
    Profile,
    SigningKey,
    SnapshotContent,
    encode_delta,
    encode_snapshot,
    seal,
)
from schemas.delta_codec import frame_batches
from schemas.settings import DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET
from schemas.topics import DELTAS_TOPIC, partition_for_key
from schemas.user_key import user_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
KEY = SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode())
FORGER = SigningKey(DEV_SIGNING_KEY_ID, b"not-the-real-secret")
PARTITIONS = 4
RAW_ID = "tamper-target"
VIEWER = user_key(RAW_ID, DEV_COOKIE_SECRET.encode())


def snapshot(snapshot_id: str, signer: SigningKey = KEY) -> bytes:
    now = int(time.time())
    viewer = Profile(VIEWER, (ItemHistory("p42", "w", (now, now - 50, now - 90)),))
    positions = {p: PartitionPosition(1, -1) for p in range(PARTITIONS)}
    return seal(
        encode_snapshot(SnapshotContent(snapshot_id, now * 1000, positions, ("p1",), {}, [viewer])), signer
    )


def emptying_delta() -> bytes:
    """Seq 2 for the viewer's partition: the viewer with no history (what a genuine one changes)."""
    batch = DeltaBatch(
        partition_for_key(VIEWER, PARTITIONS), 2, int(time.time() * 1000), [Profile(VIEWER)], []
    )
    return seal(encode_delta(batch), KEY)


def tampered(sealed: bytes) -> bytes:
    data = bytearray(sealed)
    data[len(data) // 2] ^= 0x01
    return bytes(data)


class StandIn:
    """The aggregator's sync endpoints, answering with whatever the test puts in."""

    def __init__(self) -> None:
        self.snapshot_body = snapshot("good")
        self.deltas: list[bytes] = []
        self.port = free_port()

        async def get_snapshot(request: Request) -> Response:
            etag = f'"{hash(self.snapshot_body)}"'
            if request.headers.get("if-none-match") == etag:
                return Response(status_code=304)
            return Response(self.snapshot_body, headers={"ETag": etag})

        async def get_deltas(request: Request) -> Response:
            await asyncio.sleep(0.1)
            batches, self.deltas = self.deltas, []
            return Response(frame_batches(batches), media_type="application/x-pz-deltas")

        app = Starlette(routes=[Route("/sync/snapshot", get_snapshot), Route("/sync/deltas", get_deltas)])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    server.thread.start()
    deadline = time.monotonic() + 10
    while not server.server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield server
    server.server.should_exit = True
    server.thread.join(timeout=10)


def start_edge(
    tmp_path: Path, name: str, bootstrap: str, aggregator_url: str, transport: str
) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {
        "PZ_EDGE_PORT": str(port),
        "PZ_EDGE_STATE_DIR": str(tmp_path / name),
        "PZ_KAFKA_BOOTSTRAP": bootstrap,
        "PZ_AGGREGATOR_URL": aggregator_url,
        "PZ_PARTITIONS": str(PARTITIONS),
        "PZ_DELTA_TRANSPORT": transport,
        "PZ_SNAPSHOT_POLL_S": "0.2",
    }
    edge = spawn(name, [sys.executable, "-m", "edge_worker"], tmp_path / "logs", env)
    base = f"http://127.0.0.1:{port}"
    wait_for_http(edge, f"{base}/healthz")
    return edge, base


def rule(base: str) -> str:
    cookie = CookieSigner(DEV_COOKIE_SECRET.encode()).cookie_value(RAW_ID)
    decision = httpx.get(f"{base}/pz/decide?slots=recs", cookies={"pz_uid": cookie}).json()
    return str(decision["slots"]["recs"]["rule"])


def metric(base: str, prefix: str) -> float:
    lines = httpx.get(f"{base}/metrics").text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


def until(predicate: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_tampered_deltas_over_kafka_and_http_and_a_forged_snapshot_are_refused(
    tmp_path: Path, stand_in: StandIn
) -> None:
    broker, bootstrap = start_broker(tmp_path / "logs")
    edges: list[ManagedProcess] = []
    try:
        asyncio.run(create_topics(bootstrap, PARTITIONS))
        kafka_edge, kafka_base = start_edge(tmp_path, "edge-kafka", bootstrap, stand_in.url, "kafka")
        http_edge, http_base = start_edge(tmp_path, "edge-http", bootstrap, stand_in.url, "http")
        edges += [kafka_edge, http_edge]
        for base in (kafka_base, http_base):
            until(lambda base=base: rule(base) == "similar_to_recent")  # the snapshot's three views

        # Over Kafka: tampered, then genuine.
        async def produce(value: bytes) -> None:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
            await producer.start()
            try:
                await producer.send_and_wait(
                    DELTAS_TOPIC, value, partition=partition_for_key(VIEWER, PARTITIONS)
                )
            finally:
                await producer.stop()

        asyncio.run(produce(tampered(emptying_delta())))
        until(lambda: metric(kafka_base, "pz_edge_deltas_dropped_total{") >= 1)
        assert rule(kafka_base) == "similar_to_recent"  # kept serving what it had
        asyncio.run(produce(emptying_delta()))
        until(lambda: rule(kafka_base) != "similar_to_recent")  # a genuine one is applied

        # Over HTTP: the same.
        stand_in.deltas = [tampered(emptying_delta())]
        until(lambda: metric(http_base, "pz_edge_deltas_dropped_total{") >= 1)
        assert rule(http_base) == "similar_to_recent"
        stand_in.deltas = [emptying_delta()]
        until(lambda: rule(http_base) != "similar_to_recent")

        # A forged snapshot from the aggregator: refused, the good one keeps serving; a genuine one installs.
        def snapshot_id(base: str) -> str:
            return str(httpx.get(f"{base}/readyz").json()["sync"]["snapshot_id"])

        assert snapshot_id(http_base) == "good"
        stand_in.snapshot_body = snapshot("forged", FORGER)
        until(lambda: metric(http_base, "pz_edge_snapshot_rejected_total{") >= 1)
        assert snapshot_id(http_base) == "good"
        stand_in.snapshot_body = snapshot("newer")
        until(lambda: snapshot_id(http_base) == "newer")
    finally:
        for edge in edges:
            edge.stop()
        broker.stop()
