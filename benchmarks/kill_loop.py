"""A kill loop under load: aggregator processes killed with kill -9 and restarted while events of every
type flow, then every partition of every event topic checked consumed to its end and every user's
lifetime totals checked against what the broker acknowledged (0 lost, 0 counted twice).

Used by the crash test (tests/test_kill_loop.py) and by `pz bench recovery`, which reports, per kill,
the time from the restart to the new process's first committed batch (read from its own /metrics).
Its own broker and Redis (with the append-only file `pz up` uses), so only these events are on the topics.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as redis
from aiokafka import AIOKafkaProducer

from aggregator.item_history import load_state
from aggregator.state_store import StateStore, user_state_key
from edge_worker.delta_apply import DeltaApplier
from edge_worker.delta_sync import DeltaSync
from edge_worker.profile_store import ProfileStore
from edge_worker.snapshot_sync import SnapshotSync
from edge_worker.staleness import SyncHealth
from pz.embedded import create_topics, start_broker, start_redis
from pz.processes import ManagedProcess, free_port, spawn, wait_for_tcp
from schemas.event_codec import encode_event
from schemas.events import Event
from schemas.profiles import Lifetime, Profile
from schemas.settings import DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET
from schemas.signing import SigningKey, open_sealed
from schemas.snapshot_codec import SnapshotReader
from schemas.topics import event_topic, partition_for_key

_KINDS = ("page_view",) * 6 + ("click",) * 2 + ("add_to_cart",) * 2 + ("purchase",)
_KEY = SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode())
_ADMIN_TOKEN = "kill-loop-admin"


@dataclass(frozen=True, slots=True)
class KillLoopSettings:
    kills: int = 20  # kill -9 of a single member
    rebalance_kills: int = 10  # then kill -9 of one of two members of one group, in turn
    users: int = 300
    rate_per_s: float = 300.0  # events produced per second, steadily, all through the loop
    partitions: int = 4
    seed: int = 1
    redis_kills: int = 0  # then kill -9 of Redis, restarted on its append-only file (fsync everysec)
    redis_wipes: int = 0  # then FLUSHALL: every state gone, to be noticed and rebuilt from the log
    max_uptime_s: float = 2.0  # a member is killed at a random moment this long after its first commit
    drain_timeout_s: float = 120.0  # after the loop: how long the last members get to reach the log ends
    extra_env: dict[str, str] = field(default_factory=dict)  # for every aggregator process


@dataclass(frozen=True, slots=True)
class KillLoopResult:
    recoveries_s: tuple[float, ...]  # per kill: restart -> the new process's first committed batch
    accepted_events: int  # acknowledged by the broker
    lost_events: int  # acknowledged, never in the totals
    duplicated_events: int  # in the totals more often than acknowledged
    wrong_users: int  # users whose totals differ from what was accepted
    behind: dict[str, int]  # "topic/partition" -> records between the committed offset and the log end
    edge_wrong: list[int]  # users whose profile on the edge differs from the one in a fresh snapshot
    logs: Path

    @property
    def exact(self) -> bool:
        return not (
            self.lost_events or self.duplicated_events or self.wrong_users or self.behind or self.edge_wrong
        )


class _Load:
    """Events of every type from a fixed set of users at a steady rate, produced as the edge does
    (linger 1 ms, many in flight); what the broker acknowledged is counted per user and partition."""

    def __init__(self, bootstrap: str, settings: KillLoopSettings) -> None:
        self._bootstrap = bootstrap
        self._settings = settings
        rng = random.Random(settings.seed)  # noqa: S311 - reproducible load
        self._rng = rng
        self.users = [rng.getrandbits(63) for _ in range(settings.users)]
        self.expected: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # views, carts, buys, cents
        self.log_end: dict[tuple[str, int], int] = {}
        self.accepted = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Ends after the tick in flight, so that every record sent is acknowledged and counted."""
        self._stopping = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def _acked(self, event: Event, topic: str, partition: int, offset: int) -> None:
        self.accepted += 1
        self.log_end[(topic, partition)] = max(self.log_end.get((topic, partition), 0), offset + 1)
        totals = self.expected[event.user_key]
        if event.type == "page_view":
            totals[0] += 1
        elif event.type == "add_to_cart":
            totals[1] += 1
        elif event.type == "purchase":
            totals[2] += 1
            totals[3] += round(event.value * 100)

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", linger_ms=1)
        await producer.start()
        try:
            tick_s = 0.05
            per_tick = max(1, round(self._settings.rate_per_s * tick_s))
            next_at = time.monotonic()
            while not self._stopping:
                sent = []
                for _ in range(per_tick):
                    event = self._event()
                    topic = event_topic(event.type)
                    partition = partition_for_key(event.user_key, self._settings.partitions)
                    future = await producer.send(
                        topic, encode_event(event), key=event.user_key.to_bytes(8, "big"), partition=partition
                    )
                    sent.append((event, topic, partition, future))
                for event, topic, partition, future in sent:
                    try:
                        self._acked(event, topic, partition, (await future).offset)
                    except Exception:  # noqa: BLE001 - not acknowledged: not expected either
                        self.failed += 1
                next_at += tick_s
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        finally:
            await producer.stop()

    def _event(self) -> Event:
        rng = self._rng
        user = self.users[rng.randrange(len(self.users))]
        kind = _KINDS[rng.randrange(len(_KINDS))]
        now_ms = int(time.time() * 1000)
        item = f"p{rng.randrange(200):04d}"
        value = round(rng.uniform(1, 200), 2) if kind == "purchase" else 0.0
        return Event(kind, user, now_ms, now_ms, item=item, category=f"c{item[-1]}", value=value)


async def produce_some(bootstrap: str, count: int, partitions: int) -> None:
    """`count` page views from as many users, spread over the partitions (for tests of one moment)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    await producer.start()
    try:
        now_ms = int(time.time() * 1000)
        sent = []
        for user in range(1, count + 1):
            event = Event("page_view", user, now_ms, now_ms, item="p0001", category="c1")
            sent.append(
                await producer.send(
                    event_topic("page_view"),
                    encode_event(event),
                    partition=partition_for_key(user, partitions),
                )
            )
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _metrics_of(client: httpx.AsyncClient, port: int) -> dict[str, float]:
    """An aggregator's /metrics as {sample with labels: value}; empty while it does not answer."""
    try:
        response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=1.0)
    except httpx.HTTPError:
        return {}
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def _commits_of(client: httpx.AsyncClient, port: int) -> float:
    return (await _metrics_of(client, port)).get("pz_aggregator_commits_total", 0.0)


class KillLoop:
    def __init__(
        self, settings: KillLoopSettings, state_dir: Path, say: Callable[[str], None] = print
    ) -> None:
        self._settings = settings
        self._state_dir = state_dir
        self._logs = state_dir / "logs"
        self._say = say
        self._members: dict[int, ManagedProcess] = {}
        self._ports: dict[int, int] = {}
        self._starts = 0
        self.bootstrap = ""
        self.redis_url = ""
        self.member_metrics: list[dict[str, float]] = []  # each member's /metrics at the end of the faults

    def _env(self, member: int) -> dict[str, str]:
        self._ports.setdefault(member, free_port())  # the same port on every restart: the edge follows it
        return {
            "PZ_KAFKA_BOOTSTRAP": self.bootstrap,
            "PZ_REDIS_URL": self.redis_url,
            "PZ_PARTITIONS": str(self._settings.partitions),
            "PZ_AGGREGATOR_GROUP": "pz-kill-loop",
            "PZ_AGGREGATOR_MEMBER": f"member-{member}",
            "PZ_AGGREGATOR_PORT": str(self._ports[member]),
            "PZ_AGGREGATOR_STATE_DIR": str(self._state_dir / f"aggregator-{member}"),
            "PZ_SNAPSHOT_INTERVAL_S": "3600",  # the edge lives on deltas; a snapshot only at a gap
            "PZ_ADMIN_TOKEN": _ADMIN_TOKEN,
            **self._settings.extra_env,
        }

    def _restart_redis(self, process: ManagedProcess) -> ManagedProcess:
        """kill -9, then the same server on the same port and data directory (its append-only file)."""
        process.kill()
        restarted = spawn(process.name, process.argv, process.log_path.parent)
        wait_for_tcp(restarted, int(self.redis_url.rsplit(":", 1)[1].split("/")[0]))
        return restarted

    def _start(self, member: int) -> None:
        self._starts += 1
        name = f"aggregator-{member}-{self._starts}"
        self._members[member] = spawn(
            name, [sys.executable, "-m", "aggregator"], self._logs, self._env(member)
        )

    async def _first_commit_s(self, http: httpx.AsyncClient, member: int, timeout_s: float = 60.0) -> float:
        started = time.monotonic()
        process = self._members[member]
        while await _commits_of(http, self._ports[member]) < 1:
            if not process.alive():
                raise AssertionError(f"{process.name} exited:\n{process.log_tail()}")
            if time.monotonic() - started > timeout_s:
                raise AssertionError(
                    f"{process.name} committed nothing in {timeout_s:.0f} s:\n{process.log_tail()}"
                )
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    async def run(self) -> KillLoopResult:
        s = self._settings
        broker, self.bootstrap = start_broker(self._logs)
        redis_proc, self.redis_url = start_redis(
            self._logs,
            data_dir=self._state_dir / "redis",
            fsync="everysec",  # as `pz up` runs it
        )
        client = redis.Redis.from_url(self.redis_url)
        load = _Load(self.bootstrap, s)
        rng = random.Random(s.seed + 1)  # noqa: S311 - reproducible kill moments
        recoveries: list[float] = []
        try:
            await create_topics(self.bootstrap, s.partitions)
            await load.start()
            async with httpx.AsyncClient() as http:
                self._start(0)
                await self._first_commit_s(http, 0)
                edge = _Edge(self.bootstrap, f"http://127.0.0.1:{self._ports[0]}", self._state_dir / "edge")
                await edge.start()
                plan = [(0, 1)] * s.kills + [(k % 2, 2) for k in range(s.rebalance_kills)]
                for number, (victim, members) in enumerate(plan, 1):
                    if members == 2 and 1 not in self._members:
                        self._start(1)
                        await self._first_commit_s(http, 1)
                    await asyncio.sleep(rng.uniform(0.0, s.max_uptime_s))
                    self._members[victim].kill()
                    self._start(victim)
                    recoveries.append(await self._first_commit_s(http, victim))
                    self._say(
                        f"kill {number}/{len(plan)} ({members} member(s)): committing again "
                        f"{recoveries[-1]:.2f} s after the restart; {load.accepted} events accepted"
                    )
                for number in range(1, s.redis_kills + 1):
                    await asyncio.sleep(rng.uniform(0.5, s.max_uptime_s + 0.5))
                    redis_proc = self._restart_redis(redis_proc)
                    self._say(f"Redis kill -9 {number}/{s.redis_kills}; {load.accepted} events accepted")
                for number in range(1, s.redis_wipes + 1):
                    await asyncio.sleep(rng.uniform(0.5, s.max_uptime_s + 0.5))
                    await client.flushall()
                    self._say(f"Redis FLUSHALL {number}/{s.redis_wipes}; {load.accepted} events accepted")
                await asyncio.sleep(s.max_uptime_s)  # events flow a little longer after the last fault
                self.member_metrics = [await _metrics_of(http, self._ports[m]) for m in sorted(self._members)]
                await load.stop()
                behind = await self._drain(StateStore(client, 86_400), load)
                try:
                    edge_wrong = await edge.differing(http, self._ports[0], load.users)
                finally:
                    await edge.stop()
            lost, duplicated, wrong = await self._compare(client, load)
            return KillLoopResult(
                tuple(recoveries), load.accepted, lost, duplicated, wrong, behind, edge_wrong, self._logs
            )
        finally:
            await load.stop()
            for process in self._members.values():
                process.stop()
            await client.aclose()
            redis_proc.stop()
            broker.stop()

    async def _drain(self, store: StateStore, load: _Load) -> dict[str, int]:
        """Wait until every partition of every event topic is committed to its log end; what is left."""
        deadline = time.monotonic() + self._settings.drain_timeout_s
        while True:
            positions = {p: await store.load_position(p) for p in range(self._settings.partitions)}
            behind = {
                f"{topic}/{partition}": end - positions[partition].offsets.get(topic, 0)
                for (topic, partition), end in load.log_end.items()
                if positions[partition].offsets.get(topic, 0) != end
            }
            if not behind or time.monotonic() > deadline:
                return behind
            await asyncio.sleep(0.1)

    async def _compare(self, client: redis.Redis, load: _Load) -> tuple[int, int, int]:
        lost = duplicated = wrong = 0
        for user in load.users:
            key = user_state_key(partition_for_key(user, self._settings.partitions), user)
            raw = await client.get(key)
            lifetime = load_state(raw if isinstance(raw, bytes) else None).lifetime or Lifetime(0, 0)
            got = (lifetime.views, lifetime.carts, lifetime.purchases)
            want = load.expected.get(user, [0, 0, 0, 0])
            for g, w in zip(got, want[:3], strict=True):
                lost += max(0, w - g)
                duplicated += max(0, g - w)
            if got != tuple(want[:3]) or lifetime.revenue_cents != want[3]:
                wrong += 1
        return lost, duplicated, wrong


def _same(a: Profile | None, b: Profile | None) -> bool:
    """Equal as served: items, segments and totals (not the time each was made)."""
    if a is None or b is None:
        return a is b
    return (a.items, a.segments, a.lifetime) == (b.items, b.segments, b.lifetime)


class _Edge:
    """The edge's own store, snapshot sync and delta applier, in this process, following pz.deltas
    through the whole loop as a running edge does: it must end up serving what a fresh snapshot says."""

    def __init__(self, bootstrap: str, aggregator_url: str, state_dir: Path) -> None:
        self.store = ProfileStore(10_000)
        health = SyncHealth(30.0)
        self._snapshots = SnapshotSync(self.store, aggregator_url, state_dir, _KEY, 3600.0, health)
        applier = DeltaApplier(self.store, _KEY, self._snapshots.request_refresh, health)
        self._deltas = DeltaSync(self.store, bootstrap, 10, applier)

    async def start(self) -> None:
        await self._snapshots.fetch_once()
        await self._snapshots.start()
        await self._deltas.start()

    async def stop(self) -> None:
        await self._deltas.stop()
        await self._snapshots.stop()

    async def differing(
        self, http: httpx.AsyncClient, port: int, users: list[int], timeout_s: float = 30.0
    ) -> list[int]:
        """Users whose profile here differs from a snapshot built now, once the edge had time to catch up."""
        built = await http.post(
            f"http://127.0.0.1:{port}/admin/snapshot", headers={"Authorization": f"Bearer {_ADMIN_TOKEN}"}
        )
        built.raise_for_status()
        body = (await http.get(f"http://127.0.0.1:{port}/sync/snapshot")).content
        fresh = SnapshotReader(open_sealed(body, {_KEY.key_id: _KEY}))
        deadline = time.monotonic() + timeout_s
        while True:
            wrong = [u for u in users if not _same(self.store.get(u), fresh.find_user(u))]
            if not wrong or time.monotonic() > deadline:
                return wrong
            await asyncio.sleep(0.2)
