"""Delta batches from Kafka: every partition of pz.deltas, without a consumer group.

The edge starts right after the position its snapshot includes; every batch goes through the
DeltaApplier.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from edge_worker import metrics
from edge_worker.backoff import Backoff
from edge_worker.broker_contact import BrokerContact
from edge_worker.delta_apply import DeltaApplier
from edge_worker.fetch_wait import FetchWait
from edge_worker.profile_store import ProfileStore
from edge_worker.tasks import cancel_and_wait
from schemas.topics import DELTAS_TOPIC, RULES_TOPIC

log = logging.getLogger("pz.edge.deltas")
_PROBE_EVERY_S = 1.0


class DeltaSync:
    def __init__(
        self,
        store: ProfileStore,
        bootstrap: str,
        fetch_max_wait_ms: int,
        applier: DeltaApplier,
        on_rules: Callable[[bytes], None] | None = None,
        contact: BrokerContact | None = None,
    ) -> None:
        self._contact = contact or BrokerContact(5.0)
        self._on_rules = on_rules
        self._store = store
        self._bootstrap = bootstrap
        self._wait = FetchWait(fetch_max_wait_ms)
        self._applier = applier
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self.connected = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pz-edge-delta-sync")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _connect(self, resume: dict[TopicPartition, int] | None = None) -> AIOKafkaConsumer:
        """Every partition, from the snapshot's positions (or from `resume`, after a widened wait)."""
        backoff = Backoff()
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=None,
                enable_auto_commit=False,
                fetch_max_wait_ms=self._wait.ms,
            )
            try:
                await consumer.start()
                partitions = consumer.partitions_for_topic(DELTAS_TOPIC)
                if not partitions:
                    await consumer.stop()
                    raise KafkaError(f"topic {DELTAS_TOPIC} not found")
                tps = [TopicPartition(DELTAS_TOPIC, p) for p in sorted(partitions)]
                rules = [TopicPartition(RULES_TOPIC, 0)] if consumer.partitions_for_topic(RULES_TOPIC) else []
                consumer.assign(tps + rules)
                await self._seek(consumer, tps)
                for tp, position in (resume or {}).items():
                    consumer.seek(tp, position)
                if rules and resume is None:  # rare and small: read them all, the newest published wins
                    await consumer.seek_to_beginning(rules[0])
                return consumer
            except KafkaError as exc:
                await consumer.stop()
                log.warning("broker unreachable; deciding from what is held", extra={"error": str(exc)})
                await asyncio.sleep(backoff.next_delay_s())

    async def _seek(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        snapshot = self._store.snapshot
        for tp in tps:
            position = snapshot.positions.get(tp.partition) if snapshot is not None else None
            if position is not None and position.delta_offset >= 0:
                consumer.seek(tp, position.delta_offset + 1)
            else:
                await consumer.seek_to_beginning(tp)

    async def _probe(self) -> None:
        """Every second, a list-offsets request: an idle topic must not look like a dead broker."""
        probe = [TopicPartition(DELTAS_TOPIC, 0)]
        while True:
            try:
                if self._consumer is not None:  # not cut short: aiokafka times its requests out itself
                    await self._consumer.end_offsets(probe)
                    self._contact.answered()
            except (KafkaError, OSError):
                pass  # not answering (or being replaced): the contact goes stale by itself
            await asyncio.sleep(_PROBE_EVERY_S)

    async def _widen_if_starved(self, consumer: AIOKafkaConsumer) -> AIOKafkaConsumer:
        """A long pz.deltas partition on the embedded broker answers short fetches with nothing
        (fetch_wait.py): then a longer wait and a new consumer from the same positions."""
        tps = sorted(consumer.assignment())
        now_s = time.monotonic()
        positions = {tp: await consumer.position(tp) for tp in tps}
        starved = [tp for tp in tps if self._wait.starved(tp, positions[tp], consumer.highwater(tp), now_s)]
        if not starved or not self._wait.widen():
            return consumer
        metrics.DELTA_FETCH_WAIT_MS.set(self._wait.ms)
        log.warning(
            "delta fetches come back empty below the high-water mark; fetching with a longer wait",
            extra={
                "partitions": [f"{tp.topic}/{tp.partition}" for tp in starved],
                "fetch_max_wait_ms": self._wait.ms,
            },
        )
        await consumer.stop()
        return await self._connect(positions)

    async def _run(self) -> None:
        consumer = self._consumer = await self._connect()
        self.connected = True
        self._contact.answered()
        probe = asyncio.create_task(self._probe(), name="pz-edge-broker-probe")
        try:
            while True:
                consumer = self._consumer = await self._widen_if_starved(consumer)
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                self._wait.fetches += 1
                if batches:
                    self._contact.answered()
                for tp, records in batches.items():
                    if tp.topic == RULES_TOPIC:
                        for record in records:
                            if self._on_rules is not None:
                                self._on_rules(record.value)
                        continue
                    for record in records:
                        self._applier.apply(record.value)
        finally:
            await cancel_and_wait(probe)
            await consumer.stop()
