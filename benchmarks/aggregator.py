"""`pz bench aggregator`: events/s of the aggregator's pipeline (windows, Redis state in one
MULTI/EXEC per batch, signed deltas) against a bare aiokafka consume loop over the same records, the
Redis state per user, and event → delta latency at a fixed live rate.

Pre-produced: N events (default 500 000) from 100 000 users with a Zipf-like skew over items and
users, event times spread over 30 minutes; 85 % page views, 10 % add-to-cart, 5 % purchases.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from aggregator.config import AggregatorConfig
from aggregator.pipeline import Pipeline
from aggregator.state_store import StateStore
from benchmarks.common import environment, latency_summary, print_table, started_at, write_json
from pz.embedded import create_topics, start_broker, start_redis
from pz.processes import free_port, spawn
from schemas.delta_codec import decode_delta
from schemas.event_codec import encode_event
from schemas.events import Event
from schemas.settings import DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET
from schemas.signing import SigningKey, open_sealed
from schemas.topics import DELTAS_TOPIC, EVENT_TOPICS, event_topic, partition_for_key

PARTITIONS = 4
_KEYS = {DEV_SIGNING_KEY_ID: SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode())}


def synthetic_events(count: int, users: int, now_ms: int) -> list[Event]:
    rng = random.Random(5)  # noqa: S311 - reproducible data
    keys = [rng.getrandbits(63) for _ in range(users)]
    events = []
    span_ms = 30 * 60 * 1000
    for i in range(count):
        user = keys[
            min(users - 1, int(rng.paretovariate(1.16)) - 1) if rng.random() < 0.5 else rng.randrange(users)
        ]
        item = min(1999, int(rng.paretovariate(1.1)) - 1) if rng.random() < 0.7 else rng.randrange(2000)
        roll = rng.random()
        kind = "page_view" if roll < 0.85 else "add_to_cart" if roll < 0.95 else "purchase"
        t = now_ms - span_ms + i * span_ms // count
        events.append(Event(kind, user, t, t, item=f"p{item:04d}", category=f"c{item % 40:02d}"))
    return events


async def produce_fast(bootstrap: str, events: list[Event]) -> None:
    """Events to their topics and partitions, many in flight at once."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending = []
        for e in events:
            pending.append(
                await producer.send(
                    event_topic(e.type),
                    encode_event(e),
                    key=e.user_key.to_bytes(8, "big"),
                    partition=partition_for_key(e.user_key, PARTITIONS),
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _raw_consume(bootstrap: str, count: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in EVENT_TOPICS for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        started = time.perf_counter()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def _committed(store: StateStore) -> int:
    """Records whose effect is committed in Redis: the stored next offsets, over every partition."""
    positions = [await store.load_position(p) for p in range(PARTITIONS)]
    return sum(sum(position.offsets.values()) for position in positions)


async def _pipeline_rate(bootstrap: str, redis_url: str, count: int) -> tuple[float, Pipeline, redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    config = AggregatorConfig(kafka_bootstrap=bootstrap, redis_url=redis_url, group_id="pz-bench-aggregator")
    store = StateStore(client, 86_400)
    pipeline = Pipeline(config, store)
    await pipeline.start()
    while not pipeline.assigned:  # noqa: ASYNC110 - polling the pipeline: the group join is not its speed
        await asyncio.sleep(0.05)
    started = time.perf_counter()
    while await _committed(store) < count:  # noqa: ASYNC110 - every event's effect committed in Redis
        await asyncio.sleep(0.02)
    return count / (time.perf_counter() - started), pipeline, client


def aggregator_env(bootstrap: str, redis_url: str, state_dir: Path, group: str) -> dict[str, str]:
    """The environment of an aggregator process on a free port, with hourly snapshots only."""
    return {
        "PZ_KAFKA_BOOTSTRAP": bootstrap,
        "PZ_REDIS_URL": redis_url,
        "PZ_PARTITIONS": str(PARTITIONS),
        "PZ_AGGREGATOR_GROUP": group,
        "PZ_AGGREGATOR_PORT": str(free_port()),
        "PZ_AGGREGATOR_STATE_DIR": str(state_dir),
        "PZ_SESSION_TIMEOUT_MS": "6000",
        "PZ_SNAPSHOT_INTERVAL_S": "3600",
    }


async def _recovery(bootstrap: str, redis_url: str, client: redis.Redis, logs: Path, users: int) -> float:
    """An aggregator process, kill -9 while it works, restarted at once: seconds from the restart
    until it commits again (process start, group join, state and offsets restored from Redis)."""
    store = StateStore(client, 86_400)
    await produce_fast(bootstrap, synthetic_events(50_000, users, int(time.time() * 1000)))
    env = aggregator_env(bootstrap, redis_url, logs / "aggregator", "pz-bench-aggregator")
    argv = [sys.executable, "-m", "aggregator"]
    before = await _committed(store)
    process = spawn("aggregator", argv, logs, env)
    try:
        while await _committed(store) == before:  # noqa: ASYNC110 - polling another process's progress
            await asyncio.sleep(0.02)
        process.kill()  # mid-stream
        killed_at = await _committed(store)
        restarted = time.perf_counter()
        process = spawn("aggregator", argv, logs, env)
        while await _committed(store) == killed_at:  # noqa: ASYNC110 - as above
            await asyncio.sleep(0.02)
        return time.perf_counter() - restarted
    finally:
        process.stop()


async def _event_to_delta(bootstrap: str, rate: float, seconds: float) -> list[float]:
    """Events from fresh users at `rate`; the time until a delta batch carries each user."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    sent: dict[int, float] = {}
    delays: list[float] = []
    try:
        tps = [TopicPartition(DELTAS_TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)

        async def read() -> None:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.perf_counter()
                for records in batch.values():
                    for record in records:
                        for profile in decode_delta(open_sealed(record.value, _KEYS)).upserts:
                            if profile.key in sent:
                                delays.append((now - sent.pop(profile.key)) * 1000)

        reader = asyncio.create_task(read())
        rng = random.Random(9)  # noqa: S311
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            key = rng.getrandbits(63)
            now_ms = int(time.time() * 1000)
            event = Event("page_view", key, now_ms, now_ms, item="p0001", category="c01")
            sent[key] = time.perf_counter()
            await producer.send(
                event_topic("page_view"), encode_event(event), partition=partition_for_key(key, PARTITIONS)
            )
        deadline = time.perf_counter() + 10
        while sent and time.perf_counter() < deadline:  # noqa: ASYNC110 - the reader empties `sent`
            await asyncio.sleep(0.05)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        return delays
    finally:
        await producer.stop()
        await consumer.stop()


def run_aggregator(events: int, quick: bool, json_path: Path | None) -> int:
    began = started_at()
    users = 10_000 if quick else 100_000
    if quick:
        events = min(events, 50_000)
    live_rate, live_seconds = (1000.0, 3.0) if quick else (5000.0, 10.0)
    with tempfile.TemporaryDirectory(prefix="pz-bench-agg-") as state:
        logs = Path(state)
        broker, bootstrap = start_broker(logs)
        redis_proc, redis_url = start_redis(logs)
        try:

            async def scenario() -> dict[str, Any]:
                await create_topics(bootstrap, PARTITIONS)
                print(f"producing {events} events from {users} users…", flush=True)
                await produce_fast(bootstrap, synthetic_events(events, users, int(time.time() * 1000)))
                raw = await _raw_consume(bootstrap, events)
                print(f"raw consume: {raw:.0f}/s; the pipeline…", flush=True)
                rate, pipeline, client = await _pipeline_rate(bootstrap, redis_url, events)
                try:
                    info = await client.info("memory")
                    state_users = await client.dbsize()
                    delays = await _event_to_delta(bootstrap, live_rate, live_seconds)
                finally:
                    await pipeline.stop()
                try:
                    recovery_s = await _recovery(bootstrap, redis_url, client, logs, users)
                finally:
                    await client.aclose()
                return {
                    "events_per_s": round(rate, 1),
                    "raw_consume_per_s": round(raw, 1),
                    "redis_used_bytes": info["used_memory"],
                    "redis_keys": state_users,
                    "state_bytes_per_user": round(info["used_memory"] / max(1, state_users), 1),
                    "event_to_delta": latency_summary(delays, "event_to_delta"),
                    "event_to_delta_samples": len(delays),
                    "recovery_s": round(recovery_s, 2),
                }

            found = asyncio.run(scenario())
        finally:
            redis_proc.stop()
            broker.stop()
    delta = found.pop("event_to_delta")
    metrics = {
        "events_per_s": found["events_per_s"],
        "state_bytes_per_user": found["state_bytes_per_user"],
        **{k: round(v, 2) for k, v in delta.items()},
        "event_to_delta_samples": found["event_to_delta_samples"],
        "recovery_s": found["recovery_s"],
        "redis_keys": found["redis_keys"],
    }
    result: dict[str, Any] = {
        "scenario": "aggregator",
        "params": {
            "events": events,
            "users": users,
            "partitions": PARTITIONS,
            "mix": "85% page_view, 10% add_to_cart, 5% purchase; Zipf-like users and items; "
            "30 min of event time",
            "live_rate_per_s": live_rate,
            "live_seconds": live_seconds,
            "process": "the pipeline in this process (one aggregator), broker and Redis in theirs",
            "quick": quick,
        },
        "metrics": metrics,
        "baseline": {"raw_consume_per_s": found["raw_consume_per_s"]},
        "ratio": {"pipeline_over_raw_consume": round(found["events_per_s"] / found["raw_consume_per_s"], 3)},
        "env": environment(),
        "started_at": began,
        "command": f"pz bench aggregator --events {events}",
    }
    print_table(
        f"aggregator: {events} events, {users} users",
        [
            ("pipeline events/s (budget 50 000)", f"{metrics['events_per_s']:.0f}"),
            ("bare aiokafka consume events/s", f"{found['raw_consume_per_s']:.0f}"),
            ("pipeline / raw", f"{result['ratio']['pipeline_over_raw_consume']:.2f}x"),
            ("Redis bytes per user (whole instance)", f"{metrics['state_bytes_per_user']:.0f}"),
            ("recovery after kill -9 (restart -> commits again)", f"{found['recovery_s']:.2f} s"),
            (
                f"event -> delta p50 / p99 at {live_rate:g}/s",
                f"{metrics['event_to_delta_p50_ms']:.1f} / {metrics['event_to_delta_p99_ms']:.1f} ms",
            ),
        ],
    )
    write_json(json_path, result)
    return 0
