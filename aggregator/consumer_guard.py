"""Watches the consumer and repairs it: per owned topic-partition, progress against the log end, a
log found shorter than the committed offset, fetches starved by the embedded broker (fetch_wait), and
stalls (progress). Findings are made by `check_progress` (the watch task, once a second) and acted
on by `recover`, which the consume loop calls between batches, so no batch is in flight across a
seek or a new consumer. The pipeline owns the consumer and the positions; this part owns the verdicts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from aggregator import metrics
from aggregator.fetch_wait import FetchWait
from aggregator.log_limits import RateLimitedLog
from aggregator.progress import ProgressWatch
from aggregator.state_store import PartitionPosition
from schemas.topics import EVENT_TOPICS

log = logging.getLogger("pz.aggregator.pipeline")
_BROKER_TIMEOUT_S = 3.0  # a list-offsets call that takes longer counts as the broker not answering


def topic_partitions(partitions: Iterable[int]) -> list[TopicPartition]:
    """Every event topic of each partition (co-partitioned: partition p of every topic is one unit)."""
    return [TopicPartition(topic, p) for p in sorted(partitions) for topic in EVENT_TOPICS]


class GuardedConsumer(Protocol):
    """What the guard reads and asks of the pipeline."""

    rebuilding: dict[int, dict[str, int]]
    redis_ok: bool

    @property
    def consumer(self) -> AIOKafkaConsumer: ...

    @property
    def positions(self) -> dict[int, PartitionPosition]: ...

    @property
    def start_offsets(self) -> dict[TopicPartition, int]: ...

    async def seek(self, partition: int, position: PartitionPosition) -> None: ...

    async def replace_consumer(self) -> None: ...


class ConsumerGuard:
    def __init__(self, host: GuardedConsumer, stall_after_s: float, fetch_max_wait_ms: int) -> None:
        self._host = host
        self.watch = ProgressWatch(stall_after_s)
        self.fetch_wait = FetchWait(fetch_max_wait_ms)
        self.broker_ok = True
        self._throttled = RateLimitedLog(log)
        self._recover: list[TopicPartition] = []  # stalled, to be sought again by the loop
        self._sought_once: set[TopicPartition] = set()  # stalled again after a seek: a new consumer
        self._truncated: list[TopicPartition] = []  # logs found ending below the committed offset
        self._widen = False  # the fetch wait was widened: the loop replaces the consumer
        self._listing: asyncio.Future[dict[TopicPartition, int]] | None = None  # end offsets asked for

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        tps = list(tps)
        self.watch.forget(tps)
        for tp in tps:
            self._sought_once.discard(tp)
            try:
                metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
            except KeyError:
                pass  # never reported

    def stop(self) -> None:
        if self._listing is not None and not self._listing.done():
            self._listing.cancel()  # stopping: the consumer goes too

    async def check_progress(self) -> None:
        tps = topic_partitions(self._host.positions)
        listed: dict[TopicPartition, int] = {}
        if tps:
            # Waited for, never cancelled (shield): a request cut short inside aiokafka can leave its
            # client's state half-done; a slow one is simply waited for again at the next tick.
            if self._listing is None or self._listing.done():
                self._listing = asyncio.ensure_future(self._host.consumer.end_offsets(tps))
            try:
                listed = await asyncio.wait_for(asyncio.shield(self._listing), _BROKER_TIMEOUT_S)
                self.broker_ok = True
                metrics.DEPENDENCY_UP.labels("kafka").set(1)
            except (KafkaError, OSError, TimeoutError) as exc:
                self.broker_ok = False
                metrics.DEPENDENCY_UP.labels("kafka").set(0)
                self._throttled.warning("kafka", "the broker does not answer list-offsets", error=repr(exc))
        now_s = time.monotonic()
        for tp in tps:
            position = self._host.positions.get(tp.partition)
            if position is None:
                continue
            committed = position.offsets.get(tp.topic, self._host.start_offsets.get(tp, 0))
            highwater = self._host.consumer.highwater(tp)
            if highwater is not None and highwater < committed and tp not in self._truncated:
                # A fetch answered that the log ends below what was committed (the embedded broker
                # answers so instead of "out of range"): the loop restarts the topic-partition.
                self._truncated.append(tp)
            log_end = max(highwater or 0, listed.get(tp, 0))
            progress = self.watch.observe(tp, committed, log_end, now_s)
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(progress.lag)
        for partition, ends in list(self._host.rebuilding.items()):
            position = self._host.positions.get(partition)
            if position is not None and all(position.offsets.get(t, 0) >= end for t, end in ends.items()):
                del self._host.rebuilding[partition]
                log.warning(
                    "partition rebuilt from the log after the state loss", extra={"partition": partition}
                )
        await self._check_starvation(tps)
        for stalled in self.watch.newly_stalled(now_s):
            metrics.STALLS.labels(stalled.tp.topic).inc()
            log.error(
                "partition stalled: records beyond the committed offset and no progress",
                extra={
                    "topic": stalled.tp.topic,
                    "partition": stalled.tp.partition,
                    "committed": stalled.committed,
                    "log_end": stalled.log_end,
                    "idle_s": round(stalled.idle_s, 1),
                    "fetch_position": self._position_of(stalled.tp),
                    "redis_ok": self._host.redis_ok,
                },
            )
            self._recover.append(stalled.tp)
        metrics.STALLED_PARTITIONS.set(len(self.watch.stalled()))

    async def _check_starvation(self, tps: list[TopicPartition]) -> None:
        """Fetches answered with nothing below the broker's high-water mark (fetch_wait explains
        when the embedded broker does that): the fetch wait is doubled and the consumer replaced."""
        now_s = time.monotonic()
        starving = [
            f"{tp.topic}/{tp.partition}@{self._position_of(tp)}<{self._host.consumer.highwater(tp)}"
            for tp in tps
            if self.fetch_wait.starved(tp, self._position_of(tp), self._host.consumer.highwater(tp), now_s)
        ]
        if starving and self.fetch_wait.widen():
            metrics.FETCH_WAIT_MS.set(self.fetch_wait.ms)
            metrics.STALL_RECOVERIES.labels("longer_fetch_wait").inc()
            log.warning(
                "the broker answers fetches below its high-water mark with no records; fetching with a "
                "longer wait (the embedded broker lists a partition's batches within the fetch wait, "
                "and a long partition is not listed in time)",
                extra={"partitions": starving, "fetch_max_wait_ms": self.fetch_wait.ms},
            )
            self._widen = True

    def _position_of(self, tp: TopicPartition) -> int | None:
        try:
            # The fetch position without position()'s wait for a reset: aiokafka keeps it here.
            subscription = self._host.consumer._subscription.subscription  # noqa: SLF001
            state = subscription.assignment.state_value(tp)
            return int(state.position) if state is not None and state.has_valid_position else None
        except (AttributeError, TypeError, KeyError):
            return None

    async def _restart_truncated(self) -> None:
        """Topic-partitions whose log ends below the committed offset: consumed from the new log's
        start (between batches: the next commit stores the new offset)."""
        truncated, self._truncated = self._truncated, []
        for tp in truncated:
            position = self._host.positions.get(tp.partition)
            highwater = self._host.consumer.highwater(tp)
            committed = position.offsets.get(tp.topic) if position is not None else None
            if position is None or committed is None or highwater is None or highwater >= committed:
                continue  # given up, or the log caught up meanwhile
            self.report_truncation(tp, committed, int(highwater))
            start = (await self._host.consumer.beginning_offsets([tp]))[tp]
            position.offsets[tp.topic] = start
            self._host.consumer.seek(tp, start)

    async def recover(self) -> None:
        """Between batches: truncated logs restarted, a widened fetch wait applied, stalled partitions
        sought back to the committed offset, and, stalled again, a new consumer altogether."""
        await self._restart_truncated()
        if self._widen:
            self._widen = False
            await self._host.replace_consumer()
        if not self._recover:
            return
        stalled, self._recover = self._recover, []
        again = [tp for tp in stalled if tp in self._sought_once]
        if again:
            metrics.STALL_RECOVERIES.labels("new_consumer").inc()
            log.error(
                "stalled after a seek too: replacing the consumer",
                extra={"partitions": [str(t) for t in again]},
            )
            await self._host.replace_consumer()
            self._sought_once.clear()
        else:
            metrics.STALL_RECOVERIES.labels("seek").inc()
            for tp in stalled:
                if (current := self._host.positions.get(tp.partition)) is not None:
                    await self._host.seek(tp.partition, current)
                    self._sought_once.add(tp)
        self.watch.restart_clock(stalled, time.monotonic())

    def report_truncation(self, tp: TopicPartition, committed: int, log_end: int) -> None:
        metrics.LOG_TRUNCATIONS.labels(tp.topic).inc()
        log.error(
            "the broker's log ends below the committed offset: it lost records (restarted without "
            "storage?) or the topic was made anew; consuming the log as it is now from its start",
            extra={"topic": tp.topic, "partition": tp.partition, "committed": committed, "log_end": log_end},
        )
        self.watch.forget([tp])
