"""`pz bench recovery [--kills N] [--members 1|2]`: aggregator processes killed with kill -9 at random
moments under a steady load (benchmarks/kill_loop.py); per kill, the time from the restart to the
new process's first committed batch; and, as the check that it was worth it, lost and duplicated
events over the whole run.

Baseline, same run and broker: a bare aiokafka consumer-group member (what the aggregator was before
it owned partitions through Redis leases) killed with kill -9 and restarted: restart -> first records.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from benchmarks.common import environment, print_table, started_at, write_json
from benchmarks.kill_loop import KillLoop, KillLoopSettings
from pz.embedded import create_topics, start_broker
from pz.processes import spawn
from schemas.event_codec import encode_event
from schemas.events import Event
from schemas.topics import event_topic


async def _group_rejoin_s(logs: Path, restarts: int) -> list[float]:
    broker, bootstrap = start_broker(logs)
    try:
        await create_topics(bootstrap, 4)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        now_ms = int(time.time() * 1000)
        for p in range(4):
            event = Event("page_view", p, now_ms, now_ms, item="p1")
            await producer.send_and_wait(event_topic("page_view"), encode_event(event), partition=p)
        await producer.stop()
        argv = [sys.executable, "-m", "benchmarks.group_member", bootstrap, "bench-baseline"]
        took = []
        member = None
        for n in range(restarts + 1):
            marker = logs / f"first-records-{n}"
            started = time.monotonic()
            member = spawn(f"group-member-{n}", [*argv, str(marker)], logs)
            while not marker.exists():
                if time.monotonic() - started > 60:
                    raise RuntimeError(f"the group member got no records in 60 s:\n{member.log_tail()}")
                await asyncio.sleep(0.02)
            if n:  # the first start is not a recovery: nothing was killed before it
                took.append(time.monotonic() - started)
            member.kill()
        return took
    finally:
        broker.stop()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


def run_recovery(kills: int, members: int, quick: bool, json_path: Path | None) -> int:
    began = started_at()
    if quick:
        kills = min(kills, 4)
    settings = KillLoopSettings(
        kills=kills if members == 1 else 0, rebalance_kills=kills if members == 2 else 0
    )
    with tempfile.TemporaryDirectory(prefix="pz-bench-recovery-") as state:
        result = asyncio.run(KillLoop(settings, Path(state)).run())
        baseline = asyncio.run(_group_rejoin_s(Path(state) / "baseline", 2 if quick else 3))
    ordered = sorted(result.recoveries_s)
    metrics: dict[str, Any] = {
        "recovery_p50_s": round(_median(ordered), 3),
        "recovery_max_s": round(ordered[-1], 3),
        "kills": len(ordered),
        "lost_events": result.lost_events,
        "duplicated_events": result.duplicated_events,
        "accepted_events": result.accepted_events,
        "wrong_users": result.wrong_users,
        "partitions_behind": len(result.behind),
        "edge_profiles_wrong": len(result.edge_wrong),
    }
    group_p50_s = _median(baseline)
    out: dict[str, Any] = {
        "scenario": "recovery",
        "params": {
            "members": members,
            "kills": kills,
            "users": settings.users,
            "rate_per_s": settings.rate_per_s,
            "partitions": settings.partitions,
            "kill_moment": f"uniform 0..{settings.max_uptime_s} s after the member's first commit",
            "redis": "append-only file, fsync everysec (as pz up)",
            "quick": quick,
        },
        "metrics": metrics,
        "baseline": {"group_member_restart_to_records_p50_s": round(group_p50_s, 3), "samples": baseline},
        "ratio": {"recovery_over_group_rejoin": round(metrics["recovery_p50_s"] / group_p50_s, 3)},
        "env": environment(),
        "started_at": began,
        "command": f"pz bench recovery --kills {kills} --members {members}",
    }
    print_table(
        f"recovery: {len(ordered)} kill -9s, {members} member(s)",
        [
            ("restart -> first commit p50 (budget 2 s)", f"{metrics['recovery_p50_s']:.2f} s"),
            ("restart -> first commit max (budget 5 s)", f"{metrics['recovery_max_s']:.2f} s"),
            ("consumer-group member restart -> records p50", f"{group_p50_s:.2f} s"),
            ("ours / group", f"{out['ratio']['recovery_over_group_rejoin']:.2f}x"),
            (
                "events accepted / lost / duplicated",
                f"{result.accepted_events} / {result.lost_events} / {result.duplicated_events}",
            ),
            ("partitions behind the log end", str(len(result.behind))),
            ("edge profiles unlike a fresh snapshot", str(len(result.edge_wrong))),
        ],
    )
    write_json(json_path, out)
    return 0 if result.exact else 1
