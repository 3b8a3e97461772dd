"""Building, signing and keeping the latest snapshot, on a schedule and on demand."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aggregator import metrics
from aggregator.anomalies import AnomalySettings, user_flags
from aggregator.config import AggregatorConfig
from aggregator.inventory import Inventory
from aggregator.item_history import load_state, to_profile
from aggregator.item_model import decayed, top_similar
from aggregator.state_store import StateStore
from aggregator.tasks import cancel_and_wait
from schemas.profiles import Profile
from schemas.rules import RuleSet
from schemas.signing import seal
from schemas.snapshot_codec import PartitionPosition, SnapshotContent, encode_snapshot

log = logging.getLogger("pz.aggregator.snapshots")
_PER_CATEGORY_LIMIT = 24


@dataclass(frozen=True, slots=True)
class BuiltSnapshot:
    snapshot_id: str
    sealed: bytes
    etag: str
    users: int
    created_ms: int


class SnapshotBuilder:
    def __init__(
        self,
        config: AggregatorConfig,
        store: StateStore,
        partitions: int,
        rules: Callable[[], RuleSet],
        rebuilding: Callable[[], bool] = lambda: False,
    ) -> None:
        self._config = config
        # While state lost in Redis is being rebuilt from the log, a new snapshot would carry partial
        # totals to every edge: the scheduled builds keep the one held instead.
        self._rebuilding = rebuilding
        self._rules = rules
        self._inventory = Inventory(config.inventory_file)
        self._store = store
        self._partitions = partitions
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.latest: BuiltSnapshot | None = None

    async def start(self) -> None:
        await self.build()
        self._task = asyncio.create_task(self._every_interval(), name="pz-snapshot-schedule")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self._config.snapshot_interval_s)
            if self._rebuilding() and self.latest is not None:
                log.warning("snapshot build skipped: state is being rebuilt from the log")
                continue
            try:
                await self.build()
            except Exception:  # keep serving the previous snapshot; the next tick retries
                log.exception("snapshot build failed")

    async def build(self) -> BuiltSnapshot:
        async with self._lock:
            started = time.perf_counter()
            positions: dict[int, PartitionPosition] = {}
            users: list[Profile] = []
            views: dict[str, float] = defaultdict(float)
            categories: dict[str, str] = {}
            pairs: dict[str, float] = defaultdict(float)
            item_scores: dict[str, float] = defaultdict(float)
            created_ms = int(time.time() * 1000)
            model = self._config.item_model
            forget_below = model.prune_below * decayed(created_ms // 1000, model)
            rules = self._rules()
            for partition in range(self._partitions):
                # Position first, then users: the users may be newer than the position, and an
                # edge replaying deltas after it ends at the same state either way.
                position = await self._store.load_position(partition)
                positions[partition] = PartitionPosition(position.seq, position.delta_offset)
                stored = await self._store.scan_users(partition)
                # Decoding every user is CPU work: off the event loop, so that batches keep flowing while
                # a snapshot is built (a thread still shares the GIL, but the loop gets it back every
                # switch interval instead of waiting for the whole partition).
                users += await asyncio.to_thread(_profiles, stored, created_ms, self._config.anomalies)
                top, names = await self._store.popularity(partition, self._config.popular_limit)
                for item, score in top:
                    views[item] += score
                categories.update(names)
                together = await self._store.co_occurrence(partition, forget_below)
                for name, score in together.pairs.items():
                    pairs[name] += score
                for name, score in together.items.items():
                    item_scores[name] += score
            # Ranking every item's neighbours is CPU work: off the event loop, like the encoding.
            similar = await asyncio.to_thread(top_similar, pairs, item_scores, model.top_k)
            content = SnapshotContent(
                snapshot_id=uuid.uuid4().hex,
                created_ms=created_ms,
                positions=positions,
                popular=_ranked(views)[: self._config.popular_limit],
                popular_by_category=_by_category(views, categories),
                users=users,
                rules_version=rules.version,
                rules_json=rules.to_json(),
                out_of_stock=self._inventory.refresh(),
                similar=similar,
            )
            # Encoding is CPU work: off the event loop so consuming goes on meanwhile.
            sealed = await asyncio.to_thread(lambda: seal(encode_snapshot(content), self._config.signing_key))
            built = BuiltSnapshot(
                snapshot_id=content.snapshot_id,
                sealed=sealed,
                etag='"' + hashlib.sha256(sealed).hexdigest()[:32] + '"',
                users=len(users),
                created_ms=created_ms,
            )
            await asyncio.to_thread(_write_atomically, self._config.snapshot_dir / "snapshot.bin", sealed)
            self.latest = built
            metrics.SNAPSHOT_SECONDS.observe(time.perf_counter() - started)
            metrics.SNAPSHOT_USERS.set(len(users))
            return built


def _profiles(stored: dict[int, bytes], created_ms: int, anomalies: AnomalySettings) -> list[Profile]:
    profiles = []
    for key, raw in stored.items():
        state = load_state(raw)
        if not state.forgotten:
            profiles.append(to_profile(key, state, created_ms, user_flags(state, anomalies)))
    return profiles


def _ranked(views: dict[str, float]) -> list[str]:
    return [item for item, _ in sorted(views.items(), key=lambda kv: (-kv[1], kv[0]))]


def _by_category(views: dict[str, float], categories: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for item in _ranked(views):
        category = categories.get(item)
        if category and len(grouped[category]) < _PER_CATEGORY_LIMIT:
            grouped[category].append(item)
    return dict(grouped)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
