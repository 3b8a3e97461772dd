"""Small helpers for tests that talk to the real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas import DeltaBatch, Event, SigningKey, decode_delta, encode_event, open_sealed
from schemas.settings import DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET
from schemas.topics import DELTAS_TOPIC, event_topic, partition_for_key

DEV_KEYS = {DEV_SIGNING_KEY_ID: SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode())}


async def produce_events(bootstrap: str, events: list[Event], partitions: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(
                event_topic(e.type),
                encode_event(e),
                key=e.user_key.to_bytes(8, "big"),
                partition=partition_for_key(e.user_key, partitions),
            )
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, until: Callable[[list[tuple[object, bytes]]], bool], timeout_s: float = 20.0
) -> list[tuple[object, bytes]]:
    """Read every partition of `topic` from the beginning until `until(records)` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        records: list[tuple[object, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for recs in batch.values():
                records.extend((r, r.value) for r in recs)
            if until(records):
                return records
        raise AssertionError(
            f"condition not met on {topic} within {timeout_s} s ({len(records)} records read)"
        )
    finally:
        await consumer.stop()


def deltas_for(records: list[tuple[object, bytes]], user_key: int) -> list[DeltaBatch]:
    batches = [decode_delta(open_sealed(value, DEV_KEYS)) for _, value in records]
    return [b for b in batches if any(p.key == user_key for p in b.upserts)]


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


__all__ = ["DELTAS_TOPIC", "DEV_KEYS", "deltas_for", "produce_events", "read_topic", "wait_until"]
