"""Serves recent delta batches over HTTP, for edges that cannot reach Kafka.

The relay reads `pz.deltas` itself (every partition, no consumer group), so any aggregator process
serves every partition whichever member published it, and keeps the newest batches of each
partition in memory, byte for byte as published: edges verify them exactly as they verify Kafka's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from aggregator.fetch_wait import FetchWait
from aggregator.tasks import cancel_and_wait
from schemas.delta_codec import delta_position
from schemas.errors import SchemaError
from schemas.signing import Verifier, open_sealed
from schemas.topics import DELTAS_TOPIC

log = logging.getLogger("pz.aggregator.relay")


@dataclass(frozen=True, slots=True)
class RelayAnswer:
    batches: list[bytes]
    # Partitions whose requested position is older than what the relay still holds: the edge must
    # resynchronise from a snapshot.
    too_old: list[int]


class DeltaRelay:
    def __init__(
        self, bootstrap: str, signing_key: Verifier, per_partition: int, fetch_max_wait_ms: int
    ) -> None:
        self._bootstrap = bootstrap
        self._keys = {signing_key.key_id: signing_key}
        self._per_partition = per_partition
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._wait = FetchWait(fetch_max_wait_ms)
        self._recent: dict[int, deque[tuple[int, bytes]]] = {}
        self._arrived = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        await self._consumer.start()
        partitions = sorted(self._consumer.partitions_for_topic(DELTAS_TOPIC) or ())
        tps = [TopicPartition(DELTAS_TOPIC, p) for p in partitions]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)  # bounded by the deque; old ones fall out
        for p in partitions:
            self._recent[p] = deque(maxlen=self._per_partition)
        self._task = asyncio.create_task(self._run(), name="pz-delta-relay")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _widen_if_starved(self) -> None:
        """A long pz.deltas partition on the embedded broker answers short fetches with nothing
        (aggregator/fetch_wait.py): a longer wait and a new consumer from the same positions."""
        assert self._consumer is not None
        tps = sorted(self._consumer.assignment())
        now_s = time.monotonic()
        positions = {tp: await self._consumer.position(tp) for tp in tps}
        starved = [
            tp for tp in tps if self._wait.starved(tp, positions[tp], self._consumer.highwater(tp), now_s)
        ]
        if not starved or not self._wait.widen():
            return
        log.warning(
            "pz.deltas fetches come back empty below the high-water mark; fetching with a longer wait",
            extra={"partitions": [tp.partition for tp in starved], "fetch_max_wait_ms": self._wait.ms},
        )
        await self._consumer.stop()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, fetch_max_wait_ms=self._wait.ms
        )
        await self._consumer.start()
        self._consumer.assign(tps)
        for tp, position in positions.items():
            self._consumer.seek(tp, position)

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            await self._widen_if_starved()
            batches = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            self._wait.fetches += 1
            added = False
            for tp, records in batches.items():
                for record in records:
                    added |= self._hold(tp.partition, record.value)
            if added:
                async with self._arrived:
                    self._arrived.notify_all()

    def _hold(self, partition: int, sealed: bytes) -> bool:
        try:
            _, seq = delta_position(open_sealed(sealed, self._keys))
        except SchemaError as exc:
            log.error(
                "unreadable delta batch in pz.deltas", extra={"error": str(exc), "partition": partition}
            )
            return False
        recent = self._recent.setdefault(partition, deque(maxlen=self._per_partition))
        if recent and seq <= recent[-1][0]:
            return False  # a replay after an aggregator crash: same number, already held
        recent.append((seq, sealed))
        return True

    def collect(self, since: dict[int, int]) -> RelayAnswer:
        batches: list[bytes] = []
        too_old: list[int] = []
        for partition, recent in self._recent.items():
            after = since.get(partition, 0)
            if recent and recent[0][0] > after + 1:
                too_old.append(partition)
                continue
            batches.extend(sealed for seq, sealed in recent if seq > after)
        return RelayAnswer(batches, too_old)

    async def wait(self, since: dict[int, int], wait_s: float) -> RelayAnswer:
        """Batches after `since`, waiting up to `wait_s` for the first one (long-poll)."""
        answer = self.collect(since)
        if answer.batches or answer.too_old or wait_s <= 0:
            return answer
        with contextlib.suppress(TimeoutError):
            async with self._arrived:
                await asyncio.wait_for(
                    self._arrived.wait_for(lambda: bool(self.collect(since).batches)), wait_s
                )
        return self.collect(since)
