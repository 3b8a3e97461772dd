"""The kill loop (benchmarks/kill_loop.py) as tests: aggregator processes killed with kill -9 under a
steady load of every event type, Redis killed and restarted as `pz up` runs it, Redis wiped. Each
ends with every partition of every event topic committed to its log end, every user's lifetime
totals equal to what the broker acknowledged, and a running edge's profiles equal to a fresh
snapshot's. PZ_KILL_LOOP_SCALE=N runs N times the kills, users and rate (default 1: sized for CI)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from benchmarks.kill_loop import KillLoop, KillLoopResult, KillLoopSettings

pytestmark = [pytest.mark.integration]
SCALE = int(os.environ.get("PZ_KILL_LOOP_SCALE", "1"))


def run(tmp_path: Path, settings: KillLoopSettings) -> tuple[KillLoop, KillLoopResult]:
    loop = KillLoop(settings, tmp_path)
    return loop, asyncio.run(loop.run())


def explain(result: KillLoopResult) -> str:
    logs = sorted(result.logs.glob("aggregator-*.log"))
    tail = "\n".join(logs[-1].read_text(errors="replace").splitlines()[-15:]) if logs else ""
    return f"{result}\n--- {logs[-1] if logs else ''}\n{tail}"


@pytest.mark.timeout(300 * SCALE)
def test_twenty_kill_9s_and_ten_forced_rebalances_lose_and_double_nothing(tmp_path: Path) -> None:
    loop, result = run(
        tmp_path,
        KillLoopSettings(
            kills=20 * SCALE, rebalance_kills=10 * SCALE, users=300 * SCALE, rate_per_s=300.0 * SCALE
        ),
    )
    assert result.accepted_events > 5_000
    assert len(result.recoveries_s) == 30 * SCALE
    assert result.exact, explain(result)
    ordered = sorted(result.recoveries_s)
    print(f"\nrestart -> first commit: p50 {ordered[len(ordered) // 2]:.2f} s, max {ordered[-1]:.2f} s")


@pytest.mark.timeout(240)
def test_redis_killed_and_restarted_as_pz_up_runs_it_loses_and_doubles_nothing(tmp_path: Path) -> None:
    loop, result = run(tmp_path, KillLoopSettings(kills=0, rebalance_kills=0, redis_kills=3))
    assert result.exact, explain(result)
    # the failure path ran: batches failed against the dead Redis and were rewound, not dropped
    assert loop.member_metrics[0].get("pz_aggregator_batch_failures_total", 0) >= 1


@pytest.mark.timeout(240)
def test_redis_wiped_mid_stream_is_detected_and_rebuilt_from_the_log(tmp_path: Path) -> None:
    loop, result = run(tmp_path, KillLoopSettings(kills=0, rebalance_kills=0, redis_wipes=1))
    resets = sum(
        v for k, v in loop.member_metrics[0].items() if k.startswith("pz_aggregator_state_resets_total")
    )
    assert resets >= 1, loop.member_metrics[0]  # said so (and logged), not absorbed
    # every total was gone after FLUSHALL; equal to every accepted event now: rebuilt, each counted once
    assert result.exact, explain(result)
    logged = "".join(p.read_text() for p in result.logs.glob("aggregator-*.log"))
    assert "state lost" in logged


@pytest.mark.timeout(120)
def test_aggregator_readiness_says_redis_is_hung_and_the_partitions_stalled_then_recovers(
    tmp_path: Path,
) -> None:
    """Redis paused (SIGSTOP: it holds its sockets and answers nothing) under a running aggregator
    while events arrive: /readyz turns 503 naming Redis, then the stalled partitions; resumed, ready."""
    import httpx

    from benchmarks.kill_loop import produce_some
    from pz.embedded import create_topics_sync, start_broker, start_redis
    from pz.processes import free_port, spawn, wait_for_http

    logs = tmp_path / "logs"
    broker, bootstrap = start_broker(logs)
    redis_proc, redis_url = start_redis(logs, data_dir=tmp_path / "redis", fsync="everysec")
    port = free_port()
    env = {
        "PZ_KAFKA_BOOTSTRAP": bootstrap,
        "PZ_REDIS_URL": redis_url,
        "PZ_AGGREGATOR_PORT": str(port),
        "PZ_AGGREGATOR_STATE_DIR": str(tmp_path / "aggregator"),
        "PZ_STALL_AFTER_S": "2",
    }
    aggregator = None
    try:
        create_topics_sync(bootstrap, 4)
        aggregator = spawn("aggregator", [sys.executable, "-m", "aggregator"], logs, env)
        url = f"http://127.0.0.1:{port}/readyz"
        wait_for_http(aggregator, url)
        redis_proc.pause()
        asyncio.run(produce_some(bootstrap, 200, 4))
        deadline = time.monotonic() + 20
        seen: set[str] = set()
        while not {"redis", "progress"} <= seen and time.monotonic() < deadline:
            body = httpx.get(url, timeout=5).json()
            assert body["ready"] is False or not seen  # once not ready, it stays so while Redis hangs
            seen |= {name for name, ok in body["checks"].items() if not ok}
            time.sleep(0.2)
        assert {"redis", "progress"} <= seen, seen
        assert body["stalled"] and body["redis_down_since_ms"]
        redis_proc.resume()
        wait_for_http(aggregator, url, timeout_s=30)  # 200 again: Redis answers, the partitions move
    finally:
        if aggregator is not None:
            aggregator.stop()
        redis_proc.stop()
        broker.stop()
