"""`pz bench sync`: from a delta batch's publication to its visibility at an edge, by both transports.

A stack (broker, Redis, aggregator with its delta relay) runs in its own processes. This process
publishes signed delta batches to `pz.deltas` at a fixed rate of user updates, and runs two edge
profile stores side by side: one fed from Kafka, one from the aggregator's HTTP long-poll. For each
batch, the delay is the time from just before it was sent to the moment each store applied it.
The Kafka path is the baseline of the HTTP one (same batches, same run).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from benchmarks.common import environment, latency_summary, print_table, started_at, write_json
from edge_worker.delta_apply import DeltaApplier
from edge_worker.delta_http import HttpDeltaSync
from edge_worker.delta_sync import DeltaSync
from edge_worker.profile_store import DeltaOutcome, ProfileStore
from edge_worker.staleness import SyncHealth
from pz.local_stack import LocalStack, StackOptions
from schemas import DeltaBatch, ItemHistory, Profile, SigningKey, encode_delta, seal
from schemas.settings import DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET
from schemas.topics import DELTAS_TOPIC

KEY = SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode())
PARTITIONS = 4
_USERS_PER_BATCH = 50


class _TimedStore(ProfileStore):
    """A ProfileStore that notes when each batch became visible."""

    def __init__(self) -> None:
        super().__init__(cache_size=1000)
        self.applied_at: dict[tuple[int, int], float] = {}

    def apply_delta(self, batch: DeltaBatch) -> DeltaOutcome:
        outcome = super().apply_delta(batch)
        if outcome is not DeltaOutcome.DUPLICATE:
            self.applied_at[(batch.partition, batch.seq)] = time.perf_counter()
        return outcome


async def _measure(stack: LocalStack, updates_per_s: float, duration_s: float) -> dict[str, Any]:
    kafka_store, http_store = _TimedStore(), _TimedStore()
    ignore = lambda: None  # noqa: E731 - no snapshots in this scenario
    kafka_edge = DeltaSync(
        kafka_store, stack.kafka_bootstrap, 10, DeltaApplier(kafka_store, KEY, ignore, SyncHealth(60))
    )
    http_edge = HttpDeltaSync(
        http_store, stack.aggregator_url, DeltaApplier(http_store, KEY, ignore, SyncHealth(60))
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, linger_ms=0, acks="all")
    await producer.start()
    await kafka_edge.start()
    await http_edge.start()
    sent_at: dict[tuple[int, int], float] = {}
    try:
        await asyncio.sleep(1.0)  # both edges connected and waiting
        batches_per_s = updates_per_s / _USERS_PER_BATCH
        count = int(batches_per_s * duration_s)
        start = time.perf_counter()
        seqs = dict.fromkeys(range(PARTITIONS), 0)
        now_s = int(time.time())
        for i in range(count):
            delay = start + i / batches_per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            partition = i % PARTITIONS
            seqs[partition] += 1
            users = [
                Profile(key=i * _USERS_PER_BATCH + u + 1, items=(ItemHistory("p1", "c", (now_s,)),))
                for u in range(_USERS_PER_BATCH)
            ]
            sealed = seal(
                encode_delta(DeltaBatch(partition, seqs[partition], int(time.time() * 1000), users)), KEY
            )
            sent_at[(partition, seqs[partition])] = time.perf_counter()
            await producer.send(DELTAS_TOPIC, sealed, partition=partition)
        achieved = count * _USERS_PER_BATCH / (time.perf_counter() - start)
        for _ in range(300):  # both edges catch up, or 30 s pass
            if len(kafka_store.applied_at) >= count and len(http_store.applied_at) >= count:
                break
            await asyncio.sleep(0.1)
    finally:
        await http_edge.stop()
        await kafka_edge.stop()
        await producer.stop()
    kafka_ms = [
        (kafka_store.applied_at[k] - t) * 1000 for k, t in sent_at.items() if k in kafka_store.applied_at
    ]
    http_ms = [
        (http_store.applied_at[k] - t) * 1000 for k, t in sent_at.items() if k in http_store.applied_at
    ]
    return {"achieved": achieved, "batches": len(sent_at), "kafka_ms": kafka_ms, "http_ms": http_ms}


def run_sync(updates_per_s: float, duration_s: float, quick: bool, json_path: Path | None) -> int:
    if quick:
        duration_s = min(duration_s, 5.0)
    began = started_at()
    with tempfile.TemporaryDirectory(prefix="pz-bench-sync-") as state:
        stack = LocalStack(
            StackOptions(
                edge_port=0, aggregator_port=0, with_shop=False, partitions=PARTITIONS, state_dir=Path(state)
            )
        )
        print("starting the stack…", flush=True)
        stack.up()
        try:
            measured = asyncio.run(_measure(stack, updates_per_s, duration_s))
        finally:
            stack.down()
    kafka = latency_summary(measured["kafka_ms"], "kafka")
    http = latency_summary(measured["http_ms"], "http")
    metrics = {
        "user_updates_per_s": round(measured["achieved"], 1),
        "batches": measured["batches"],
        "http_applied": len(measured["http_ms"]),
        **http,
    }
    baseline = {"kafka_applied": len(measured["kafka_ms"]), **kafka}
    ratio = http["http_p50_ms"] / kafka["kafka_p50_ms"] if measured["kafka_ms"] else float("nan")
    result = {
        "scenario": "sync",
        "params": {
            "user_updates_per_s": updates_per_s,
            "duration_s": duration_s,
            "users_per_batch": _USERS_PER_BATCH,
            "partitions": PARTITIONS,
            "quick": quick,
            "edges": "in this process; stack in its own",
        },
        "metrics": metrics,
        "baseline": baseline,
        "ratio": {"http_p50_over_kafka_p50": round(ratio, 2)},
        "env": environment(),
        "started_at": began,
    }
    print_table(
        f"sync: {updates_per_s:g} user updates/s for {duration_s:g} s",
        [
            ("updates/s achieved", f"{measured['achieved']:.0f}"),
            (
                "batches (kafka / http applied)",
                f"{measured['batches']} ({len(measured['kafka_ms'])} / {len(measured['http_ms'])})",
            ),
            ("kafka p50 / p99 ms", f"{kafka['kafka_p50_ms']:.1f} / {kafka['kafka_p99_ms']:.1f}"),
            ("http p50 / p99 ms", f"{http['http_p50_ms']:.1f} / {http['http_p99_ms']:.1f}"),
            ("http p50 / kafka p50", f"{ratio:.2f}x"),
        ],
    )
    write_json(json_path, result)
    return 0 if measured["kafka_ms"] and measured["http_ms"] else 1
