"""The last delta sequence number published per partition, read back from `pz.deltas`.

Edges drop a delta whose sequence number is not above the last they applied, so a number must never
be handed out twice, even when Redis (where numbers are reserved) lost its recent writes or all of
them: the delta topic is what edges have seen, so the next number is kept above the newest there.
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaTimeoutError

from aggregator.fetch_wait import FetchWait
from schemas.delta_codec import delta_position
from schemas.errors import SchemaError
from schemas.signing import Verifier, open_sealed
from schemas.topics import DELTAS_TOPIC

_READ_MS = 200
_DEADLINE_S = 10.0


class PublishedDeltas:
    def __init__(self, bootstrap: str, verifier: Verifier, fetch_max_wait_ms: int) -> None:
        self._keys = {verifier.key_id: verifier}
        self._bootstrap = bootstrap
        self._wait = FetchWait(fetch_max_wait_ms, after_fetches=3, after_s=0.0)
        self._consumer = self._new_consumer()

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, fetch_max_wait_ms=self._wait.ms
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def last_seqs(self, partitions: list[int]) -> dict[int, int]:
        """Per partition, the highest sequence number on its newest records; 0 when none was published.
        Reads from just before the listed end offset (which the embedded broker reports too low at
        times) up to the high-water mark of the fetch responses, which is right on every broker."""
        tps = [TopicPartition(DELTAS_TOPIC, p) for p in partitions]
        newest = dict.fromkeys(partitions, 0)
        if not tps:
            return newest
        self._consumer.assign(tps)
        ends = await self._consumer.end_offsets(tps)
        waiting = {tp for tp in tps if ends[tp] > 0}
        for tp in waiting:
            self._consumer.seek(tp, ends[tp] - 1)
        deadline_s = time.monotonic() + _DEADLINE_S
        while waiting:
            if time.monotonic() > deadline_s:  # the caller retries: a number must not be guessed
                raise KafkaTimeoutError(f"{DELTAS_TOPIC}: the newest deltas were not read in {_DEADLINE_S} s")
            batch = await self._consumer.getmany(*waiting, timeout_ms=_READ_MS)
            self._wait.fetches += 1
            for tp, records in batch.items():
                for record in records:
                    try:
                        seq = delta_position(open_sealed(record.value, self._keys))[1]
                    except SchemaError:
                        continue  # not ours or tampered with: it says nothing about what we published
                    newest[tp.partition] = max(newest[tp.partition], seq)
            starved = False
            for tp in list(waiting):
                highwater = self._consumer.highwater(tp)
                position = await self._consumer.position(tp)
                if highwater is not None and position >= highwater:
                    waiting.discard(tp)
                starved |= self._wait.starved(tp, position, highwater, time.monotonic())
            if starved and self._wait.widen():  # a long partition on the embedded broker: see fetch_wait
                positions = {tp: await self._consumer.position(tp) for tp in waiting}
                await self._consumer.stop()
                self._consumer = self._new_consumer()
                await self._consumer.start()
                self._consumer.assign(tps)
                for tp, position in positions.items():
                    self._consumer.seek(tp, position)
        return newest
