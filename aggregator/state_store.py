"""Aggregator state in Redis, written together with the consumed offsets in one atomic script.

Every key of partition p carries the hash tag `{p<p>}`, so a partition's state, offsets and delta
sequence live in one Redis Cluster slot and one script can cover them.

A commit is fenced: it names the commit count it was computed from and applies only if no other
commit of that partition landed since. A member that lost its partitions in a rebalance (or was
paused past its session) can therefore never overwrite what the new owner wrote; it learns so and
rewinds instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

import redis.asyncio as redis
from redis.typing import EncodableT

from aggregator.item_history import UserHistory, dump_state, load_state
from aggregator.item_model import CoOccurrence

# KEYS: pos, pop, cat, co (item pairs), occ (items' session scores), user keys...
# ARGV: ttl, expected commit count, then counted runs of (field, value) pairs: position, popularity,
# categories, item pairs, item scores; then one value per user key ("" deletes).
# Loops, not unpack(): a batch can carry more values than Lua's stack takes at once.
_COMMIT = """
local pos = KEYS[1]
if tonumber(redis.call('HGET', pos, 'commits') or '0') ~= tonumber(ARGV[2]) then return 0 end
local ttl = ARGV[1]
local i = 3
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', pos, ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('HSET', pos, 'commits', tonumber(ARGV[2]) + 1)
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('ZINCRBY', KEYS[2], ARGV[i + 1], ARGV[i]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HINCRBYFLOAT', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HINCRBYFLOAT', KEYS[5], ARGV[i], ARGV[i + 1]); i = i + 2 end
for k = 6, #KEYS do
  local value = ARGV[i]; i = i + 1
  if value == '' then redis.call('DEL', KEYS[k]) else redis.call('SET', KEYS[k], value, 'EX', ttl) end
end
return 1
"""

# Hands out the next delta sequence number of a partition: above every number handed out before (a
# batch published but never committed, after a crash or a fenced commit, keeps its number) and above
# the last committed one, so two members racing through a rebalance never publish the same number,
# which edges would drop as a duplicate.
_RESERVE = """
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved_seq') or '0')
local committed = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local seq = math.max(reserved, committed, tonumber(ARGV[1])) + 1
redis.call('HSET', KEYS[1], 'reserved_seq', seq)
return seq
"""


# Forgets item pairs (or items) whose score fell below ARGV[1]; checked here, not by the caller, so an
# increment that lands between the caller's read and this delete is never lost.
_PRUNE = """
local removed = 0
for i = 2, #ARGV do
  local value = redis.call('HGET', KEYS[1], ARGV[i])
  if value and tonumber(value) < tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
"""


class CommitFenced(Exception):
    """Another commit of the partition landed since this batch's state was loaded: nothing was written."""


def _tag(partition: int) -> str:
    return f"pz:{{p{partition}}}"


def user_state_key(partition: int, user_key: int) -> str:
    return f"{_tag(partition)}:u:{user_key}"


@dataclass(slots=True)
class PartitionPosition:
    """Where a partition's processing stands: next offset per source topic, last delta published."""

    offsets: dict[str, int] = field(default_factory=dict)
    seq: int = 0  # last delta sequence committed with the state
    delta_offset: int = -1
    commits: int = 0  # commits of this partition so far: the fence a commit must name to apply
    watermark_s: int = 0  # newest event time applied: what expiry and lateness are judged against

    @property
    def fresh(self) -> bool:
        """Nothing was ever committed for the partition (or Redis lost it)."""
        return self.commits == 0 and not self.offsets


@dataclass(slots=True)
class PartitionCommit:
    partition: int
    users: Mapping[int, UserHistory]
    item_views: Mapping[str, int]
    item_categories: Mapping[str, str]
    position: PartitionPosition
    together: CoOccurrence = field(default_factory=CoOccurrence.empty)


class StateStore:
    def __init__(self, client: redis.Redis, user_ttl_s: int) -> None:
        self._redis = client
        self._user_ttl_s = user_ttl_s
        self._commit = client.register_script(_COMMIT)
        self._reserve = client.register_script(_RESERVE)
        self._prune = client.register_script(_PRUNE)

    @property
    def client(self) -> redis.Redis:
        return self._redis

    async def load_position(self, partition: int) -> PartitionPosition:
        raw = cast(dict[bytes, bytes], await self._redis.hgetall(f"{_tag(partition)}:pos"))
        position = PartitionPosition()
        for name, value in raw.items():
            text = name.decode()
            if text == "seq":
                position.seq = int(value)
            elif text == "delta_offset":
                position.delta_offset = int(value)
            elif text == "commits":
                position.commits = int(value)
            elif text == "watermark":
                position.watermark_s = int(value)
            elif text.startswith("off:"):
                position.offsets[text[4:]] = int(value)
        return position

    async def load_users(self, partition: int, user_keys: Iterable[int]) -> dict[int, UserHistory]:
        keys = list(user_keys)
        if not keys:
            return {}
        raw = cast(list[bytes | None], await self._redis.mget([user_state_key(partition, k) for k in keys]))
        return {k: load_state(v) for k, v in zip(keys, raw, strict=True)}

    async def reserve_seq(self, partition: int, at_least: int) -> int:
        """The next delta sequence number of the partition, recorded before the delta is published."""
        return int(await self._reserve(keys=[f"{_tag(partition)}:pos"], args=[at_least]))

    async def commit(self, batch: PartitionCommit) -> None:
        """State, popularity and position of one partition in a single atomic step, or nothing at all
        (`CommitFenced`) when another commit landed since `batch.position.commits` was read."""
        tag = _tag(batch.partition)
        position = batch.position
        stored: dict[str, int] = {f"off:{topic}": offset for topic, offset in position.offsets.items()}
        stored.update(seq=position.seq, delta_offset=position.delta_offset, watermark=position.watermark_s)
        args: list[EncodableT] = [self._user_ttl_s, position.commits]
        runs: tuple[Mapping[str, EncodableT], ...] = (
            stored,
            batch.item_views,
            batch.item_categories,
            batch.together.pairs,
            batch.together.items,
        )
        for run in runs:  # in the order _COMMIT reads them
            args.append(len(run))
            for name, value in run.items():
                args += (name, value)
        keys: list[str] = [f"{tag}:pos", f"{tag}:pop", f"{tag}:cat", f"{tag}:co", f"{tag}:occ"]
        for user_key, state in batch.users.items():
            keys.append(user_state_key(batch.partition, user_key))
            args.append(b"" if state.forgotten else dump_state(state))
        if not await self._commit(keys=keys, args=args):
            raise CommitFenced(f"partition {batch.partition}: commit {position.commits} was overtaken")
        position.commits += 1

    async def scan_users(self, partition: int) -> dict[int, bytes]:
        """Every user's stored state in the partition, undecoded (load_state decodes one): decoding a
        partition's users is CPU work the caller may want off the event loop."""
        prefix = f"{_tag(partition)}:u:"
        users: dict[int, bytes] = {}
        keys: list[bytes] = []
        async for key in self._redis.scan_iter(
            match=prefix.replace("{", "\\{").replace("}", "\\}") + "*", count=1000
        ):
            keys.append(key)
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            values = cast(list[bytes | None], await self._redis.mget(chunk))
            for key, raw in zip(chunk, values, strict=True):
                if raw is not None:
                    users[int(key.decode()[len(prefix) :])] = raw
        return users

    async def used_memory(self) -> int:
        info = await self._redis.info("memory")
        return int(info["used_memory"])

    async def co_occurrence(self, partition: int, prune_below: float) -> CoOccurrence:
        """The partition's item pairs and item scores; those scoring below `prune_below` are dropped
        from Redis instead (the decayed window slides on)."""
        found = CoOccurrence({}, {})
        for suffix, into in (("co", found.pairs), ("occ", found.items)):
            key = f"{_tag(partition)}:{suffix}"
            stale: list[str] = []
            async for name, value in self._redis.hscan_iter(key, count=2000):
                score = float(value)
                if score < prune_below:
                    stale.append(name.decode())
                else:
                    into[name.decode()] = score
            for start in range(0, len(stale), 2000):
                await self._prune(keys=[key], args=[prune_below, *stale[start : start + 2000]])
        return found

    async def popularity(self, partition: int, limit: int) -> tuple[list[tuple[str, float]], dict[str, str]]:
        tag = _tag(partition)
        top = cast(
            list[tuple[bytes, float]],
            await self._redis.zrevrange(f"{tag}:pop", 0, limit * 20, withscores=True),
        )
        categories: list[bytes | None] = []
        if top:
            categories = cast(list[bytes | None], await self._redis.hmget(f"{tag}:cat", [i for i, _ in top]))
        names = {item.decode(): (c or b"").decode() for (item, _), c in zip(top, categories, strict=True)}
        return [(item.decode(), score) for item, score in top], names
