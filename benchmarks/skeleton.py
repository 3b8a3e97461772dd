"""`pz bench skeleton`: how long from an accepted event to the edge decision that reflects it.

Open loop: page views are sent at a fixed rate from this process, each latency counted from its
scheduled send time. Users are visited round-robin, a second apart, three times each; after a
user's third view of the same product the decision flips from `popular` to `similar_to_recent`,
and a poller measures the time from that view's `202` to the first decision showing the flip.
Baseline, same run, same broker: a bare aiokafka produce -> consume round trip at the same rate.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.common import bench_stack, environment, latency_summary, print_table, started_at, write_json
from benchmarks.http_load import LoadClient, build_request, open_loop
from edge_worker.config import DEV_COOKIE_SECRET
from edge_worker.identity import CookieSigner

_VIEWS_PER_USER = 3
_POLL_INTERVAL_S = 0.002
_POLL_GIVE_UP_S = 5.0
# Polling is load too: measure a bounded sample of third views, so that the measurement does not
# grow with the rate and tip the machine over (measured: polling every third view at 300 events/s
# saturated the 2 cores and freshness collapsed into seconds).
_SAMPLES_PER_S = 25
_BASELINE_TOPIC = "pz.events.exposure"  # unused by the aggregator: a quiet topic for the baseline


class _Run:
    def __init__(self, edge_url: str, rate: float, duration_s: float) -> None:
        self.edge_url = edge_url
        self.rate = rate
        self.total = int(rate * duration_s) // _VIEWS_PER_USER * _VIEWS_PER_USER
        self.cohort = max(1, int(rate))  # users per round: each user is visited once a second
        self.signer = CookieSigner(DEV_COOKIE_SECRET.encode())
        self.collect_ms: list[float] = []
        self.freshness_ms: list[float] = []
        self.errors = 0
        self.missed = 0

    def plan(self, i: int) -> tuple[str, str, bool]:
        """Event i -> (cookie, item, measure_freshness): a sample of users' third views."""
        cohort, within = divmod(i, self.cohort * _VIEWS_PER_USER)
        round_no, user_no = divmod(within, self.cohort)
        uid = f"bench-{cohort}-{user_no}"
        sampled = user_no % max(1, self.cohort // _SAMPLES_PER_S) == 0
        item = f"b{(cohort * self.cohort + user_no) % 9973:04d}"
        return self.signer.cookie_value(uid), item, sampled and round_no == _VIEWS_PER_USER - 1

    async def view(self, client: LoadClient, i: int, scheduled: float) -> None:
        cookie, item, measure = self.plan(i)
        body = orjson.dumps(
            {"type": "page_view", "item": item, "category": "bench", "ts": int(time.time() * 1000)}
        )
        headers = {"Content-Type": "application/json", "Cookie": f"pz_uid={cookie}"}
        try:
            result = await client.submit(build_request("POST", client.host, "/pz/collect", headers, body))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.errors += 1
            return
        self.collect_ms.append((result.finished - scheduled) * 1000)
        if result.status != 202:
            self.errors += 1
            return
        if measure:
            await self.await_reflected(client, cookie, result.finished)

    async def await_reflected(self, client: LoadClient, cookie: str, accepted: float) -> None:
        decide = build_request("GET", client.host, "/pz/decide?slots=recs", {"Cookie": f"pz_uid={cookie}"})
        # The poll interval grows with the wait (resolution stays within ~10 %), so that a slow
        # system is not buried under its own measurement's polling.
        while (waited_s := time.perf_counter() - accepted) < _POLL_GIVE_UP_S:
            result = await client.submit(decide)
            if (
                result.status == 200
                and orjson.loads(result.body)["slots"]["recs"]["rule"] == "similar_to_recent"
            ):
                self.freshness_ms.append((result.finished - accepted) * 1000)
                return
            await asyncio.sleep(max(_POLL_INTERVAL_S, waited_s / 10))
        self.missed += 1

    async def warm_up(self, client: LoadClient) -> None:
        """Some popularity first: a rule only applies when it has items to show, and until a snapshot
        carries popular items a third view could not change the decision."""
        cookie = self.signer.cookie_value("bench-warm-up")
        for n in range(20):
            body = orjson.dumps(
                {"type": "page_view", "item": f"w{n:02d}", "category": "bench", "ts": int(time.time() * 1000)}
            )
            headers = {"Content-Type": "application/json", "Cookie": f"pz_uid={cookie}"}
            await client.submit(build_request("POST", client.host, "/pz/collect", headers, body))
        decide = build_request("GET", client.host, "/pz/decide?slots=recs", {})
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            result = await client.submit(decide)
            if result.status == 200 and orjson.loads(result.body)["slots"]["recs"]["rule"] == "popular":
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("no snapshot with popular items within 30 s: is the aggregator up?")

    async def drive(self) -> float:
        client = LoadClient(self.edge_url, connections=64)
        try:
            await self.warm_up(client)
            return await open_loop(
                self.rate, self.total, lambda i, scheduled: self.view(client, i, scheduled)
            )
        finally:
            await client.aclose()


async def _kafka_round_trip(bootstrap: str, rate: float, count: int) -> list[float]:
    """Produce at `rate` and consume on the same broker; the delay of each record, in ms."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await consumer.start()
    await producer.start()
    try:
        tp = TopicPartition(_BASELINE_TOPIC, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await consumer.position(tp)
        sent: dict[bytes, float] = {}
        delays: list[float] = []

        async def consume() -> None:
            while len(delays) < count:
                batch = await consumer.getmany(tp, timeout_ms=200)
                now = time.perf_counter()
                for record in batch.get(tp, []):
                    if record.value in sent:
                        delays.append((now - sent.pop(record.value)) * 1000)

        reader = asyncio.create_task(consume())
        start = time.perf_counter()
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            value = secrets.token_bytes(16)
            sent[value] = time.perf_counter()
            await producer.send(_BASELINE_TOPIC, value, partition=0)
        await asyncio.wait_for(reader, timeout=30)
        return delays
    finally:
        await producer.stop()
        await consumer.stop()


def run_skeleton(rate: float, duration_s: float, quick: bool, json_path: Path | None) -> int:
    if quick:
        rate, duration_s = min(rate, 200.0), min(duration_s, 6.0)
    began = started_at()
    with bench_stack(with_shop=False) as stack:
        run = _Run(stack.edge_url, rate, duration_s)
        achieved = asyncio.run(run.drive())
        baseline_ms = asyncio.run(_kafka_round_trip(stack.kafka_bootstrap, rate, max(200, int(rate * 3))))
    metrics: dict[str, Any] = {
        "events_per_s": round(achieved, 1),
        "events": run.total,
        "errors": run.errors,
        "freshness_samples": len(run.freshness_ms),
        "freshness_missed": run.missed,
        **latency_summary(run.freshness_ms, "freshness"),
        **latency_summary(run.collect_ms, "collect"),
    }
    baseline = latency_summary(baseline_ms, "kafka_round_trip")
    ratio = metrics["freshness_p50_ms"] / baseline["kafka_round_trip_p50_ms"]
    result = {
        "scenario": "skeleton",
        "params": {
            "rate_per_s": rate,
            "duration_s": duration_s,
            "quick": quick,
            "views_per_user": _VIEWS_PER_USER,
            "poll_interval_ms": _POLL_INTERVAL_S * 1000,
            "freshness_samples_per_s": _SAMPLES_PER_S,
            "load": "this process; services in their own",
        },
        "metrics": metrics,
        "baseline": baseline,
        "ratio": {"freshness_p50_over_kafka_round_trip_p50": round(ratio, 2)},
        "env": environment(),
        "started_at": began,
        "command": f"pz bench skeleton --rate {rate:g} --duration {duration_s:g}",
        "samples": {"freshness_ms": [round(v, 2) for v in sorted(run.freshness_ms)[:5000]]},
    }
    print_table(
        f"skeleton: {rate:g} events/s offered for {duration_s:g} s",
        [
            ("events/s achieved", f"{achieved:.0f}"),
            ("errors", str(run.errors)),
            ("freshness samples (missed)", f"{len(run.freshness_ms)} ({run.missed})"),
            ("freshness p50 ms", f"{metrics['freshness_p50_ms']:.1f}"),
            ("freshness p99 ms", f"{metrics['freshness_p99_ms']:.1f}"),
            ("freshness max ms", f"{metrics['freshness_max_ms']:.1f}"),
            ("collect p50 / p99 ms", f"{metrics['collect_p50_ms']:.1f} / {metrics['collect_p99_ms']:.1f}"),
            (
                "baseline kafka p50 / p99 ms",
                f"{baseline['kafka_round_trip_p50_ms']:.1f} / {baseline['kafka_round_trip_p99_ms']:.1f}",
            ),
            ("freshness p50 / baseline p50", f"{ratio:.2f}x"),
        ],
    )
    write_json(json_path, result)
    return 0 if run.freshness_ms else 1
