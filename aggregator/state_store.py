"""Aggregator state in Redis, written together with the consumed offsets in one MULTI/EXEC.

Every key of partition p carries the hash tag `{p<p>}`, so a partition's state, offsets and delta
sequence live in one Redis Cluster slot and one transaction can cover them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

import redis.asyncio as redis
from redis.typing import EncodableT, FieldT

from aggregator.item_history import UserHistory, dump_state, load_state

_Mapping = Mapping[FieldT, EncodableT]


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
    # Highest sequence ever handed to a delta batch, recorded before it is published: a batch that
    # was published but not committed (crash, Redis error) is never followed by a different batch
    # under the same number, which edges would drop as a duplicate.
    reserved_seq: int = 0

    def next_seq(self) -> int:
        return max(self.seq, self.reserved_seq) + 1


@dataclass(slots=True)
class PartitionCommit:
    partition: int
    users: Mapping[int, UserHistory]
    item_views: Mapping[str, int]
    item_categories: Mapping[str, str]
    position: PartitionPosition


class StateStore:
    def __init__(self, client: redis.Redis, user_ttl_s: int) -> None:
        self._redis = client
        self._user_ttl_s = user_ttl_s

    async def load_position(self, partition: int) -> PartitionPosition:
        raw = cast(dict[bytes, bytes], await self._redis.hgetall(f"{_tag(partition)}:pos"))
        position = PartitionPosition()
        for name, value in raw.items():
            text = name.decode()
            if text == "seq":
                position.seq = int(value)
            elif text == "delta_offset":
                position.delta_offset = int(value)
            elif text == "reserved_seq":
                position.reserved_seq = int(value)
            elif text.startswith("off:"):
                position.offsets[text[4:]] = int(value)
        return position

    async def load_users(self, partition: int, user_keys: Iterable[int]) -> dict[int, UserHistory]:
        keys = list(user_keys)
        if not keys:
            return {}
        raw = cast(list[bytes | None], await self._redis.mget([user_state_key(partition, k) for k in keys]))
        return {k: load_state(v) for k, v in zip(keys, raw, strict=True)}

    async def reserve_seq(self, partition: int, seq: int) -> None:
        await self._redis.hset(f"{_tag(partition)}:pos", "reserved_seq", seq)

    async def commit(self, batch: PartitionCommit) -> None:
        """State, popularity and position of one partition in a single atomic step."""
        tag = _tag(batch.partition)
        pipe = self._redis.pipeline(transaction=True)
        for user_key, state in batch.users.items():
            key = user_state_key(batch.partition, user_key)
            if state:
                pipe.set(key, dump_state(state), ex=self._user_ttl_s)
            else:
                pipe.delete(key)
        for item, count in batch.item_views.items():
            pipe.zincrby(f"{tag}:pop", count, item)
        if batch.item_categories:
            pipe.hset(f"{tag}:cat", mapping=cast(_Mapping, dict(batch.item_categories)))
        position: dict[str, int] = {f"off:{t}": o for t, o in batch.position.offsets.items()}
        position["seq"] = batch.position.seq
        position["delta_offset"] = batch.position.delta_offset
        pipe.hset(f"{tag}:pos", mapping=cast(_Mapping, position))
        await pipe.execute()

    async def scan_users(self, partition: int) -> dict[int, UserHistory]:
        prefix = f"{_tag(partition)}:u:"
        users: dict[int, UserHistory] = {}
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
                    users[int(key.decode()[len(prefix) :])] = load_state(raw)
        return users

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
