"""Applies the aggregator's delta batches from Kafka, every partition, without a consumer group.

The edge starts right after the position its snapshot includes. Batches are verified before use;
duplicates (replays after an aggregator crash) are dropped; a sequence gap, a batch that does not
verify or a format this edge does not know asks for a new snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from edge_worker import metrics
from edge_worker.backoff import Backoff
from edge_worker.profile_store import DeltaOutcome, ProfileStore
from edge_worker.staleness import SyncHealth
from schemas.delta_codec import decode_delta
from schemas.errors import SchemaError
from schemas.signing import SigningKey, open_sealed
from schemas.topics import DELTAS_TOPIC

log = logging.getLogger("pz.edge.deltas")


class DeltaSync:
    def __init__(
        self,
        store: ProfileStore,
        bootstrap: str,
        signing_key: SigningKey,
        fetch_max_wait_ms: int,
        on_resync_needed: Callable[[], None],
        health: SyncHealth,
    ) -> None:
        self._health = health
        self._store = store
        self._bootstrap = bootstrap
        self._keys = {signing_key.key_id: signing_key}
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._on_resync_needed = on_resync_needed
        self._task: asyncio.Task[None] | None = None
        self.connected = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pz-edge-delta-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

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
                consumer.assign(tps)
                await self._seek(consumer, tps)
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

    async def _run(self) -> None:
        consumer = await self._connect()
        self.connected = True
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                for records in batches.values():
                    for record in records:
                        self.apply(record.value)
        finally:
            await consumer.stop()

    def apply(self, sealed: bytes) -> DeltaOutcome | None:
        try:
            batch = decode_delta(open_sealed(sealed, self._keys))
        except SchemaError as exc:
            # Forged, torn or from a newer format: what it carried must come from a snapshot instead.
            metrics.DELTAS_DROPPED.labels(type(exc).__name__).inc()
            log.error("delta batch refused; resynchronising from a snapshot", extra={"error": str(exc)})
            self._on_resync_needed()
            return None
        outcome = self._store.apply_delta(batch)
        if outcome is DeltaOutcome.DUPLICATE:
            metrics.DELTAS_DROPPED.labels("duplicate").inc()
            return outcome
        metrics.DELTAS_APPLIED.inc()
        self._health.delta_applied(batch.created_ms)
        metrics.DELTA_LAG_SECONDS.labels(str(batch.partition)).set(self._health.delta_lag_s or 0.0)
        if outcome is DeltaOutcome.GAP:
            log.warning(
                "delta sequence gap; resynchronising from a snapshot",
                extra={"partition": batch.partition, "seq": batch.seq},
            )
            self._on_resync_needed()
        return outcome
