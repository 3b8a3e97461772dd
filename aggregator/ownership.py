"""Which aggregator process works on which partition: leases in Redis, not a Kafka consumer group.

Why not a group: on the embedded broker a group join holds the joiner for half the session timeout
and the sync for as long again (3 s + 3 s measured at a 6 s session), a member killed with kill -9
blocks the next join until its session expires (restart -> first commit 12 s), and static membership
(KIP-345) loops in rejoins with two members. Exactly-once never depended on the group anyway: every
commit is fenced in Redis (state_store), so two processes working on one partition cannot both apply.

The protocol, per process, every tick (between batches, so no batch is ever in flight across a change):
- it registers itself in the members set `pz:members:<group>` (a sorted set scored by expiry time) and drops
  the expired entries; the live member names, sorted, share the partitions round-robin;
- for each partition it should own, it takes or renews the lease `pz:{p<p>}:lease:<group>` (value: its member
  name, `PX` expiry) when the lease is free or already its name's; a process restarted under the same
  `PZ_AGGREGATOR_MEMBER` name takes its partitions back at once, without waiting for any expiry;
- a partition it should no longer own is released (lease deleted) right away; one whose lease another
  member holds is not its own until that lease expires or is released.

KEYS/ARGV of the scripts are given above each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as redis

# KEYS: lease. ARGV: member name, ttl ms. 1 if the lease is (now) the member's, else 0.
_TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: member name. Deletes the lease only if the member holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def lease_key(group: str, partition: int) -> str:
    return f"pz:{{p{partition}}}:lease:{group}"


def members_key(group: str) -> str:
    return f"pz:members:{group}"


def wanted_partitions(live_members: list[str], me: str, partitions: int) -> frozenset[int]:
    """Round-robin over the sorted live names: every member computes the same split from the same set."""
    names = sorted(set(live_members) | {me})
    index = names.index(me)
    return frozenset(p for p in range(partitions) if p % len(names) == index)


@dataclass(frozen=True, slots=True)
class OwnershipSettings:
    member_name: str
    group: str  # processes of one group share the partitions; groups are apart (tests, migrations)
    lease_ms: int = 3_000  # a killed member's partitions wait this long for a member of another name
    member_ttl_ms: int = 3_000  # a member missing this long no longer counts in the split


@dataclass(frozen=True, slots=True)
class OwnershipChange:
    owned: frozenset[int]
    gained: frozenset[int]
    lost: frozenset[int]  # released (split changed) or taken by another member
    members: tuple[str, ...]


class PartitionLeases:
    def __init__(self, client: redis.Redis, settings: OwnershipSettings, partitions: int) -> None:
        self._redis = client
        self._settings = settings
        self._partitions = partitions
        self._take = client.register_script(_TAKE)
        self._release = client.register_script(_RELEASE)
        self.owned: frozenset[int] = frozenset()

    async def tick(self) -> OwnershipChange:
        """Register, renew, take and release; raises RedisError when Redis does not answer (the
        caller keeps what it owns: its commits are fenced if someone else took over meanwhile)."""
        s = self._settings
        now_ms = int(time.time() * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(members_key(s.group), {s.member_name: now_ms + s.member_ttl_ms})
            pipe.zremrangebyscore(members_key(s.group), "-inf", now_ms)
            pipe.zrange(members_key(s.group), 0, -1)
            replies = await pipe.execute()
        members = [m.decode() for m in replies[2]]
        wanted = wanted_partitions(members, s.member_name, self._partitions)
        owned = set()
        for partition in sorted(wanted):
            if await self._take(keys=[lease_key(s.group, partition)], args=[s.member_name, s.lease_ms]):
                owned.add(partition)
        for partition in sorted(self.owned - wanted):
            await self._release(keys=[lease_key(s.group, partition)], args=[s.member_name])
        before, self.owned = self.owned, frozenset(owned)
        return OwnershipChange(self.owned, self.owned - before, before - self.owned, tuple(sorted(members)))

    async def release_all(self) -> None:
        """On a graceful stop: the partitions go to the other members at once."""
        for partition in sorted(self.owned):
            await self._release(
                keys=[lease_key(self._settings.group, partition)], args=[self._settings.member_name]
            )
        await self._redis.zrem(members_key(self._settings.group), self._settings.member_name)
        self.owned = frozenset()
