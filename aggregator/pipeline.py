"""Consume events, keep per-user sliding windows in Redis, publish sequenced delta batches.

Per partition and per consumed batch: decode (poison records go to the dead-letter topic), update
the users' windows, publish one signed delta batch, then write state + offsets + delta sequence in
one atomic, fenced Redis step. A crash between the publish and the commit replays the batch under a
new sequence number (numbers are reserved in Redis before publishing, and kept above the newest on
`pz.deltas`, see delta_log), carrying the same profiles.

Which process works on which partition is decided by leases in Redis (ownership), between batches;
a commit that lands after its partition moved on anyway is fenced off in Redis and rewound, never
applied twice. After any failed batch the partition's position is read back from Redis and the
consumer sought there: Redis, not this process's memory, is the record of what was applied. A
position that Redis no longer has although deltas were published for the partition means the state
was lost (a wipe, a restart without persistence): that is said loudly (log, metric, readiness) and the
partition is rebuilt from the oldest records the topics still hold. Every owned topic-partition's
progress is watched (progress): one with records beyond its offset that does not move for
`stall_after_s` is logged, counted, makes the process not ready, and is sought again, then given a new
consumer. The loop itself never dies while the process holds partitions.
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

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from aggregator import metrics
from aggregator.anomalies import user_flags
from aggregator.config import AggregatorConfig
from aggregator.consumer_guard import ConsumerGuard, topic_partitions
from aggregator.delta_log import PublishedDeltas
from aggregator.event_rates import RateMonitor
from aggregator.intake import Routed, admit
from aggregator.item_history import UserHistory, WindowSettings, add_events, expire, to_profile
from aggregator.item_model import CoOccurrence, add_user_events
from aggregator.log_limits import RateLimitedLog
from aggregator.ownership import OwnershipSettings, PartitionLeases
from aggregator.progress import ProgressWatch
from aggregator.state_store import CommitFenced, PartitionCommit, PartitionPosition, StateStore
from aggregator.tasks import cancel_and_wait
from schemas.delta_codec import DeltaBatch, encode_delta
from schemas.events import Event
from schemas.rules import RuleSet, default_rules
from schemas.rules.horizons import horizons
from schemas.signing import seal, verifier_for
from schemas.topics import DELTAS_TOPIC, DLQ_TOPIC, EVENT_TOPIC_PREFIX, EVENT_TOPICS, INTERACTION_TYPES

log = logging.getLogger("pz.aggregator.pipeline")
default_rules_once = cache(default_rules)
_RETRY_BACKOFF_S = 0.5
_DRAIN_TIMEOUT_S = 10.0
_OWNERSHIP_TICK_S = 0.5  # leases are renewed this often (they last config.lease_ms)
_WATCH_TICK_S = 1.0


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.critical("the consume loop has stopped", exc_info=error)


class Pipeline:
    def __init__(
        self,
        config: AggregatorConfig,
        store: StateStore,
        rules: Callable[[], RuleSet] = default_rules_once,
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
        self._watch_task: asyncio.Task[None] | None = None
        self._positions: dict[int, PartitionPosition] = {}
        # Where a partition with no stored offset started (the oldest record its topics held).
        self._start_offsets: dict[TopicPartition, int] = {}
        # Partitions whose last commit failed: whether Redis applied it is unknown (the reply may be
        # what was lost), so their position is read back from Redis before anything else.
        self._uncertain: set[int] = set()
        # The newest delta sequence number published per partition (by this process or, as read from
        # pz.deltas, by any before it): the next one is above it whatever Redis remembers.
        self._published_seq: dict[int, int] = {}
        # Partitions being rebuilt after a state loss -> the log ends to reach before they are whole.
        self.rebuilding: dict[int, dict[str, int]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._deltas: PublishedDeltas | None = None
        self._leases: PartitionLeases | None = None
        self._partition_count = 0
        self._task: asyncio.Task[None] | None = None
        self.guard = ConsumerGuard(self, config.stall_after_s, config.fetch_max_wait_ms)
        self._throttled = RateLimitedLog(log)
        self.redis_ok = True
        self.redis_down_since_ms: int | None = None  # wall clock, since the pipeline's Redis calls fail
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def assigned(self) -> bool:
        """Whether this process owns at least one partition."""
        return bool(self._positions)

    @property
    def owned(self) -> list[int]:
        return sorted(self._positions)

    def _new_consumer(self) -> AIOKafkaConsumer:
        # No consumer group: partitions are assigned by the leases (ownership explains why).
        return AIOKafkaConsumer(
            bootstrap_servers=self._config.kafka_bootstrap,
            enable_auto_commit=False,  # offsets live in Redis, committed with the state
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.guard.fetch_wait.ms,
        )

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._config.kafka_bootstrap, acks="all", linger_ms=0
        )
        await self._producer.start()
        self._partition_count = len(await self._producer.partitions_for(EVENT_TOPICS[0]))
        self._deltas = PublishedDeltas(
            self._config.kafka_bootstrap,
            verifier_for(self._config.signing_key),
            self._config.fetch_max_wait_ms,
        )
        await self._deltas.start()
        self._leases = PartitionLeases(
            self._store.client,
            OwnershipSettings(self._config.member, self._config.group_id, self._config.lease_ms),
            self._partition_count,
        )
        self._consumer = self._new_consumer()
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="pz-aggregator-pipeline")
        self._task.add_done_callback(_log_end)
        self._rates_task = asyncio.create_task(self._tick_rates(), name="pz-aggregator-event-rates")
        self._watch_task = asyncio.create_task(self._watch(), name="pz-aggregator-progress")

    async def stop(self) -> None:
        """Graceful: the batch in flight is committed first, then the loop stops before it takes
        another and the leases are given back, so that another member takes over at once."""
        await cancel_and_wait(self._rates_task)
        await cancel_and_wait(self._watch_task)
        self.guard.stop()
        await self.drain()
        await cancel_and_wait(self._task)  # no await in between: the loop cannot start another batch
        if self._leases is not None:
            try:
                await self._leases.release_all()
            except RedisError:
                pass  # they expire on their own
        if self._consumer is not None:
            await self._consumer.stop()
        if self._deltas is not None:
            await self._deltas.stop()
        if self._producer is not None:
            await self._producer.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def forget(self, revoked: Iterable[int]) -> None:
        """Stop working on partitions this process no longer owns."""
        for partition in revoked:
            self._positions.pop(partition, None)
            self._uncertain.discard(partition)
            self.rebuilding.pop(partition, None)
            tps = topic_partitions([partition])
            self.guard.forget(tps)
            for tp in tps:
                self._start_offsets.pop(tp, None)
        metrics.ASSIGNED_PARTITIONS.set(len(self._positions))
        self.rates.reset()

    async def _rebalance(self) -> None:
        """Take, renew and give back leases; make the consumer's assignment follow."""
        assert self._leases is not None and self._consumer is not None
        try:
            change = await self._leases.tick()
        except (RedisError, OSError) as exc:
            self._redis_failed("partition leases", exc)
            return
        if not change.gained and not change.lost:
            return
        self.forget(change.lost)
        self._consumer.assign(topic_partitions(change.owned))
        for partition in change.owned - change.gained:  # assign() forgets every position: seek again
            await self.seek(partition, self._positions[partition])
        try:
            await self.restore(change.gained)
        except (RedisError, KafkaError, OSError) as exc:
            # Taken but not restored: given up here, so that the next tick takes and restores again.
            self._throttled.warning("restore", "restoring partitions failed; retrying", error=repr(exc))
            self.forget(change.gained)
            self._leases.owned = self._leases.owned - change.gained
            self._consumer.assign(topic_partitions(self._positions))
            for partition, position in self._positions.items():
                await self.seek(partition, position)
            return
        log.info(
            "partitions owned",
            extra={
                "partitions": sorted(self._positions),
                "gained": sorted(change.gained),
                "lost": sorted(change.lost),
                "members": list(change.members),
            },
        )

    async def restore(self, partitions: Iterable[int]) -> None:
        """Seek every topic of each partition to the offset stored with its state."""
        assert self._deltas is not None
        wanted = sorted(partitions)
        last_published = await self._deltas.last_seqs(wanted)
        for partition in wanted:
            position = await self._store.load_position(partition)
            published = max(self._published_seq.get(partition, 0), last_published[partition])
            self._published_seq[partition] = published
            if position.fresh and published:
                await self._state_lost(partition, published)
            self._positions[partition] = position
            await self.seek(partition, position)
        metrics.ASSIGNED_PARTITIONS.set(len(self._positions))
        self.rates.reset()

    async def seek(self, partition: int, position: PartitionPosition) -> None:
        assert self._consumer is not None
        for tp in topic_partitions([partition]):
            offset = position.offsets.get(tp.topic)
            if offset is None:
                await self._consumer.seek_to_beginning(tp)
                self._start_offsets[tp] = await self._consumer.position(tp)
            else:
                self._consumer.seek(tp, offset)

    async def _state_lost(self, partition: int, published_seq: int) -> None:
        """Redis holds no position for a partition that deltas were published for: its state was lost.
        Rebuilt from the oldest records the topics still hold; said how far back that reaches."""
        assert self._consumer is not None
        tps = topic_partitions([partition])
        oldest = await self._consumer.beginning_offsets(tps)
        ends = await self._consumer.end_offsets(tps)
        self.rebuilding[partition] = {tp.topic: ends[tp] for tp in tps}
        metrics.STATE_RESETS.labels(str(partition)).inc()
        gone = {tp.topic: oldest[tp] for tp in tps if oldest[tp] > 0}
        log.error(
            "state lost: Redis has no position for a partition whose deltas were published (a wipe, or "
            "a restart without persistence); rebuilding it from the retained log",
            extra={
                "partition": partition,
                "last_published_seq": published_seq,
                "rebuild_from_offsets": {tp.topic: oldest[tp] for tp in tps},
                "events_beyond_retention": gone or "none: the log holds every event",
            },
        )

    def _redis_failed(self, what: str, exc: BaseException) -> None:
        if self.redis_ok:
            self.redis_down_since_ms = int(time.time() * 1000)
        self.redis_ok = False
        metrics.DEPENDENCY_UP.labels("redis").set(0)
        self._throttled.warning("redis", "Redis is not answering", during=what, error=repr(exc))

    def _redis_answered(self) -> None:
        if not self.redis_ok:
            log.info("Redis answers again", extra={"down_since_ms": self.redis_down_since_ms})
        self.redis_ok = True
        self.redis_down_since_ms = None
        metrics.DEPENDENCY_UP.labels("redis").set(1)

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
        next_tick_s = 0.0
        while True:
            if time.monotonic() >= next_tick_s:
                await self._rebalance()
                await self.guard.recover()
                next_tick_s = time.monotonic() + _OWNERSHIP_TICK_S
            if not self._positions:
                await asyncio.sleep(_OWNERSHIP_TICK_S)
                continue
            assert self._consumer is not None
            batch = await self._consumer.getmany(timeout_ms=100, max_records=10_000)
            self.guard.fetch_wait.fetches += 1  # proof that the loop fetches, not stuck in a batch
            if not batch:
                continue
            self._idle.clear()
            try:
                await self._process_batch(batch)
            finally:
                self._idle.set()

    async def drain(self) -> None:
        """Wait for the batch in flight (bounded: the fence covers a commit that comes later)."""
        try:
            await asyncio.wait_for(self._idle.wait(), _DRAIN_TIMEOUT_S)
        except TimeoutError:
            log.warning("stopping with a batch still in flight")

    async def _watch(self) -> None:
        """Every tick: each owned topic-partition's committed offset against its log end."""
        while True:
            await asyncio.sleep(_WATCH_TICK_S)
            await self.guard.check_progress()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "started"
        return self._consumer

    @property
    def positions(self) -> dict[int, PartitionPosition]:
        """Where each owned partition stands: what was committed (or is being, in a batch)."""
        return self._positions

    @property
    def start_offsets(self) -> dict[TopicPartition, int]:
        return self._start_offsets

    @property
    def watch(self) -> ProgressWatch:
        return self.guard.watch

    async def check_progress(self) -> None:
        await self.guard.check_progress()

    async def replace_consumer(self) -> None:
        """A new consumer (with the fetch wait in force now), at every owned partition's position."""
        assert self._consumer is not None
        await self._consumer.stop()
        self._consumer = self._new_consumer()
        await self._consumer.start()
        self._consumer.assign(topic_partitions(self._positions))
        for partition, position in self._positions.items():
            await self.seek(partition, position)

    async def _process_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        started = time.perf_counter()
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
            if isinstance(exc, RedisError | OSError):
                self._redis_failed("a batch", exc)
            self._throttled.warning(
                f"batch-{type(exc).__name__}",
                "batch failed; rewinding to the committed offsets",
                partition=partition,
                error=repr(exc),
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

    def _log_truncated(self, tp: TopicPartition, stored: int, first: int) -> bool:
        """Records from before the committed offset, from a log that now ends below it: the broker lost
        records (the embedded broker restarted: it keeps them in memory only) or the topic was made
        anew. Skipping ahead to the old offset would silently drop the new log's records."""
        assert self._consumer is not None
        highwater = self._consumer.highwater(tp)
        if highwater is None or highwater >= stored:
            return False
        self.guard.report_truncation(tp, stored, int(highwater))
        return first < int(highwater)

    async def _reload(self, partition: int) -> None:
        """After a failed batch: Redis's position is the truth, whatever this process remembers.
        Less than remembered: Redis lost its latest writes (restarted), so the records are replayed
        from its offsets; nothing at all although deltas went out: the state is lost and rebuilt."""
        remembered = self._positions[partition]
        reloaded = await self._store.load_position(partition)
        self._redis_answered()
        if partition not in self._positions:
            return  # revoked while the position was read back
        published = self._published_seq.get(partition, 0)
        if reloaded.fresh and (remembered.commits or published):
            await self._state_lost(partition, published)
        elif reloaded.commits < remembered.commits:
            metrics.STATE_ROLLBACKS.inc()
            log.warning(
                "Redis holds an older position than this process committed (restarted without its "
                "latest writes?); replaying from Redis's offsets",
                extra={"partition": partition, "commits": reloaded.commits, "remembered": remembered.commits},
            )
        self._positions[partition] = reloaded
        self._uncertain.discard(partition)
        await self.seek(partition, reloaded)

    async def _process_partition(self, partition: int, parts: list[tuple[TopicPartition, list[Any]]]) -> None:
        assert self._producer is not None
        if partition in self._uncertain:
            await self._reload(partition)
            return  # these records were fetched from the position before the reload
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
            if records and records[0].offset < stored and self._log_truncated(tp, stored, records[0].offset):
                stored = records[0].offset  # the new log is consumed from its start
            elif records and records[0].offset < stored:
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
        metrics.COMMITS.inc()
        self._redis_answered()
        if partition in self._positions:  # not revoked meanwhile
            self._positions[partition] = position

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
        floor = max(position.seq, self._published_seq.get(partition, 0))
        position.seq = await self._store.reserve_seq(partition, floor)
        self._published_seq[partition] = position.seq
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
