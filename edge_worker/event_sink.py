"""Accepted events wait in a bounded in-memory buffer until Kafka has them.

`offer()` never blocks and never touches the network: the request path only appends. A background
task writes the buffer's head to Kafka and removes records only once the broker acknowledged them,
so while the process lives nothing answered with 202 is lost; a broker outage fills the buffer, and
once it is full `offer()` refuses (the caller answers 503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from edge_worker import metrics
from edge_worker.backoff import Backoff
from edge_worker.broker_contact import BrokerContact
from edge_worker.tasks import cancel_and_wait

log = logging.getLogger("pz.edge.sink")
_SEND_BATCH = 500
_PROBE_EVERY_S = 1.0  # a metadata request this often tells whether the broker still answers


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    topic: str
    partition: int
    key: bytes
    value: bytes


class EventSink:
    def __init__(self, bootstrap: str, capacity: int, contact: BrokerContact | None = None) -> None:
        self._bootstrap = bootstrap
        self._contact = contact or BrokerContact(5.0)
        self._capacity = capacity
        self._buffer: deque[OutboundRecord] = deque()
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self.connected = False
        metrics.EVENT_BUFFER.set_function(lambda: len(self._buffer))  # read when scraped, not per event

    def offer(self, record: OutboundRecord) -> bool:
        if len(self._buffer) >= self._capacity:
            return False
        self._buffer.append(record)
        self._wakeup.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._drain_forever(), name="pz-edge-event-sink")
        self._probe_task = asyncio.create_task(self._probe_forever(), name="pz-edge-broker-probe")

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        await cancel_and_wait(self._probe_task)
        if self._task is not None:
            try:  # give the buffer a chance to reach the broker before the process ends
                await asyncio.wait_for(self._until_empty(), timeout=flush_timeout_s)
            except TimeoutError:
                log.error("stopping with undelivered events", extra={"pending": len(self._buffer)})
            await cancel_and_wait(self._task)
        if self._producer is not None:
            await self._producer.stop()

    async def _until_empty(self) -> None:
        if self._buffer and self._task is not None and not self._task.done():
            self._drained.clear()
            await self._drained.wait()

    async def _connect(self) -> AIOKafkaProducer:
        backoff = Backoff()
        while True:
            producer = self._new_producer()
            try:
                await producer.start()
                return producer
            except KafkaError as exc:
                await producer.stop()
                self.connected = False
                log.warning("broker unreachable; events stay buffered", extra={"error": str(exc)})
                await asyncio.sleep(backoff.next_delay_s())

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", linger_ms=1, request_timeout_ms=5000
        )

    async def _probe_forever(self) -> None:
        """Once a second, a metadata request: an edge with no events to send must still know whether
        the broker answers. Never cancelled mid-request (aiokafka times its own requests out): a
        request cut short could leave the client's state behind it half-done."""
        while True:
            await asyncio.sleep(_PROBE_EVERY_S)
            if self._producer is None:
                continue
            try:
                await self._producer.client.fetch_all_metadata()
            except (KafkaError, OSError):
                continue  # not answering: the contact goes stale by itself
            self._contact.answered()

    async def _drain_forever(self) -> None:
        backoff = Backoff()
        # Connected before the first event: readiness then knows the broker on an edge still idle.
        self._producer = await self._connect()
        self.connected = True
        self._contact.answered()
        while True:
            if not self._buffer:
                self._drained.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            head = [self._buffer[i] for i in range(min(_SEND_BATCH, len(self._buffer)))]
            try:
                futures = [
                    await self._producer.send(r.topic, r.value, key=r.key, partition=r.partition)
                    for r in head
                ]
                await asyncio.gather(*futures)
            except KafkaError as exc:
                # Keep the records; resend the whole head (at-least-once: a retry may duplicate).
                self.connected = False
                log.warning(
                    "producing failed; retrying", extra={"error": str(exc), "pending": len(self._buffer)}
                )
                await asyncio.sleep(backoff.next_delay_s())
                continue
            backoff.reset()
            self.connected = True
            self._contact.answered()
            for _ in head:
                self._buffer.popleft()
            metrics.EVENTS_PRODUCED.inc(len(head))
