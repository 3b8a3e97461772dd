"""A bare aiokafka consumer-group member (the baseline of `pz bench recovery`): joins GROUP on the
event topics with the aggregator's former group settings and touches MARKER once it has records."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from schemas.topics import EVENT_TOPICS


async def main(bootstrap: str, group: str, marker: Path) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1200,
    )
    consumer.subscribe(list(EVENT_TOPICS))
    await consumer.start()
    try:
        while not await consumer.getmany(timeout_ms=100):
            pass
        await asyncio.to_thread(marker.touch)
        await asyncio.Event().wait()  # stay a member until killed
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
