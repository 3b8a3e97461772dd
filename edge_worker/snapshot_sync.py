"""Keeps the newest verified snapshot: from local disk at start, then from the aggregator.

A snapshot is used only after its signature verifies. The last verified one is kept on local disk
and memory-mapped, so a restarted edge serves at once, even with the aggregator unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
from collections.abc import Callable
from pathlib import Path

import httpx

from edge_worker import metrics
from edge_worker.profile_store import ProfileStore
from edge_worker.staleness import SyncHealth
from edge_worker.tasks import cancel_and_wait
from schemas.errors import SchemaError
from schemas.signing import Verifier, open_sealed
from schemas.snapshot_codec import SnapshotReader

log = logging.getLogger("pz.edge.snapshot")


class SnapshotSync:
    def __init__(
        self,
        store: ProfileStore,
        aggregator_url: str,
        state_dir: Path,
        signing_key: Verifier,
        poll_s: float,
        health: SyncHealth,
        transport: httpx.AsyncBaseTransport | None = None,  # a seam for tests
        on_install: Callable[[SnapshotReader], None] | None = None,
    ) -> None:
        self._health = health
        self._on_install = on_install
        self._store = store
        self._url = f"{aggregator_url}/sync/snapshot"
        self._path = state_dir / "snapshot.bin"
        self._keys = {signing_key.key_id: signing_key}
        self._poll_s = poll_s
        self._etag: str | None = None
        self._mapped: mmap.mmap | None = None
        self._refresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=2.0), transport=transport)

    def load_from_disk(self) -> bool:
        if not self._path.exists():
            return False
        try:
            self._install_file("disk")
        except (OSError, SchemaError) as exc:
            log.error("snapshot on disk refused", extra={"error": str(exc), "path": str(self._path)})
            return False
        return True

    def request_refresh(self) -> None:
        self._refresh.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._poll_forever(), name="pz-edge-snapshot-sync")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await self._client.aclose()

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.fetch_once()
            except httpx.HTTPError as exc:
                log.warning("aggregator unreachable; serving the snapshot held", extra={"error": str(exc)})
            try:
                await asyncio.wait_for(self._refresh.wait(), timeout=self._poll_s)
            except TimeoutError:
                pass
            self._refresh.clear()

    async def fetch_once(self) -> bool:
        """Fetch a newer snapshot if there is one; True when one was installed."""
        headers = {"If-None-Match": self._etag} if self._etag else {}
        response = await self._client.get(self._url, headers=headers)
        if response.status_code == 304:
            self._health.heard()
            return False
        if response.status_code != 200:
            log.warning("snapshot not available", extra={"status": response.status_code})
            return False
        body = response.content
        try:
            SnapshotReader(open_sealed(body, self._keys))  # verify before it touches the disk
        except SchemaError as exc:
            metrics.SNAPSHOT_REJECTED.labels(type(exc).__name__).inc()
            log.error("snapshot refused", extra={"error": str(exc)})
            return False
        await asyncio.to_thread(self._write, body)
        self._install_file("aggregator")
        self._etag = response.headers.get("etag")
        self._health.heard()
        return True

    def _write(self, body: bytes) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(body)
        os.replace(tmp, self._path)

    def _install_file(self, source: str) -> None:
        with open(self._path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            reader = SnapshotReader(open_sealed(memoryview(mapped), self._keys))
        except SchemaError as exc:
            metrics.SNAPSHOT_REJECTED.labels(type(exc).__name__).inc()
            raise
        # The previous mapping stays open: requests in flight may still read from it. Its pages go
        # back to the OS when the last reference is dropped.
        self._mapped = mapped
        if self._on_install is not None:
            self._on_install(reader)  # its rules are compiled before its first request
        self._store.install_snapshot(reader)
        metrics.SNAPSHOT_LOADS.labels(source).inc()
        log.info(
            "snapshot installed",
            extra={"snapshot_id": reader.snapshot_id, "users": reader.user_count, "source": source},
        )
        self._health.snapshot_source = source
        metrics.SNAPSHOT_INFO.clear()
        metrics.SNAPSHOT_INFO.labels(reader.snapshot_id).set(1)
