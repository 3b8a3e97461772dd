"""Delta batches over HTTP, for edges that cannot reach Kafka: long-polls the aggregator's
`GET /sync/deltas`. Same bytes as on Kafka, same checks (the DeltaApplier)."""

from __future__ import annotations

import asyncio
import logging

import httpx

from edge_worker.backoff import Backoff
from edge_worker.delta_apply import DeltaApplier
from edge_worker.profile_store import ProfileStore
from edge_worker.tasks import cancel_and_wait
from schemas.delta_codec import unframe_batches
from schemas.errors import DecodeError

log = logging.getLogger("pz.edge.deltas.http")


class HttpDeltaSync:
    def __init__(
        self,
        store: ProfileStore,
        aggregator_url: str,
        applier: DeltaApplier,
        wait_s: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,  # a seam for tests
    ) -> None:
        self._store = store
        self._url = f"{aggregator_url}/sync/deltas"
        self._applier = applier
        self._wait_s = wait_s
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(wait_s + 10, connect=2.0), transport=transport)
        self._task: asyncio.Task[None] | None = None
        self.connected = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pz-edge-delta-http")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await self._client.aclose()

    def _since(self) -> str:
        return ",".join(f"{p}:{seq}" for p, seq in sorted(self._store.applied_seq.items()))

    async def poll_once(self) -> int:
        """One long-poll; returns how many batches arrived."""
        response = await self._client.get(
            self._url, params={"since": self._since(), "wait_ms": int(self._wait_s * 1000)}
        )
        if response.status_code == 409:
            log.warning("the aggregator no longer holds our position; resynchronising", extra=response.json())
            self._applier.request_resync()
            return 0
        response.raise_for_status()
        batches = unframe_batches(response.content)
        for sealed in batches:
            self._applier.apply(sealed)
        return len(batches)

    async def _run(self) -> None:
        backoff = Backoff(first_s=0.1, max_s=5.0)
        while True:
            try:
                await self.poll_once()
            except (httpx.HTTPError, DecodeError) as exc:
                self.connected = False
                log.warning("delta long-poll failed; retrying", extra={"error": str(exc)})
                await asyncio.sleep(backoff.next_delay_s())
                continue
            self.connected = True
            backoff.reset()
