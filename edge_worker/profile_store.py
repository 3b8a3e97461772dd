"""What the edge knows about users: the snapshot, an overlay of deltas applied since, a hot cache.

Lookups touch only memory. The snapshot is replaced by swapping one reference, so a request that
already holds the old one finishes on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from lru import LRU

from edge_worker import metrics
from schemas.delta_codec import DeltaBatch
from schemas.errors import DecodeError
from schemas.profiles import Profile
from schemas.snapshot_codec import SnapshotReader


class DeltaOutcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    GAP = "gap"  # applied (upserts are whole profiles) but batches were missed: resync needed


_MISSING = object()
_CACHE_HIT = metrics.PROFILE_CACHE.labels("hit")  # bound once: labels() costs a lookup per call
_CACHE_MISS = metrics.PROFILE_CACHE.labels("miss")


@dataclass(frozen=True, slots=True)
class _OverlayEntry:
    partition: int
    seq: int
    profile: Profile | None  # None: deleted


class ProfileStore:
    def __init__(self, cache_size: int) -> None:
        self._snapshot: SnapshotReader | None = None
        self._overlay: dict[int, _OverlayEntry] = {}
        self._applied_seq: dict[int, int] = {}
        self._cache: LRU[int, Profile | None] = LRU(cache_size)

    @property
    def snapshot(self) -> SnapshotReader | None:
        return self._snapshot

    @property
    def applied_seq(self) -> dict[int, int]:
        return dict(self._applied_seq)

    def applied_seq_of(self, partition: int) -> int:
        return self._applied_seq.get(partition, 0)

    def install_snapshot(self, snapshot: SnapshotReader) -> None:
        for partition, position in snapshot.positions.items():
            if position.seq > self._applied_seq.get(partition, 0):
                self._applied_seq[partition] = position.seq
        # Overlay entries the snapshot already covers are dropped; newer ones stay in front of it.
        self._overlay = {
            key: entry
            for key, entry in self._overlay.items()
            if entry.partition not in snapshot.positions
            or entry.seq > snapshot.positions[entry.partition].seq
        }
        self._snapshot = snapshot
        self._cache.clear()

    def apply_delta(self, batch: DeltaBatch) -> DeltaOutcome:
        last = self._applied_seq.get(batch.partition, 0)
        if batch.seq <= last:
            return DeltaOutcome.DUPLICATE
        for profile in batch.upserts:
            self._overlay[profile.key] = _OverlayEntry(batch.partition, batch.seq, profile)
            self._cache.pop(profile.key, None)
        for key in batch.deletes:
            self._overlay[key] = _OverlayEntry(batch.partition, batch.seq, None)
            self._cache.pop(key, None)
        self._applied_seq[batch.partition] = batch.seq
        return DeltaOutcome.GAP if batch.seq > last + 1 else DeltaOutcome.APPLIED

    @property
    def overlay_size(self) -> int:
        return len(self._overlay)

    def get(self, key: int) -> Profile | None:
        entry = self._overlay.get(key)
        if entry is not None:
            return entry.profile
        cached = self._cache.get(key, _MISSING)
        if cached is not _MISSING:
            _CACHE_HIT.inc()
            return cached  # type: ignore[return-value]
        _CACHE_MISS.inc()
        try:
            profile = self._snapshot.find_user(key) if self._snapshot is not None else None
        except DecodeError:
            # Verified snapshots do not do this; if one ever does, the user is treated as unknown.
            metrics.PROFILE_DECODE_ERRORS.inc()
            profile = None
        self._cache[key] = profile
        return profile
