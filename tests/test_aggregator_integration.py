"""The aggregator pipeline in-process against the real broker and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY

from aggregator.config import AggregatorConfig
from aggregator.event_rates import RateAlarmSettings
from aggregator.item_history import UserHistory, load_state
from aggregator.item_model import ItemModelSettings
from aggregator.pipeline import Pipeline
from aggregator.snapshots import SnapshotBuilder
from aggregator.state_store import (
    CommitFenced,
    PartitionCommit,
    PartitionPosition,
    StateStore,
    user_state_key,
)
from pz.embedded import create_topics, start_broker, start_redis
from pz.processes import spawn, wait_for_tcp
from schemas import Event, open_sealed
from schemas.event_codec import decode_event, encode_event
from schemas.rules import default_rules
from schemas.snapshot_codec import SnapshotReader
from schemas.topics import DLQ_TOPIC, LATE_TOPIC, event_topic
from tests.conftest import PARTITIONS, Services
from tests.kafka_helpers import DELTAS_TOPIC, DEV_KEYS, deltas_for, produce_events, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def fresh_user() -> int:
    return int.from_bytes(secrets.token_bytes(8), "big")


async def views_committed(
    client: redis.Redis, user: int, item: str, count: int, timeout_s: float = 10.0
) -> None:
    """Until Redis holds `count` views of `item` for `user` (or the time is up: the caller asserts)."""
    deadline = time.monotonic() + timeout_s
    while await stored_views(client, user, item) != count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def views(user: int, item: str, n: int) -> list[Event]:
    now_ms = int(time.time() * 1000)
    return [Event("page_view", user, now_ms + i, now_ms + i, item=item, category="watches") for i in range(n)]


@pytest.fixture
async def redis_client(services: Services) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(services.redis_url)
    yield client
    await client.aclose()


def config(services: Services, group: str) -> AggregatorConfig:
    return AggregatorConfig(kafka_bootstrap=services.bootstrap, redis_url=services.redis_url, group_id=group)


async def start_pipeline(services: Services, client: redis.Redis, group: str, **overrides: Any) -> Pipeline:
    pipeline = Pipeline(replace(config(services, group), **overrides), StateStore(client, 3600))
    await pipeline.start()
    await wait_until(lambda: pipeline.assigned, timeout_s=30)
    return pipeline


async def stored_views(client: redis.Redis, user: int, item: str) -> int:
    raw = await client.get(user_state_key(user % PARTITIONS, user))
    state = load_state(raw if isinstance(raw, bytes) else None)
    return len(state[("view", item)][1]) if ("view", item) in state else 0


async def test_views_become_window_state_in_redis_and_a_signed_delta(
    services: Services, redis_client: redis.Redis
) -> None:
    await redis_client.flushdb()
    user = fresh_user()
    await produce_events(services.bootstrap, views(user, "p0042", 3), PARTITIONS)
    pipeline = await start_pipeline(services, redis_client, "g-" + secrets.token_hex(4))
    try:
        records = await read_topic(
            services.bootstrap,
            DELTAS_TOPIC,
            lambda rs: any(
                len(p.items[0].times_s) == 3 for b in deltas_for(rs, user) for p in b.upserts if p.key == user
            ),
        )
        batch = deltas_for(records, user)[-1]
        assert batch.partition == user % PARTITIONS
        profile = next(p for p in batch.upserts if p.key == user)
        assert profile.items[0].item == "p0042" and profile.items[0].category == "watches"
        assert profile.lifetime is not None and profile.lifetime.views == 3
        assert profile.lifetime.last_seen_s == profile.items[0].times_s[0]
        await views_committed(redis_client, user, "p0042", 3)  # the delta goes out before the commit
        assert await stored_views(redis_client, user, "p0042") == 3
    finally:
        await pipeline.stop()


async def test_a_poison_record_goes_to_the_dead_letter_topic_and_processing_goes_on(
    services: Services, redis_client: redis.Redis
) -> None:
    await redis_client.flushdb()
    user = fresh_user()
    poison = b"definitely not a flatbuffer " + secrets.token_bytes(8)
    producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap)
    await producer.start()
    await producer.send_and_wait(event_topic("page_view"), poison, partition=user % PARTITIONS)
    await producer.stop()
    await produce_events(services.bootstrap, views(user, "p0007", 1), PARTITIONS)
    pipeline = await start_pipeline(services, redis_client, "g-" + secrets.token_hex(4))
    try:
        records = await read_topic(services.bootstrap, DLQ_TOPIC, lambda rs: any(v == poison for _, v in rs))
        record = next(r for r, v in records if v == poison)
        headers = dict(record.headers)  # type: ignore[attr-defined]
        assert b"PZEV" in headers["pz-reason"]
        assert headers["pz-source-topic"] == b"pz.events.page_view"
        await read_topic(services.bootstrap, DELTAS_TOPIC, lambda rs: bool(deltas_for(rs, user)))
    finally:
        await pipeline.stop()


async def test_a_restarted_aggregator_neither_loses_nor_recounts_events(
    services: Services, redis_client: redis.Redis
) -> None:
    await redis_client.flushdb()
    group = "g-" + secrets.token_hex(4)
    user = fresh_user()
    await produce_events(services.bootstrap, views(user, "p0100", 2), PARTITIONS)
    pipeline = await start_pipeline(services, redis_client, group)
    try:
        await read_topic(services.bootstrap, DELTAS_TOPIC, lambda rs: bool(deltas_for(rs, user)))
        await views_committed(redis_client, user, "p0100", 2)
    finally:
        await pipeline.stop()
    assert await stored_views(redis_client, user, "p0100") == 2

    await produce_events(services.bootstrap, views(user, "p0100", 1), PARTITIONS)
    pipeline = await start_pipeline(services, redis_client, group)
    try:
        await read_topic(
            services.bootstrap,
            DELTAS_TOPIC,
            lambda rs: any(
                len(p.items[0].times_s) == 3 for b in deltas_for(rs, user) for p in b.upserts if p.key == user
            ),
        )
    finally:
        await pipeline.stop()
    assert await stored_views(redis_client, user, "p0100") == 3  # not 5: the first two were not replayed


async def test_redis_killed_mid_stream_loses_and_recounts_nothing(services: Services, tmp_path: Path) -> None:
    redis_proc, redis_url = start_redis(tmp_path / "logs", data_dir=tmp_path / "data")
    client = redis.Redis.from_url(redis_url)
    user = fresh_user()
    cfg = AggregatorConfig(
        kafka_bootstrap=services.bootstrap, redis_url=redis_url, group_id="g-" + secrets.token_hex(4)
    )
    pipeline = Pipeline(cfg, StateStore(client, 3600))
    await pipeline.start()
    try:
        await wait_until(lambda: pipeline.assigned, timeout_s=30)
        await produce_events(services.bootstrap, views(user, "p0200", 2), PARTITIONS)
        await read_topic(services.bootstrap, DELTAS_TOPIC, lambda rs: bool(deltas_for(rs, user)))

        failures_before = REGISTRY.get_sample_value("pz_aggregator_batch_failures_total") or 0.0
        redis_proc.kill()
        await produce_events(services.bootstrap, views(user, "p0200", 3), PARTITIONS)
        # Proof that the outage was met: a batch failed and was rewound, before Redis comes back.
        await wait_until(
            lambda: (
                (REGISTRY.get_sample_value("pz_aggregator_batch_failures_total") or 0.0) > failures_before
            ),
            timeout_s=30,
        )
        redis_proc.popen = spawn("redis", redis_proc.argv, redis_proc.log_path.parent).popen
        port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        wait_for_tcp(redis_proc, port)

        def five_views(rs: list[tuple[object, bytes]]) -> bool:
            return any(
                len(p.items[0].times_s) == 5 for b in deltas_for(rs, user) for p in b.upserts if p.key == user
            )

        records = await read_topic(services.bootstrap, DELTAS_TOPIC, five_views)
        for _ in range(200):  # the commit of the batch whose delta was just read: moments
            with contextlib.suppress(redis.ConnectionError):  # a connection from before the restart
                if await stored_views(client, user, "p0200") == 5:
                    break
            await asyncio.sleep(0.05)
        assert await stored_views(client, user, "p0200") == 5
        newest = [p for b in deltas_for(records, user) for p in b.upserts if p.key == user][-1]
        assert newest.lifetime is not None and newest.lifetime.views == 5  # each event counted once
        seqs = [b.seq for b in deltas_for(records, user)]
        assert seqs == sorted(set(seqs))  # no sequence number was reused for a different batch
    finally:
        await pipeline.stop()
        await client.aclose()
        redis_proc.stop()


async def test_a_commit_computed_from_an_overtaken_position_writes_nothing(redis_client: redis.Redis) -> None:
    """Two members that both believe they own a partition (a rebalance, a paused process): whichever
    commits second is refused whole, and sequence numbers are never handed out twice."""
    store = StateStore(redis_client, 3600)
    partition = 1000 + secrets.randbelow(10_000)  # a partition no pipeline uses: only this test writes it
    user = fresh_user()
    stale = await store.load_position(partition)
    first = PartitionPosition({"t": 10}, 1, 5, stale.commits)
    second = PartitionPosition({"t": 12}, 2, 6, stale.commits)
    views_a: dict[int, UserHistory] = {user: UserHistory({("view", "a"): ("c", [1000])})}
    await store.commit(PartitionCommit(partition, views_a, {"a": 1}, {}, first))
    with pytest.raises(CommitFenced):
        await store.commit(
            PartitionCommit(
                partition, {user: UserHistory({("view", "b"): ("c", [2000])})}, {"b": 1}, {}, second
            )
        )

    stored = await store.load_position(partition)
    assert (stored.offsets, stored.seq, stored.commits) == ({"t": 10}, 1, stale.commits + 1)
    raw = await redis_client.get(user_state_key(partition, user))
    assert isinstance(raw, bytes) and set(load_state(raw)) == {("view", "a")}
    popular, _ = await store.popularity(partition, 10)
    assert [item for item, _ in popular] == ["a"]
    # the loser rewinds from what is stored, and its next commit applies
    await store.commit(
        PartitionCommit(
            partition, {user: UserHistory()}, {}, {}, PartitionPosition({"t": 12}, 2, 6, stored.commits)
        )
    )
    assert await redis_client.get(user_state_key(partition, user)) is None

    handed_out = [await store.reserve_seq(partition, at_least) for at_least in (0, 0, 7, 3)]
    assert handed_out == [3, 4, 8, 9]  # above the committed seq (2), every earlier number, and at_least


async def test_items_viewed_in_one_session_become_each_others_similar_items_in_the_snapshot(
    services: Services, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Through the real pipeline and snapshot build: sessions of many users pair items up, a pair
    seen only across a long gap does not count, and edges read the result from the snapshot."""
    tag = secrets.token_hex(3)
    shoe, sock, lace, hat = (f"{name}-{tag}" for name in ("shoe", "sock", "lace", "hat"))
    now_ms = int(time.time() * 1000)
    events = []
    for n in range(12):
        user = fresh_user()
        trail = [(shoe, 0), (sock, 5_000), (lace, 10_000)] if n % 3 else [(shoe, 0), (sock, 5_000)]
        trail.append((hat, 90_000))  # past the session gap: another session, paired with nothing before it
        events += [
            Event("page_view", user, now_ms - 120_000 + dt, now_ms, item=i, category="c") for i, dt in trail
        ]
    await produce_events(services.bootstrap, events, PARTITIONS)
    model = ItemModelSettings(session_gap_s=60)
    cfg = replace(config(services, "g-" + secrets.token_hex(4)), item_model=model)
    pipeline = await start_pipeline(services, redis_client, cfg.group_id, item_model=model)
    store = StateStore(redis_client, 3600)
    try:
        builder = SnapshotBuilder(replace(cfg, snapshot_dir=tmp_path), store, PARTITIONS, default_rules)

        async def similar_of_shoe() -> tuple[str, ...]:
            built = await builder.build()
            return SnapshotReader(open_sealed(built.sealed, DEV_KEYS)).similar_items(shoe)

        deadline = time.monotonic() + 30
        while (found := await similar_of_shoe()) != (sock, lace) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # polling what the pipeline task commits
        assert found == (sock, lace)  # sock came with shoe in every session, lace in two of three
        reader = SnapshotReader(open_sealed((await builder.build()).sealed, DEV_KEYS))
        assert reader.similar_items(hat) == ()
        assert set(reader.similar_items(lace)) == {shoe, sock}
    finally:
        await pipeline.stop()


async def test_an_event_past_the_allowed_lateness_is_kept_on_the_late_topic_and_not_applied(
    services: Services, redis_client: redis.Redis
) -> None:
    user = fresh_user()
    now_ms = int(time.time() * 1000)
    await produce_events(services.bootstrap, views(user, "p0100", 1), PARTITIONS)
    pipeline = await start_pipeline(
        services, redis_client, "g-" + secrets.token_hex(4), rate_alarms=RateAlarmSettings(tick_s=0.2)
    )
    try:
        deadline = time.monotonic() + 30
        while await stored_views(redis_client, user, "p0100") < 1 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the first view sets the partition's watermark
        two_hours_ago = now_ms - 2 * 3600_000
        late = Event("page_view", user, two_hours_ago, now_ms, item="p0101", category="c")
        await produce_events(services.bootstrap, [late, *views(user, "p0102", 1)], PARTITIONS)
        records = await read_topic(
            services.bootstrap, LATE_TOPIC, lambda rs: any(decode_event(v) == late for _, v in rs)
        )
        record = next(r for r, v in records if decode_event(v) == late)
        assert b"behind the partition's watermark" in dict(record.headers)["pz-reason"]  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while await stored_views(redis_client, user, "p0102") < 1 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the partition flows on past the late event
        assert await stored_views(redis_client, user, "p0102") == 1
        assert await stored_views(redis_client, user, "p0101") == 0
        # caught up: the lag (committed offset against the log end) reads zero at the next progress tick
        labels = {"topic": event_topic("page_view"), "partition": str(user % PARTITIONS)}
        await wait_until(lambda: REGISTRY.get_sample_value("pz_aggregator_consumer_lag", labels) == 0.0)
        # and the ticks report the state's size in Redis and the applied rate by type
        await wait_until(
            lambda: (REGISTRY.get_sample_value("pz_aggregator_redis_used_bytes") or 0) > 0, timeout_s=5
        )
        assert REGISTRY.get_sample_value("pz_aggregator_event_rate", {"type": "page_view"}) is not None
    finally:
        await pipeline.stop()


async def test_a_stalled_partition_is_reported_then_recovered(
    services: Services, redis_client: redis.Redis
) -> None:
    """A partition whose fetches stop (the consumer paused by the test, as a wedged fetch would) while
    records wait beyond its offset: reported stalled within stall_after_s, sought again, then given a
    new consumer, and its records are committed."""
    await redis_client.flushdb()
    pipeline = await start_pipeline(services, redis_client, "g-" + secrets.token_hex(4), stall_after_s=1.0)
    try:
        user = fresh_user()
        tp = TopicPartition(event_topic("page_view"), user % PARTITIONS)
        await wait_until(lambda: not pipeline.rebuilding, timeout_s=30)  # caught up with older tests' events
        before = (
            REGISTRY.get_sample_value("pz_aggregator_stall_recoveries_total", {"action": "new_consumer"}) or 0
        )
        pipeline._consumer.pause(tp)  # type: ignore[union-attr]
        await produce_events(services.bootstrap, views(user, "p0300", 2), PARTITIONS)
        await wait_until(lambda: tp in pipeline.watch.stalled(), timeout_s=15)
        assert REGISTRY.get_sample_value("pz_aggregator_stalled_partitions") == 1.0
        deadline = time.monotonic() + 20
        while await stored_views(redis_client, user, "p0300") < 2 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert await stored_views(redis_client, user, "p0300") == 2
        after = REGISTRY.get_sample_value("pz_aggregator_stall_recoveries_total", {"action": "new_consumer"})
        assert after == before + 1  # the seek alone did not help (still paused): a new consumer did
        await pipeline.check_progress()
        assert pipeline.watch.stalled() == []
    finally:
        await pipeline.stop()


@pytest.mark.timeout(300)
async def test_a_partition_too_long_for_the_brokers_fetch_wait_is_still_consumed(tmp_path: Path) -> None:
    """The stall found by the kill loops, reproduced: the embedded broker lists a partition's batches
    within the fetch wait, so at a 10 ms wait a partition of ~20 000 batches is not listed in time and
    its tail answers every fetch with nothing. The pipeline notices (a position below the broker's
    own high-water mark that never moves), widens its fetch wait and consumes to the end."""
    broker, bootstrap = start_broker(tmp_path / "logs")
    redis_proc, redis_url = start_redis(tmp_path / "logs")
    client = redis.Redis.from_url(redis_url)
    try:
        await create_topics(bootstrap, PARTITIONS)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=200)  # a batch per record
        await producer.start()
        user, count = fresh_user(), 25_000
        now_ms = int(time.time() * 1000)
        topic, partition = event_topic("page_view"), user % PARTITIONS
        try:
            for start in range(0, count, 2000):
                sent = [
                    await producer.send(
                        topic,
                        encode_event(
                            Event("page_view", user, now_ms, now_ms, item=f"p{i % 20}", category="c")
                        ),
                        partition=partition,
                    )
                    for i in range(start, min(count, start + 2000))
                ]
                await asyncio.gather(*sent)
        finally:
            await producer.stop()
        cfg = AggregatorConfig(
            kafka_bootstrap=bootstrap, redis_url=redis_url, group_id="g-long", fetch_max_wait_ms=10
        )
        pipeline = Pipeline(cfg, StateStore(client, 3600))
        await pipeline.start()
        try:
            store = StateStore(client, 3600)
            deadline = time.monotonic() + 240
            while (await store.load_position(partition)).offsets.get(topic, 0) < count:
                assert time.monotonic() < deadline, await store.load_position(partition)
                await asyncio.sleep(0.2)
            widened = REGISTRY.get_sample_value(
                "pz_aggregator_stall_recoveries_total", {"action": "longer_fetch_wait"}
            )
            assert widened is not None and widened >= 1  # it was starved, and said so
            assert (REGISTRY.get_sample_value("pz_aggregator_fetch_max_wait_ms") or 0) > 10
        finally:
            await pipeline.stop()
    finally:
        await client.aclose()
        redis_proc.stop()
        broker.stop()
