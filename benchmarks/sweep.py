"""Open-loop load at fixed arrival rates, and a rate sweep that finds the highest rate within a p99.

Requests leave on a schedule whatever the answers do; each latency counts from its scheduled send
time, so a server that falls behind shows it in the latency (no coordinated omission).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.common import latency_summary
from benchmarks.http_load import LoadClient, open_loop


@dataclass(frozen=True, slots=True)
class LoadPoint:
    offered_per_s: float
    achieved_per_s: float
    ok: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


async def at_rate(
    url: str, raws: Sequence[bytes], rate: float, seconds: float, ok_status: int = 200, connections: int = 64
) -> LoadPoint:
    client = LoadClient(url, connections=connections)
    latencies: list[float] = []
    errors = 0

    async def fire(i: int, scheduled: float) -> None:
        nonlocal errors
        try:
            result = await client.submit(raws[i % len(raws)])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            return
        if result.status != ok_status:
            errors += 1
            return
        latencies.append((result.finished - scheduled) * 1000)

    try:
        achieved = await open_loop(rate, max(1, int(rate * seconds)), fire)
    finally:
        await client.aclose()
    summary = latency_summary(latencies, "l")
    return LoadPoint(
        rate,
        achieved,
        len(latencies),
        errors,
        summary["l_p50_ms"],
        summary["l_p90_ms"],
        summary["l_p99_ms"],
        summary["l_p999_ms"],
        summary["l_max_ms"],
    )


def sweep(
    url: str,
    raws: Sequence[bytes],
    rates: Sequence[float],
    seconds: float,
    p99_target_ms: float,
    ok_status: int = 200,
) -> tuple[list[LoadPoint], float]:
    """Each rate in turn until one misses the p99 target or cannot be offered; returns the points and
    the highest rate that kept p99 within the target (0 if none did)."""
    points: list[LoadPoint] = []
    best = 0.0
    for rate in rates:
        point = asyncio.run(at_rate(url, raws, rate, seconds, ok_status))
        points.append(point)
        print(
            f"  {rate:>7.0f}/s offered: {point.achieved_per_s:7.0f}/s sent, p50 {point.p50_ms:6.1f} ms, "
            f"p99 {point.p99_ms:7.1f} ms, errors {point.errors}",
            flush=True,
        )
        if point.p99_ms > p99_target_ms or point.errors or point.achieved_per_s < 0.95 * rate:
            break
        best = rate
    return points, best
