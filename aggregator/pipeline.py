"""Consume events, keep per-user sliding windows in Redis, publish sequenced delta batches.

Per partition and per consumed batch: decode (poison records go to the dead-letter topic), update
the users' windows, publish one signed delta batch, then write state + offsets + delta sequence in
one atomic, fenced Redis step. A crash between the publish and the commit replays the batch under a
new sequence number (numbers are reserved in Redis before publishing), carrying the same profiles.

A rebalance lets the batch in flight finish before the partitions go; a commit that lands too late
anyway (a member paused past its session) is fenced off in Redis and rewound, never applied twice.
An unexpected error in one partition's batch is logged and rewound like a Redis failure: the loop
itself never dies while the process keeps heartbeating and holding partitions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import cache
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from aggregator import metrics
from aggregator.anomalies import user_flags
from aggregator.config import AggregatorConfig
from aggregator.event_rates import RateMonitor
from aggregator.intake import Routed, admit
from aggregator.item_history import UserHistory, WindowSettings, add_events, expire, to_profile
from aggregator.item_model import CoOccurrence, add_user_events
from aggregator.state_store import CommitFenced, PartitionCommit, PartitionPosition, StateStore
from aggregator.tasks import cancel_and_wait
from schemas.delta_codec import DeltaBatch, encode_delta
from schemas.events import Event
from schemas.rules import RuleSet, default_rules
from schemas.rules.horizons import horizons
from schemas.signing import seal
from schemas.topics import DELTAS_TOPIC, DLQ_TOPIC, EVENT_TOPIC_PREFIX, EVENT_TOPICS, INTERACTION_TYPES

log = logging.getLogger("pz.aggregator.pipeline")
default_rules_once = cache(default_rules)
_RETRY_BACKOFF_S = 0.5
_DRAIN_TIMEOUT_S = 10.0  # a rebalance waits this long for the batch in flight; the fence covers the rest


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._pipeline.forget(revoked)
        await self._pipeline.drain()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._pipeline.restore(assigned)


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.critical("the consume loop has stopped", exc_info=error)


class Pipeline:
    def __init__(
        self, config: AggregatorConfig, store: StateStore, rules: Callable[[], RuleSet] = default_rules_once
    ) -> None:
        self._config = config
        self._store = store
        self._rules = rules
        self._configured = WindowSettings(
            config.window_s,
            config.max_times_per_item,
            config.max_items_per_user,
            config.cart_window_s,
            config.purchase_window_s,
        )
        self._settings = self._configured
        self._settings_for: RuleSet | None = None
        self._item_model = config.item_model
        self._intake = config.intake
        self._anomalies = config.anomalies
        self.rates = RateMonitor(config.rate_alarms, INTERACTION_TYPES)
        self._rates_task: asyncio.Task[None] | None = None
        self._positions: dict[int, PartitionPosition] = {}
        # Partitions whose last commit failed: whether Redis applied it is unknown (the reply may be
        # what was lost), so their position is read back from Redis before anything else.
        self._uncertain: set[int] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.assigned = False

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._config.kafka_bootstrap, acks="all", linger_ms=0
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._config.kafka_bootstrap,
            group_id=self._config.group_id,
            enable_auto_commit=False,  # offsets live in Redis, committed with the state
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._config.fetch_max_wait_ms,
            session_timeout_ms=self._config.session_timeout_ms,
            heartbeat_interval_ms=max(300, self._config.session_timeout_ms // 5),
            # co-partitioning: partition p of every event topic goes to the same member
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self._consumer.subscribe(list(EVENT_TOPICS), listener=_Rebalance(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="pz-aggregator-pipeline")
        self._task.add_done_callback(_log_end)
        self._rates_task = asyncio.create_task(self._tick_rates(), name="pz-aggregator-event-rates")

    async def stop(self) -> None:
        """Graceful: the batch in flight is committed first (within the drain timeout), then the
        loop stops before it takes another; what was not committed is consumed again by the next owner."""
        await cancel_and_wait(self._rates_task)
        await self.drain()
        await cancel_and_wait(self._task)  # no await in between: the loop cannot start another batch
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def forget(self, revoked: Iterable[TopicPartition]) -> None:
        """Stop working on revoked partitions: batches from now on skip them, and a batch in flight
        keeps its result to itself (its commit is fenced if the next owner got there first)."""
        for tp in revoked:
            self._positions.pop(tp.partition, None)
            self._uncertain.discard(tp.partition)
        metrics.ASSIGNED_PARTITIONS.set(len(self._positions))
        self.rates.reset()

    async def drain(self) -> None:
        """Wait for the batch in flight, so that the next owner starts from its commit."""
        try:
            await asyncio.wait_for(self._idle.wait(), _DRAIN_TIMEOUT_S)
        except TimeoutError:
            log.warning("went ahead (rebalance or stop) with a batch still in flight")

    async def restore(self, assigned: Iterable[TopicPartition]) -> None:
        """Seek every assigned partition to the offset stored with its state."""
        assert self._consumer is not None
        tps = list(assigned)
        for partition in {tp.partition for tp in tps}:
            self._positions[partition] = await self._store.load_position(partition)
        for tp in tps:
            offset = self._positions[tp.partition].offsets.get(tp.topic)
            if offset is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)
        self.assigned = True
        metrics.ASSIGNED_PARTITIONS.set(len(self._positions))
        self.rates.reset()
        log.info("partitions assigned", extra={"partitions": sorted(self._positions)})

    async def _tick_rates(self) -> None:
        """Every tick: event rates and their alarms, and how much memory the state takes in Redis."""
        interval_s = self._config.rate_alarms.tick_s
        last = time.monotonic()
        while True:
            await asyncio.sleep(interval_s)
            now = time.monotonic()
            self.rates.tick(now - last)
            last = now
            try:  # the state's size, beside the rates: both are the health of the data
                metrics.REDIS_USED_BYTES.set(await self._store.used_memory())
            except RedisError:
                pass  # the batches report Redis failures; a missed reading is not news

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
            if not batch:
                continue
            self._idle.clear()
            try:
                await self._process_batch(batch)
            finally:
                self._idle.set()

    async def _process_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        started = time.perf_counter()
        self._record_lag(batch)
        by_partition: dict[int, list[tuple[TopicPartition, list[Any]]]] = defaultdict(list)
        for tp, records in batch.items():
            by_partition[tp.partition].append((tp, records))
        # Partitions are independent (own state keys, own delta sequence): their round trips to
        # Redis and Kafka overlap instead of adding up.
        await asyncio.gather(
            *(
                self._process_or_rewind(partition, parts)
                for partition, parts in by_partition.items()
                if partition in self._positions  # skip what a rebalance took away mid-batch
            )
        )
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _process_or_rewind(self, partition: int, parts: list[tuple[TopicPartition, list[Any]]]) -> None:
        """Process one partition's records; on any failure, go back to what is committed.

        Nothing of a failed batch is kept: the partition's position is read back from Redis and the
        consumer rewound, so the records are processed again once Redis and Kafka answer.
        """
        try:
            await self._process_partition(partition, parts)
            return
        except CommitFenced as exc:
            metrics.FENCED_COMMITS.inc()
            log.info(
                "commit overtaken by another member; rewinding",
                extra={"partition": partition, "error": str(exc)},
            )
        except (RedisError, KafkaError, OSError) as exc:
            metrics.BATCH_FAILURES.inc()
            log.warning(
                "batch failed; rewinding to the committed offsets",
                extra={"partition": partition, "error": repr(exc)},
            )
        except Exception:
            metrics.BATCH_FAILURES.inc()
            log.exception(
                "unexpected error in a batch; rewinding to the committed offsets",
                extra={"partition": partition},
            )
        committed = self._positions.get(partition)
        if committed is None:
            return  # revoked meanwhile: the new owner starts from what is in Redis
        self._uncertain.add(partition)
        assert self._consumer is not None
        for tp, records in parts:
            if records:
                self._consumer.seek(tp, committed.offsets.get(tp.topic, records[0].offset))
        await asyncio.sleep(_RETRY_BACKOFF_S)

    async def _process_partition(self, partition: int, parts: list[tuple[TopicPartition, list[Any]]]) -> None:
        assert self._producer is not None
        if partition in self._uncertain:
            reloaded = await self._store.load_position(partition)
            if partition not in self._positions:
                return  # revoked while the position was read back
            self._positions[partition] = reloaded
            self._uncertain.discard(partition)
        current = self._positions[partition]
        position = PartitionPosition(
            dict(current.offsets), current.seq, current.delta_offset, current.commits, current.watermark_s
        )
        settings = self._window_settings()
        events_by_user: dict[int, list[Event]] = defaultdict(list)
        routed = []
        watermark_s = current.watermark_s  # lateness is judged against the batches before this one
        for tp, records in parts:
            stored = current.offsets.get(tp.topic, 0)
            if records and records[0].offset < stored:
                # Already applied (a reset raced our seek, or a broker redelivered): the offsets stored
                # with the state are the truth, so skip ahead instead of counting twice.
                assert self._consumer is not None
                self._consumer.seek(tp, max(stored, records[-1].offset + 1))
            applied = 0
            for record in records:
                if record.offset < stored:
                    continue
                event = admit(record.value, current.watermark_s, self._intake)
                if isinstance(event, Routed):
                    routed.append(self._route(event, tp, record))
                else:
                    events_by_user[event.user_key].append(event)
                    watermark_s = max(watermark_s, event.client_ms // 1000)
                    applied += 1
                position.offsets[tp.topic] = record.offset + 1
            if applied:  # counted per topic and batch: a labelled metric per event costs a microsecond
                metrics.EVENTS.labels(tp.topic).inc(applied)
                self.rates.count(tp.topic.removeprefix(EVENT_TOPIC_PREFIX), applied)
        position.watermark_s = watermark_s
        metrics.WATERMARK.labels(str(partition)).set(watermark_s)
        if routed:  # kept before the offsets that pass them are committed
            await asyncio.gather(*routed)

        states = await self._store.load_users(partition, events_by_user)
        item_views: dict[str, int] = defaultdict(int)
        item_categories: dict[str, str] = {}
        together = CoOccurrence.empty()
        for user_key, events in events_by_user.items():
            add_user_events(together, states[user_key], events, self._item_model)
            add_events(states[user_key], events, settings)
            expire(states[user_key], watermark_s, settings)
            for event in events:
                if event.type == "page_view" and event.item:
                    item_views[event.item] += 1
                    if event.category:
                        item_categories[event.item] = event.category

        if states:
            await self._publish_delta(partition, position, states)
        await self._store.commit(
            PartitionCommit(partition, states, item_views, item_categories, position, together)
        )
        if partition in self._positions:  # not revoked meanwhile
            self._positions[partition] = position

    def _record_lag(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Lag from the high-water mark in fetch responses (tansu's end-offset answers are wrong
        after multi-record batches, see DESIGN.md; fetch responses are right on every broker)."""
        assert self._consumer is not None
        for tp, records in batch.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None and records:
                lag = max(0, highwater - records[-1].offset - 1)
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)

    def _window_settings(self) -> WindowSettings:
        """The configured horizons, stretched to the longest window the rules in force look at."""
        rules = self._rules()
        if rules is not self._settings_for:
            needed = horizons(rules)
            base = self._configured
            self._settings = replace(
                base,
                window_s=max(base.window_s, needed["view"]),
                cart_window_s=max(base.cart_window_s, needed["cart"]),
                purchase_window_s=max(base.purchase_window_s, needed["purchase"]),
            )
            self._settings_for = rules
            log.info("window horizons", extra={"rules_version": rules.version, **needed})
        return self._settings

    async def _publish_delta(
        self, partition: int, position: PartitionPosition, states: dict[int, UserHistory]
    ) -> None:
        assert self._producer is not None
        now_ms = int(time.time() * 1000)
        upserts = [
            to_profile(key, state, now_ms, user_flags(state, self._anomalies))
            for key, state in states.items()
            if not state.forgotten
        ]
        deletes = [key for key, state in states.items() if state.forgotten]
        position.seq = await self._store.reserve_seq(partition, position.seq)
        batch = DeltaBatch(
            partition=partition, seq=position.seq, created_ms=now_ms, upserts=upserts, deletes=deletes
        )
        sealed = seal(encode_delta(batch), self._config.signing_key)
        sent = await self._producer.send_and_wait(DELTAS_TOPIC, sealed, partition=partition)
        position.delta_offset = sent.offset
        metrics.DELTAS.inc()

    async def _route(self, routed: Routed, tp: TopicPartition, record: Any) -> None:
        """A record that is not applied goes, unchanged, to the dead-letter or late topic with why."""
        assert self._producer is not None
        headers = [
            ("pz-reason", routed.reason.encode()),
            ("pz-source-topic", tp.topic.encode()),
            ("pz-source-partition", str(tp.partition).encode()),
            ("pz-source-offset", str(record.offset).encode()),
        ]
        await self._producer.send_and_wait(routed.topic, record.value, key=record.key, headers=headers)
        if routed.topic == DLQ_TOPIC:
            metrics.DEAD_LETTERS.labels(tp.topic).inc()
            log.warning(
                "record sent to dead-letter topic", extra={"topic": tp.topic, "reason": routed.reason}
            )
        else:
            metrics.LATE_EVENTS.labels(tp.topic).inc()
