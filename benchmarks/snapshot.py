"""`pz bench snapshot`: build, size, load and lookups of a synthetic snapshot of N users.

Typical profile (the budget's): 6 segments and 8 recently viewed items with one to three view
times each, newest first as the aggregator lists them, and lifetime totals (first seen up to 90
days ago, up to a few hundred views, a few carts and purchases). `build_s` covers encoding and
signing (not reading Redis); `load_ms` is map + verify + ready; lookups go through the edge's
ProfileStore (warm: decoded-profile cache hit; cold: binary search and decode). Same-run contrast:
the same users as one orjson document (`json_load_ms`) and a plain dict of decoded profiles
(`dict_lookup_us`).
"""

from __future__ import annotations

import mmap
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import environment, print_table, started_at, write_json
from edge_worker.profile_store import ProfileStore
from schemas import (
    ItemHistory,
    Lifetime,
    PartitionPosition,
    Profile,
    SigningKey,
    SnapshotContent,
    SnapshotReader,
    encode_snapshot,
    open_sealed,
    seal,
)

KEY = SigningKey("bench", b"bench-secret")
SEGMENTS = tuple(f"segment_{i}" for i in range(40))
ITEMS = 20_000
CATEGORIES = 40


def synthetic_users(count: int, now_s: int) -> list[Profile]:
    rng = random.Random(7)  # noqa: S311 - reproducible data, not a secret
    users = []
    for key in rng.sample(range(1, 2**63), count):
        items = []
        for _ in range(8):
            item = rng.randrange(ITEMS)
            times = tuple(
                sorted((now_s - rng.randrange(600) for _ in range(rng.randint(1, 3))), reverse=True)
            )
            items.append(ItemHistory(f"p{item:05d}", f"c{item % CATEGORIES:02d}", times))
        items.sort(key=lambda h: h.times_s[0], reverse=True)
        purchases = rng.randrange(6)
        last_seen_s = items[0].times_s[0]
        lifetime = Lifetime(
            last_seen_s - rng.randrange(90 * 86_400),
            last_seen_s,
            views=sum(len(h.times_s) for h in items) + rng.randrange(300),
            carts=rng.randrange(10),
            purchases=purchases,
            revenue_cents=sum(rng.randrange(1_000, 20_000) for _ in range(purchases)),
        )
        users.append(Profile(key, tuple(items), tuple(rng.sample(SEGMENTS, 6)), now_s * 1000, lifetime))
    return users


def _median_us(fn: Any, keys: list[int], repeats: int = 5) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for key in keys:
            fn(key)
        runs.append((time.perf_counter() - started) / len(keys) * 1e6)
    return statistics.median(runs)


def run_snapshot(users: int, quick: bool, json_path: Path | None) -> int:
    if quick:
        users = min(users, 50_000)
    began = started_at()
    now_s = int(time.time())
    print(f"generating {users} users…", flush=True)
    profiles = synthetic_users(users, now_s)
    content = SnapshotContent("bench", now_s * 1000, {0: PartitionPosition(1, 0)}, (), {}, profiles)

    started = time.perf_counter()
    sealed = seal(encode_snapshot(content), KEY)
    build_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="pz-bench-snapshot-") as tmp:
        path = Path(tmp) / "snapshot.bin"
        path.write_bytes(sealed)
        rss_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        reader = SnapshotReader(open_sealed(memoryview(mapped), {KEY.key_id: KEY}))
        store = ProfileStore(cache_size=100_000)
        store.install_snapshot(reader)
        load_ms = (time.perf_counter() - started) * 1000

        rng = random.Random(11)  # noqa: S311
        sample = [p.key for p in rng.sample(profiles, min(20_000, users))]
        hot = sample[:1000]
        for key in hot:
            store.get(key)
        lookup_warm_us = _median_us(store.get, hot * 20)
        lookup_cold_us = _median_us(reader.find_user, sample)
        miss_us = _median_us(reader.find_user, [k + 1 for k in sample])

        as_json = orjson.dumps(
            {
                str(p.key): {
                    "segments": p.segments,
                    "items": [[h.item, h.category, h.times_s] for h in p.items],
                    "lifetime": list(p.lifetime) if p.lifetime else None,
                }
                for p in profiles
            }
        )
        started = time.perf_counter()
        orjson.loads(as_json)
        json_load_ms = (time.perf_counter() - started) * 1000
        as_dict = {p.key: p for p in profiles}
        dict_lookup_us = _median_us(as_dict.get, sample)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        del reader, store
        mapped.close()

    metrics = {
        "users": users,
        "build_s": round(build_s, 3),
        "snapshot_bytes": len(sealed),
        "bytes_per_user": round(len(sealed) / users, 1),
        "load_ms": round(load_ms, 3),
        "lookup_warm_us": round(lookup_warm_us, 3),
        "lookup_cold_us": round(lookup_cold_us, 3),
        "lookup_miss_us": round(miss_us, 3),
        "rss_mb": round(rss_mb, 1),
        "rss_before_load_mb": round(rss_before_mb, 1),
    }
    baseline = {
        "json_bytes_per_user": round(len(as_json) / users, 1),
        "json_load_ms": round(json_load_ms, 1),
        "dict_lookup_us": round(dict_lookup_us, 3),
    }
    result = {
        "scenario": "snapshot",
        "params": {
            "users": users,
            "quick": quick,
            "segments_per_user": 6,
            "items_per_user": 8,
            "times_per_item": "1-3",
        },
        "metrics": metrics,
        "baseline": baseline,
        "ratio": {
            "load_vs_json": round(load_ms / json_load_ms, 4),
            "cold_lookup_vs_dict": round(lookup_cold_us / dict_lookup_us, 1),
        },
        "env": environment(),
        "started_at": began,
        "budget": {"build_s": 10, "bytes_per_user": 48, "load_ms": 100, "lookup_cold_us": 5},
    }
    print_table(
        f"snapshot: {users} users",
        [
            ("build s (budget 10 for 1M)", f"{build_s:.2f}"),
            ("bytes/user (budget 48)", f"{metrics['bytes_per_user']}"),
            ("load ms (budget 100)", f"{load_ms:.2f}"),
            ("lookup warm us", f"{lookup_warm_us:.2f}"),
            ("lookup cold us (budget 5)", f"{lookup_cold_us:.2f}"),
            ("lookup miss us", f"{miss_us:.2f}"),
            ("json load ms (same data)", f"{json_load_ms:.1f}"),
            ("dict lookup us", f"{dict_lookup_us:.3f}"),
            ("max rss MB", f"{rss_mb:.0f}"),
        ],
    )
    write_json(json_path, result)
    return 0
