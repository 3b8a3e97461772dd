"""One path for every delta batch, whichever transport brought it: verify, decode, apply, account.

Duplicates (replays after an aggregator crash, or the same batch by two transports) are dropped
before their profiles are decoded; a sequence gap, a batch that does not verify or a format this
edge does not know asks for a new snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge_worker import metrics
from edge_worker.profile_store import DeltaOutcome, ProfileStore
from edge_worker.staleness import SyncHealth
from schemas.delta_codec import decode_delta, delta_position
from schemas.errors import SchemaError
from schemas.signing import Verifier, open_sealed

log = logging.getLogger("pz.edge.deltas")


class DeltaApplier:
    def __init__(
        self,
        store: ProfileStore,
        signing_key: Verifier,
        on_resync_needed: Callable[[], None],
        health: SyncHealth,
    ) -> None:
        self._store = store
        self._keys = {signing_key.key_id: signing_key}
        self._on_resync_needed = on_resync_needed
        self._health = health

    def request_resync(self) -> None:
        self._on_resync_needed()

    def apply(self, sealed: bytes) -> DeltaOutcome | None:
        try:
            payload = open_sealed(sealed, self._keys)
            partition, seq = delta_position(payload)
            if seq <= self._store.applied_seq_of(partition):
                metrics.DELTAS_DROPPED.labels("duplicate").inc()
                return DeltaOutcome.DUPLICATE
            batch = decode_delta(payload)
        except SchemaError as exc:
            # Forged, torn or from a newer format: what it carried must come from a snapshot instead.
            metrics.DELTAS_DROPPED.labels(type(exc).__name__).inc()
            log.error("delta batch refused; resynchronising from a snapshot", extra={"error": str(exc)})
            self._on_resync_needed()
            return None
        outcome = self._store.apply_delta(batch)
        if outcome is DeltaOutcome.DUPLICATE:
            metrics.DELTAS_DROPPED.labels("duplicate").inc()
            return outcome
        metrics.DELTAS_APPLIED.inc()
        self._health.delta_applied(batch.created_ms)
        metrics.DELTA_LAG_SECONDS.labels(str(batch.partition)).set(self._health.delta_lag_s or 0.0)
        if outcome is DeltaOutcome.GAP:
            log.warning(
                "delta sequence gap; resynchronising from a snapshot",
                extra={"partition": batch.partition, "seq": batch.seq},
            )
            self._on_resync_needed()
        return outcome
