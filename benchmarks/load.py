"""Whole-system load scenarios, open loop against `pz up`-style processes, each with its same-run
baseline: `decide_load` (/pz/decide against a bare Starlette route), `proxy_load` (pages through the
injecting proxy against pass-through and the origin alone) and `collect` (beacons into Kafka)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.common import bench_stack, environment, print_table, started_at, write_json
from benchmarks.http_load import build_request
from benchmarks.sweep import LoadPoint, sweep
from edge_worker.config import DEV_COOKIE_SECRET
from edge_worker.identity import CookieSigner
from pz.processes import free_port, spawn, wait_for_http

P99_TARGET_MS = 50.0


def _cookies(count: int) -> list[str]:
    signer = CookieSigner(DEV_COOKIE_SECRET.encode())
    return [f"pz_uid={signer.cookie_value(f'load-{i}')}" for i in range(count)]


def _curve(points: Sequence[LoadPoint]) -> list[dict[str, Any]]:
    return [p.as_dict() for p in points]


def _result(
    name: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    baseline: dict[str, Any],
    ratio: dict[str, Any],
    curves: dict[str, Any],
    began: str,
) -> dict[str, Any]:
    return {
        "scenario": name,
        "params": {**params, "p99_target_ms": P99_TARGET_MS, "load": "open loop from this process"},
        "metrics": metrics,
        "baseline": baseline,
        "ratio": ratio,
        "curves": curves,
        "env": environment(),
        "started_at": began,
    }


def run_decide_load(quick: bool, json_path: Path | None) -> dict[str, Any]:
    began = started_at()
    rates = [250, 500, 1000, 2000] if quick else [250, 500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000]
    seconds = 2.0 if quick else 5.0
    with bench_stack(with_shop=False) as stack:
        port = free_port()
        bare = spawn(
            "bare", [sys.executable, "-m", "benchmarks.bare_app", str(port)], stack.options.state_dir / "logs"
        )
        try:
            bare_url = f"http://127.0.0.1:{port}"
            wait_for_http(bare, f"{bare_url}/bare")
            host = stack.edge_url.removeprefix("http://")
            # Mixed visitors: half returning (signed cookies), half new (no cookie: a cookie is minted).
            raws = [
                build_request(
                    "GET", host, "/pz/decide?slots=hero,recs&path=/", {"Cookie": c} if i % 2 else {}
                )
                for i, c in enumerate(_cookies(200))
            ]
            print("bare route:", flush=True)
            bare_points, bare_best = sweep(
                bare_url,
                [build_request("GET", bare_url.removeprefix("http://"), "/bare", {})],
                rates,
                seconds,
                P99_TARGET_MS,
            )
            print("/pz/decide:", flush=True)
            decide_points, decide_best = sweep(stack.edge_url, raws, rates, seconds, P99_TARGET_MS)
        finally:
            bare.stop()
    result = _result(
        "decide_load",
        {
            "rates": rates,
            "seconds_each": seconds,
            "slots": ["hero", "recs"],
            "visitors": "half new, half returning",
        },
        {"max_rate_within_p99_target": decide_best},
        {"bare_max_rate_within_p99_target": bare_best},
        {"decide_over_bare_max_rate": round(decide_best / bare_best, 3) if bare_best else None},
        {"decide": _curve(decide_points), "bare": _curve(bare_points)},
        began,
    )
    print_table(
        "decide_load",
        [("max rate, p99 ≤ 50 ms: /pz/decide", f"{decide_best:.0f}/s"), ("bare route", f"{bare_best:.0f}/s")],
    )
    write_json(json_path, result)
    return result


def run_proxy_load(quick: bool, json_path: Path | None) -> dict[str, Any]:
    began = started_at()
    rates = [100, 200, 400] if quick else [100, 200, 300, 400, 500, 600, 800, 1000]
    seconds = 2.0 if quick else 5.0
    path = "/category/books"
    with bench_stack(with_shop=True) as stack:

        def raws(url: str, accept: str) -> list[bytes]:
            host = url.removeprefix("http://")
            return [build_request("GET", host, path, {"Accept": accept, "Accept-Encoding": "identity"})]

        curves: dict[str, Any] = {}
        best: dict[str, float] = {}
        for name, url, accept in (
            ("origin", stack.shop_url, "text/html"),
            ("passthrough", stack.edge_url, "application/xhtml+xml"),  # not text/html: streamed untouched
            ("inject", stack.edge_url, "text/html"),
        ):
            print(f"{name}:", flush=True)
            points, best[name] = sweep(url, raws(url, accept), rates, seconds, P99_TARGET_MS)
            curves[name] = _curve(points)
    result = _result(
        "proxy_load",
        {"rates": rates, "seconds_each": seconds, "page": path},
        {"inject_max_rate_within_p99_target": best["inject"]},
        {
            "passthrough_max_rate_within_p99_target": best["passthrough"],
            "origin_max_rate_within_p99_target": best["origin"],
        },
        {
            "inject_over_passthrough_max_rate": round(best["inject"] / best["passthrough"], 3)
            if best["passthrough"]
            else None
        },
        curves,
        began,
    )
    print_table("proxy_load", [(f"max rate, p99 ≤ 50 ms: {k}", f"{v:.0f}/s") for k, v in best.items()])
    write_json(json_path, result)
    return result


def _produced(edge_url: str) -> float:
    text = httpx.get(f"{edge_url}/metrics", timeout=5).text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("pz_edge_events_produced_total")
    )


def run_collect(quick: bool, json_path: Path | None) -> dict[str, Any]:
    began = started_at()
    rates = [500, 1000, 2000] if quick else [500, 1000, 2000, 3000, 4000, 5000, 6000]
    seconds = 2.0 if quick else 5.0
    with bench_stack(with_shop=False) as stack:
        host = stack.edge_url.removeprefix("http://")
        cookies = _cookies(500)
        raws = []
        for i, cookie in enumerate(cookies):
            body = orjson.dumps(
                {
                    "type": "page_view",
                    "item": f"c{i % 97:03d}",
                    "category": "load",
                    "ts": int(time.time() * 1000),
                }
            )
            raws.append(
                build_request(
                    "POST", host, "/pz/collect", {"Content-Type": "application/json", "Cookie": cookie}, body
                )
            )
        before = _produced(stack.edge_url)
        started = time.perf_counter()
        points, best = sweep(stack.edge_url, raws, rates, seconds, P99_TARGET_MS, ok_status=202)
        accepted = sum(p.ok for p in points)
        deadline = time.perf_counter() + 30
        while _produced(stack.edge_url) - before < accepted and time.perf_counter() < deadline:
            time.sleep(0.2)  # the sink drains into Kafka after the answers
        produced = int(_produced(stack.edge_url) - before)
        elapsed = time.perf_counter() - started
    result = _result(
        "collect",
        {"rates": rates, "seconds_each": seconds},
        {"max_rate_within_p99_target": best, "accepted": accepted, "produced_to_kafka": produced},
        {},
        {"produced_over_accepted": round(produced / accepted, 4) if accepted else None},
        {"collect": _curve(points)},
        began,
    )
    result["metrics"]["overall_events_per_s"] = round(accepted / elapsed, 1)
    print_table(
        "collect",
        [
            ("max rate, p99 ≤ 50 ms", f"{best:.0f}/s"),
            ("accepted / produced to Kafka", f"{accepted} / {produced:.0f}"),
        ],
    )
    write_json(json_path, result)
    return result
