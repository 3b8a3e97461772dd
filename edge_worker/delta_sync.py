"""Delta batches from Kafka: every partition of pz.deltas, without a consumer group.

The edge starts right after the position its snapshot includes; every batch goes through the
DeltaApplier.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from edge_worker.backoff import Backoff
from edge_worker.broker_contact import BrokerContact
from edge_worker.delta_apply import DeltaApplier
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
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._applier = applier
        self._task: asyncio.Task[None] | None = None
        self.connected = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pz-edge-delta-sync")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _connect(self) -> AIOKafkaConsumer:
        backoff = Backoff()
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=None,
                enable_auto_commit=False,
                fetch_max_wait_ms=self._fetch_max_wait_ms,
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
                if rules:  # rare and small: read them all, the newest published wins
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

    async def _probe(self, consumer: AIOKafkaConsumer) -> None:
        """Every second, a list-offsets request: an idle topic must not look like a dead broker."""
        probe = [TopicPartition(DELTAS_TOPIC, 0)]
        while True:
            try:
                await asyncio.wait_for(consumer.end_offsets(probe), _PROBE_EVERY_S * 2)
                self._contact.answered()
            except (KafkaError, OSError, TimeoutError):
                pass  # not answering: the contact goes stale by itself
            await asyncio.sleep(_PROBE_EVERY_S)

    async def _run(self) -> None:
        consumer = await self._connect()
        self.connected = True
        self._contact.answered()
        probe = asyncio.create_task(self._probe(consumer), name="pz-edge-broker-probe")
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
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
