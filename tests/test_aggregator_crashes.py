"""kill -9 of the aggregator, again and again, while it works through 200 000 events: afterwards
every user's state in Redis equals a recomputation from the same events (nothing lost, nothing
counted twice). Its own broker and Redis, so that only these events are on the topics."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path
from typing import cast

import pytest
import redis

from aggregator.item_history import UserHistory, WindowSettings, add_events, load_state
from aggregator.state_store import user_state_key
from benchmarks.aggregator import PARTITIONS, aggregator_env, produce_fast
from pz.embedded import create_topics_sync, start_broker, start_redis
from pz.processes import ManagedProcess, spawn
from schemas.events import Event
from schemas.topics import partition_for_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]
EVENTS = 200_000
USERS = 5_000
KILLS = 10


def replay(now_ms: int) -> list[Event]:
    """Within the view window and under every cap, so that the state is a function of the events alone."""
    rng = random.Random(42)  # noqa: S311 - reproducible data
    keys = [rng.getrandbits(63) for _ in range(USERS)]
    kinds = ("page_view",) * 8 + ("add_to_cart", "purchase")
    events = []
    for i in range(EVENTS):
        user = keys[rng.randrange(USERS)]
        t = now_ms - rng.randrange(240_000)  # the last four minutes: nothing expires
        item = f"p{(user + rng.randrange(20)) % 997:04d}"  # 20 items per user at most (cap: 32)
        events.append(Event(kinds[i % len(kinds)], user, t, t, item=item, category=f"c{item[-1]}"))
    return events


def committed(client: redis.Redis) -> int:
    total = 0
    for partition in range(PARTITIONS):
        position = cast(dict[bytes, bytes], client.hgetall(f"pz:{{p{partition}}}:pos"))
        total += sum(int(v) for k, v in position.items() if k.startswith(b"off:"))
    return total


@pytest.mark.parametrize(
    ("members", "kills"), [(1, KILLS), (2, 6)], ids=["one-member", "two-members-rebalancing"]
)
def test_kill_9s_during_a_200k_replay_lose_and_recount_nothing(
    tmp_path: Path, members: int, kills: int
) -> None:
    """One member killed ten times; or two members of one group, killed in turn, so that partitions
    move between them with their state (forced rebalances)."""
    logs = tmp_path / "logs"
    broker, bootstrap = start_broker(logs)
    redis_proc, redis_url = start_redis(logs)
    client = redis.Redis.from_url(redis_url)
    running: dict[int, ManagedProcess] = {}
    try:
        create_topics_sync(bootstrap, PARTITIONS)
        events = replay(int(time.time() * 1000))
        asyncio.run(produce_fast(bootstrap, events))

        def start(member: int) -> None:
            env = aggregator_env(bootstrap, redis_url, tmp_path / f"aggregator-{member}", "crash-test")
            running[member] = spawn(f"aggregator-{member}", [sys.executable, "-m", "aggregator"], logs, env)

        for member in range(members):
            start(member)
        rng = random.Random(7)  # noqa: S311
        done_at_kill = []
        for k in range(kills):
            before = committed(client)
            deadline = time.monotonic() + 60
            while committed(client) == before and time.monotonic() < deadline:
                time.sleep(0.05)  # killed only once work goes on: mid-batch, mid-commit, anywhere
            time.sleep(rng.uniform(0.0, 0.6))
            victim = k % members
            running[victim].kill()
            done_at_kill.append(committed(client))
            start(victim)
        assert done_at_kill == sorted(done_at_kill) and done_at_kill[-1] < EVENTS  # killed mid-stream
        deadline = time.monotonic() + 150
        while committed(client) < EVENTS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert committed(client) == EVENTS, "\n".join(
            f"--- member {m}\n{p.log_tail()}" for m, p in running.items()
        )

        expected: dict[int, UserHistory] = {}
        for event in events:
            add_events(expected.setdefault(event.user_key, UserHistory()), [event], WindowSettings())
        lost = doubled = 0
        for user, state in expected.items():
            stored = load_state(client.get(user_state_key(partition_for_key(user, PARTITIONS), user)))  # type: ignore[arg-type]
            for key, kept in state.items():
                times, got = kept[1], stored.get(key, ("", []))[1]
                lost += max(0, len(times) - len(got))
                doubled += max(0, len(got) - len(times))
            assert stored == state, f"user {user}: {stored} != {state}"
            # every event counted once in the totals, whatever the windows capped or dropped
            assert stored.lifetime == state.lifetime, f"user {user}: {stored.lifetime} != {state.lifetime}"
        assert (lost, doubled) == (0, 0)
        print(
            f"\n{members} member(s), {kills} kill -9s at {done_at_kill} of {EVENTS} events: 0 lost, 0 twice"
        )
    finally:
        for process in running.values():
            process.stop()
        client.close()
        redis_proc.stop()
        broker.stop()
