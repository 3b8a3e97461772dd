"""The fetch wait that the broker needs (the edge's copy of aggregator/fetch_wait.py: the services share
no code but schemas): short for latency, longer when a partition starves.

The embedded broker lists every batch of a partition on each fetch and cuts the listing when the
fetch wait runs out, so once a partition holds ~20 000 batches a 10 ms fetch at its tail comes back
empty, every time (measured: tansu 0.6, 20 000 single-record batches; at 40 000 even offset 100).
Real Kafka never does this. The sign is unmistakable from the client: a fetch position below the
broker's own high-water mark that does not move while fetches keep coming back, or crawls (a batch
or two a fetch, the rest of the wait gone on listing). Then the wait is
doubled (up to `max_ms`) and the caller replaces its consumer. Never reads the clock itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import TopicPartition


@dataclass(slots=True)
class _Seen:
    position: int
    fetches: int
    since_s: float


class FetchWait:
    def __init__(
        self,
        initial_ms: int,
        max_ms: int = 1000,
        after_fetches: int = 20,
        after_s: float = 2.0,
        crawl_behind: int = 1000,
        crawl_per_fetch: int = 20,
    ) -> None:
        self.ms = initial_ms
        self._max_ms = max_ms
        self._after_fetches = after_fetches
        self._after_s = after_s
        self._crawl_behind = crawl_behind
        self._crawl_per_fetch = crawl_per_fetch
        self._seen: dict[TopicPartition, _Seen] = {}
        self.fetches = 0  # the caller counts its fetches here

    def starved(self, tp: TopicPartition, position: int | None, highwater: int | None, now_s: float) -> bool:
        """Whether `tp`, below the broker's high-water mark, went nowhere over a window of enough
        fetches and time, or crawled (fewer than `crawl_per_fetch` records a fetch while more than
        `crawl_behind` wait: the listing left time for a batch or two)."""
        if position is None or highwater is None or position >= highwater:
            self._seen.pop(tp, None)
            return False
        seen = self._seen.get(tp)
        if seen is None:
            self._seen[tp] = _Seen(position, self.fetches, now_s)
            return False
        fetches = self.fetches - seen.fetches
        if fetches < self._after_fetches or now_s - seen.since_s < self._after_s:
            return False
        moved = position - seen.position
        self._seen[tp] = _Seen(position, self.fetches, now_s)  # the next window starts here
        crawling = highwater - position > self._crawl_behind and moved < fetches * self._crawl_per_fetch
        return moved <= 0 or crawling

    def widen(self) -> bool:
        """Double the wait; False when it is at its maximum already (starved anyway: a real stall)."""
        self._seen.clear()
        if self.ms >= self._max_ms:
            return False
        self.ms = min(self._max_ms, self.ms * 2)
        return True
