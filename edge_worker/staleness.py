"""How fresh the edge's knowledge is, stamped on every decision.

The edge never drops what it knows when sync breaks: it keeps deciding from the last good data and
says how old that is. `stale` turns true once nothing has been heard from sync (a snapshot poll
answered, or a delta batch applied) for longer than the configured threshold, or when no snapshot
was ever loaded.
"""

from __future__ import annotations

import time
from typing import Any

from edge_worker import metrics
from schemas.snapshot_codec import SnapshotReader


class SyncHealth:
    def __init__(self, stale_after_s: float) -> None:
        self.stale_after_s = stale_after_s
        self.last_heard_s = 0.0
        self.delta_lag_s: float | None = None
        self.snapshot_source = "none"
        metrics.SYNC_AGE_SECONDS.set_function(
            lambda: time.time() - self.last_heard_s if self.last_heard_s else -1
        )

    def heard(self) -> None:
        self.last_heard_s = time.time()

    def delta_applied(self, created_ms: int) -> None:
        now = time.time()
        self.last_heard_s = now
        self.delta_lag_s = max(0.0, now - created_ms / 1000)

    def stamp(self, snapshot: SnapshotReader | None, now_s: float, rules_version: str) -> dict[str, Any]:
        sync_age_s = now_s - self.last_heard_s if self.last_heard_s else None
        return {
            "snapshot_id": snapshot.snapshot_id if snapshot is not None else None,
            "rules_version": rules_version,
            "snapshot_age_s": round(now_s - snapshot.created_ms / 1000, 3) if snapshot is not None else None,
            "sync_age_s": round(sync_age_s, 3) if sync_age_s is not None else None,
            "delta_lag_s": round(self.delta_lag_s, 3) if self.delta_lag_s is not None else None,
            "stale": snapshot is None or sync_age_s is None or sync_age_s > self.stale_after_s,
        }
