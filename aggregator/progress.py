"""Per-partition progress: how far behind the log end each owned topic-partition is, and since when
it has not moved. A partition with records beyond its committed offset that makes no progress for
`stall_after_s` is stalled: the pipeline logs it, counts it, turns not ready and recovers it.

The log end is the larger of the fetch responses' high-water mark and the broker's listed end
offset: on the embedded broker the listed end is too low after multi-record batches, while a
partition that is never fetched has no high-water mark at all; the larger of the two is right on
both brokers. Never reads the clock: callers pass `now_s`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import TopicPartition


@dataclass(slots=True)
class _Track:
    committed: int
    log_end: int
    progress_s: float  # when the committed offset last moved, or the partition was last caught up
    stalled: bool = False


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    tp: TopicPartition
    committed: int
    log_end: int
    idle_s: float  # since the last progress

    @property
    def lag(self) -> int:
        return max(0, self.log_end - self.committed)


class ProgressWatch:
    def __init__(self, stall_after_s: float) -> None:
        self._stall_after_s = stall_after_s
        self._tracks: dict[TopicPartition, _Track] = {}

    def observe(self, tp: TopicPartition, committed: int, log_end: int, now_s: float) -> PartitionProgress:
        track = self._tracks.get(tp)
        if track is None:
            track = self._tracks[tp] = _Track(committed, log_end, now_s)
        if committed > track.committed or committed >= log_end:
            track.progress_s = now_s
            track.stalled = False
        track.committed = committed
        track.log_end = max(log_end, committed)
        return PartitionProgress(tp, committed, track.log_end, now_s - track.progress_s)

    def newly_stalled(self, now_s: float) -> list[PartitionProgress]:
        """Partitions that crossed the stall threshold since the last call (each episode once)."""
        found = []
        for tp, track in self._tracks.items():
            idle_s = now_s - track.progress_s
            if not track.stalled and track.log_end > track.committed and idle_s >= self._stall_after_s:
                track.stalled = True
                found.append(PartitionProgress(tp, track.committed, track.log_end, idle_s))
        return found

    def stalled(self) -> list[TopicPartition]:
        return sorted(
            (tp for tp, t in self._tracks.items() if t.stalled), key=lambda tp: (tp.topic, tp.partition)
        )

    def restart_clock(self, tps: Iterable[TopicPartition], now_s: float) -> None:
        """After a recovery action: the partitions get `stall_after_s` again to show progress."""
        for tp in tps:
            if (track := self._tracks.get(tp)) is not None:
                track.progress_s = now_s
                track.stalled = False

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._tracks.pop(tp, None)

    def all(self, now_s: float) -> list[PartitionProgress]:
        return [
            PartitionProgress(tp, t.committed, t.log_end, now_s - t.progress_s)
            for tp, t in self._tracks.items()
        ]
