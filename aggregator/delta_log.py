"""The last delta sequence number published per partition, read back from `pz.deltas`.

Edges drop a delta whose sequence number is not above the last they applied, so a number must never
be handed out twice, even when Redis (where numbers are reserved) lost its recent writes or all of
them: the delta topic is what edges have seen, so the next number is kept above the newest there.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.delta_codec import delta_position
from schemas.errors import SchemaError
from schemas.signing import Verifier, open_sealed
from schemas.topics import DELTAS_TOPIC

_READ_MS = 200


class PublishedDeltas:
    def __init__(self, bootstrap: str, verifier: Verifier, fetch_max_wait_ms: int) -> None:
        self._keys = {verifier.key_id: verifier}
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=fetch_max_wait_ms
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def last_seq(self, partition: int) -> int:
        """The highest sequence number on the partition's newest records; 0 when none was published.
        Reads on past the listed end offset, which the embedded broker reports too low at times."""
        tp = TopicPartition(DELTAS_TOPIC, partition)
        self._consumer.assign([tp])
        end = (await self._consumer.end_offsets([tp]))[tp]
        if end == 0:
            return 0
        self._consumer.seek(tp, end - 1)
        newest = 0
        while records := (await self._consumer.getmany(tp, timeout_ms=_READ_MS)).get(tp):
            for record in records:
                try:
                    newest = max(newest, delta_position(open_sealed(record.value, self._keys))[1])
                except SchemaError:
                    continue  # not ours or tampered with: it says nothing about what we published
        return newest
