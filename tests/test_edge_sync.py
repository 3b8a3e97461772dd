"""Edge sync without the network: snapshots from disk, refused snapshots, gaps, staleness."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from edge_worker.config import DEV_COOKIE_SECRET
from edge_worker.delta_apply import DeltaApplier
from edge_worker.identity import CookieSigner
from edge_worker.profile_store import DeltaOutcome, ProfileStore
from edge_worker.snapshot_sync import SnapshotSync
from edge_worker.staleness import SyncHealth
from pz.processes import free_port, spawn, wait_for_http
from schemas import (
    DeltaBatch,
    ItemHistory,
    PartitionPosition,
    Profile,
    SigningKey,
    SnapshotContent,
    SnapshotReader,
    encode_delta,
    encode_snapshot,
    seal,
)
from schemas.settings import DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET
from schemas.user_key import user_key

KEY = SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode())
FORGER = SigningKey(DEV_SIGNING_KEY_ID, b"not-the-real-secret")
NOW_S = 1_900_000_000


def snapshot_bytes(snapshot_id: str, users: list[Profile], key: SigningKey = KEY) -> bytes:
    content = SnapshotContent(
        snapshot_id, NOW_S * 1000, {0: PartitionPosition(1, 0)}, ("p1", "p2"), {}, users
    )
    return seal(encode_snapshot(content), key)


def serving(bodies: list[bytes]) -> httpx.MockTransport:
    """The aggregator's snapshot endpoint answering with each body in turn (then the last again)."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = bodies.pop(0) if len(bodies) > 1 else bodies[0]
        return httpx.Response(200, content=body, headers={"etag": f'"{len(bodies)}"'})

    return httpx.MockTransport(answer)


async def test_a_forged_snapshot_is_refused_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    store = ProfileStore(100)
    alice = Profile(42, (ItemHistory("p9", "c", (NOW_S,)),))
    bodies = [snapshot_bytes("good", [alice]), snapshot_bytes("forged", [], FORGER), b"torn" * 10]
    sync = SnapshotSync(store, "http://aggregator", tmp_path, KEY, 1.0, SyncHealth(60), serving(bodies))
    try:
        assert await sync.fetch_once() is True
        assert await sync.fetch_once() is False
        assert await sync.fetch_once() is False
        assert store.snapshot is not None and store.snapshot.snapshot_id == "good"
        assert store.get(42) == alice
        assert (tmp_path / "snapshot.bin").read_bytes() == snapshot_bytes(
            "good", [alice]
        )  # never overwritten
    finally:
        await sync.stop()


async def test_a_tampered_file_on_disk_is_not_loaded(tmp_path: Path) -> None:
    data = bytearray(snapshot_bytes("s", [Profile(1)]))
    data[-8] ^= 0xFF
    (tmp_path / "snapshot.bin").write_bytes(bytes(data))
    store = ProfileStore(10)
    sync = SnapshotSync(store, "http://aggregator", tmp_path, KEY, 1.0, SyncHealth(60))
    assert sync.load_from_disk() is False
    assert store.snapshot is None
    await sync.stop()


def test_gaps_and_refused_batches_ask_for_a_snapshot() -> None:
    store = ProfileStore(10)
    resyncs: list[int] = []
    deltas = DeltaApplier(store, KEY, lambda: resyncs.append(1), SyncHealth(60))
    assert deltas.apply(seal(encode_delta(DeltaBatch(0, 1, 0, (Profile(1),))), KEY)) is DeltaOutcome.APPLIED
    assert deltas.apply(seal(encode_delta(DeltaBatch(0, 1, 0, (Profile(1),))), KEY)) is DeltaOutcome.DUPLICATE
    assert resyncs == []
    assert deltas.apply(seal(encode_delta(DeltaBatch(0, 5, 0, (Profile(2),))), KEY)) is DeltaOutcome.GAP
    assert len(resyncs) == 1
    assert deltas.apply(seal(encode_delta(DeltaBatch(0, 6, 0, (Profile(3),))), FORGER)) is None
    assert store.get(3) is None and len(resyncs) == 2


def test_staleness_is_stamped_from_the_time_sync_was_last_heard() -> None:
    health = SyncHealth(stale_after_s=30)
    assert health.stamp(None, NOW_S, "r4")["stale"] is True
    health.last_heard_s = NOW_S - 10
    health.delta_lag_s = 0.02
    reader = SnapshotReader(encode_snapshot(SnapshotContent("s", (NOW_S - 100) * 1000, {}, (), {}, (), "r4")))
    fresh = health.stamp(reader, NOW_S, "r4")
    assert fresh == {
        "snapshot_id": "s",
        "rules_version": "r4",
        "snapshot_age_s": 100.0,
        "sync_age_s": 10.0,
        "delta_lag_s": 0.02,
        "stale": False,
    }
    assert health.stamp(reader, NOW_S + 21, "r4")["stale"] is True


@pytest.mark.timeout(60)
def test_an_edge_restarted_without_aggregator_or_broker_serves_from_disk(tmp_path: Path) -> None:
    raw_id = "returning-visitor"
    now = int(time.time())
    viewer = Profile(
        user_key(raw_id, DEV_COOKIE_SECRET.encode()), (ItemHistory("p42", "w", (now, now - 50, now - 90)),)
    )
    (tmp_path / "snapshot.bin").write_bytes(snapshot_bytes("on-disk", [viewer]))
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there: no broker, no aggregator
    port = free_port()
    env = {
        "PZ_EDGE_PORT": str(port),
        "PZ_EDGE_STATE_DIR": str(tmp_path),
        "PZ_KAFKA_BOOTSTRAP": dead,
        "PZ_AGGREGATOR_URL": f"http://{dead}",
    }
    edge = spawn("edge", [sys.executable, "-m", "edge_worker"], tmp_path / "logs", env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(edge, f"{base}/healthz")
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["snapshot_source"] == "disk" and body["checks"] == {"snapshot": True, "broker": False}
        cookie = CookieSigner(DEV_COOKIE_SECRET.encode()).cookie_value(raw_id)
        decision = httpx.get(f"{base}/pz/decide?slots=recs", cookies={"pz_uid": cookie}).json()
        assert decision["slots"]["recs"]["rule"] == "similar_to_recent"
        assert decision["sync"]["snapshot_id"] == "on-disk" and decision["sync"]["stale"] is True
    finally:
        edge.stop()
