"""`pz bench decide`: the decision in-process (warm and cold profiles) and `/pz/decide` over HTTP.

In-process: a snapshot of 100 000 users and a realistic rule set (rules/examples/fashion_store.yaml:
20 rules over 5 slots), a whole page per decision, through the edge's ProfileStore, request context
and compiled rules; warm means the decoded profile is cached, cold that it is unpacked from the
snapshot. Same run: one flag evaluation with equivalent targeting in the GrowthBook and
LaunchDarkly Python SDKs. Over HTTP:
closed-loop requests/s of `/pz/decide?slots=hero,recs` for known users against a bare Starlette
JSON route of the same size in its own uvicorn process, both measured in this run.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import environment, latency_summary, print_table, started_at, write_json
from benchmarks.flag_sdks import growthbook_eval_us, launchdarkly_eval_us
from benchmarks.http_load import LoadClient, build_request
from benchmarks.snapshot import synthetic_users
from edge_worker.config import DEV_COOKIE_SECRET
from edge_worker.identity import CookieSigner
from edge_worker.profile_store import ProfileStore
from edge_worker.request_context import ContextReader, ContextSettings
from pz.local_stack import LocalStack, StackOptions
from pz.processes import free_port, spawn, wait_for_http
from schemas import PartitionPosition, SnapshotContent, SnapshotReader, encode_snapshot
from schemas.profiles import ItemHistory, Profile
from schemas.rules import load_rules_text
from schemas.rules.compiler import compile_rules
from schemas.rules.features import Facts

RULES_FILE = Path(__file__).resolve().parent.parent / "rules" / "examples" / "fashion_store.yaml"
HEADER_SETS = [
    {"cf-ipcountry": "DE", "sec-ch-ua-mobile": "?0", "user-agent": "Mozilla/5.0 (X11; Linux x86_64)"},
    {"cf-ipcountry": "US", "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile"},
    {"cf-ipcountry": "CH", "sec-ch-ua-mobile": "?1"},
    {"user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},
]
PAGES = ["/", "/category/shoes?utm_source=news&utm_medium=social", "/sale/summer", "/product/p00042"]


def _shoppers(count: int, now_s: int) -> list[Profile]:
    """The snapshot benchmark's users, a third of them with a cart and some with a purchase."""
    rng = random.Random(11)  # noqa: S311 - reproducible data
    shoppers = []
    for profile in synthetic_users(count, now_s):
        extra: list[ItemHistory] = []
        if rng.random() < 0.33:
            viewed = profile.items[0]
            extra.append(ItemHistory(viewed.item, viewed.category, (now_s - rng.randrange(7200),), "cart"))
        if rng.random() < 0.1:
            extra.append(ItemHistory("p00007", "c07", (now_s - rng.randrange(86_400),), "purchase"))
        shoppers.append(Profile(profile.key, (*extra, *profile.items), profile.segments, profile.updated_ms))
    return shoppers


def _in_process(users: int) -> dict[str, Any]:
    """Whole-page decisions (5 slots, 20 rules, 6 segments, an experiment, recommendations): the
    request context read from headers, the profile looked up, every slot decided."""
    now_s = int(time.time())
    profiles = _shoppers(users, now_s)
    popular = [f"p{i:05d}" for i in range(50)]
    by_category = {f"c{c:02d}": [f"p{i:05d}" for i in range(c, 2000, 40)] for c in range(40)}
    by_category["shoes"] = popular[:24]
    reader = SnapshotReader(
        encode_snapshot(
            SnapshotContent("b", now_s * 1000, {0: PartitionPosition(0, -1)}, popular, by_category, profiles)
        )
    )
    program = compile_rules(load_rules_text(RULES_FILE.read_text()))
    slots = list(program.slots)
    contexts = ContextReader(ContextSettings())
    keys = [p.key for p in random.Random(3).sample(profiles, 20_000)]  # noqa: S311
    rule_counts = sum(len(s.rules) for s in program.rules.slots.values())

    def run(store: ProfileStore, sample: list[int]) -> float:
        started = time.perf_counter()
        for i, key in enumerate(sample):
            context = contexts.read(program.context_names, HEADER_SETS[i & 3], PAGES[i & 3], "", now_s)
            program.decide(Facts(store.get(key), context, now_s, key), reader, slots)
        return (time.perf_counter() - started) / len(sample) * 1e6

    warm_store = ProfileStore(10_000)
    warm_store.install_snapshot(reader)
    hot = keys[:1000]
    run(warm_store, hot)
    warm = statistics.median(run(warm_store, hot) for _ in range(5))
    cold = []
    for _ in range(5):
        cold_store = ProfileStore(10)  # too small to help: every lookup unpacks
        cold_store.install_snapshot(reader)
        cold.append(run(cold_store, keys))
    return {
        "decision_warm_us": round(warm, 2),
        "decision_cold_us": round(statistics.median(cold), 2),
        "rule_set": {"slots": len(slots), "rules": rule_counts, "segments": len(program.segments)},
    }


async def _closed_loop(url: str, raws: list[bytes], seconds: float) -> tuple[float, list[float]]:
    client = LoadClient(url, connections=16)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        n = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            result = await client.submit(raws[n % len(raws)])
            n += 16
            if result.status == 200:
                latencies.append((result.finished - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(16)))
    elapsed = time.perf_counter() - started
    await client.aclose()
    return len(latencies) / elapsed, latencies


def run_decide(quick: bool, json_path: Path | None) -> int:
    began = started_at()
    in_process = _in_process(20_000 if quick else 100_000)
    sdk_rounds = 5_000 if quick else 40_000
    growthbook_us, growthbook_version = growthbook_eval_us(sdk_rounds)
    launchdarkly_us, launchdarkly_version = launchdarkly_eval_us(sdk_rounds)
    seconds = 3.0 if quick else 10.0
    with tempfile.TemporaryDirectory(prefix="pz-bench-decide-") as state:
        stack = LocalStack(
            StackOptions(edge_port=0, aggregator_port=0, with_shop=False, state_dir=Path(state))
        )
        print("starting the stack…", flush=True)
        stack.up()
        port = free_port()
        bare = spawn("bare", [sys.executable, "-m", "benchmarks.bare_app", str(port)], Path(state) / "logs")
        try:
            bare_url = f"http://127.0.0.1:{port}"
            wait_for_http(bare, f"{bare_url}/bare")
            host = stack.edge_url.removeprefix("http://")
            signer = CookieSigner(DEV_COOKIE_SECRET.encode())
            cookies = [
                f"pz_uid={signer.cookie_value(f'visitor-{i}')}" for i in range(200)
            ]  # returning visitors
            decide_raws = [
                build_request("GET", host, "/pz/decide?slots=hero,recs&path=/", {"Cookie": c})
                for c in cookies
            ]
            bare_raws = [build_request("GET", bare_url.removeprefix("http://"), "/bare", {})]
            rounds: dict[str, list[float]] = {"decide": [], "bare": []}
            latencies: dict[str, list[float]] = {"decide": [], "bare": []}
            for _ in range(2):  # interleaved, so that drift in the machine's load hits both alike
                for name, url, raws in (
                    ("bare", bare_url, bare_raws),
                    ("decide", stack.edge_url, decide_raws),
                ):
                    rps, ms = asyncio.run(_closed_loop(url, raws, seconds / 2))
                    rounds[name].append(rps)
                    latencies[name].extend(ms)
        finally:
            bare.stop()
            stack.down()
    decide_rps = statistics.mean(rounds["decide"])
    bare_rps = statistics.mean(rounds["bare"])
    rule_set = in_process.pop("rule_set")
    metrics: dict[str, Any] = {
        **in_process,
        "decide_rps": round(decide_rps, 1),
        **{f"decide_{k}": round(v, 2) for k, v in latency_summary(latencies["decide"], "latency").items()},
    }
    baseline = {
        "growthbook_eval_us": round(growthbook_us, 2),
        "launchdarkly_eval_us": round(launchdarkly_us, 2),
        "bare_rps": round(bare_rps, 1),
        **{f"bare_{k}": round(v, 2) for k, v in latency_summary(latencies["bare"], "latency").items()},
    }
    result = {
        "scenario": "decide",
        "params": {
            "in_process_rules": (
                f"{RULES_FILE.name}: {rule_set['rules']} rules over {rule_set['slots']} slots, "
                f"{rule_set['segments']} segments, an experiment, recommendations"
            ),
            "http_slots": ["hero", "recs"],
            "growthbook": growthbook_version,
            "launchdarkly_server_sdk": launchdarkly_version,
            "quick": quick,
            "connections": 16,
            "seconds_each": seconds,
            "server": "uvicorn, one worker, both apps",
            "load": "this process",
        },
        "metrics": metrics,
        "baseline": baseline,
        "ratio": {
            "decide_over_bare": round(decide_rps / bare_rps, 3),
            "page_warm_over_growthbook_flag": round(in_process["decision_warm_us"] / growthbook_us, 3),
            "page_warm_over_launchdarkly_flag": round(in_process["decision_warm_us"] / launchdarkly_us, 3),
        },
        "env": environment(),
        "started_at": began,
        "budget": {"decision_warm_us": 10, "decision_cold_us": 50, "decide_over_bare": 0.8},
    }
    print_table(
        "decide",
        [
            ("decision warm us (budget 10)", f"{in_process['decision_warm_us']}"),
            ("decision cold us (budget 50)", f"{in_process['decision_cold_us']}"),
            (f"GrowthBook {growthbook_version}: one flag, us", f"{growthbook_us:.2f}"),
            (f"LaunchDarkly {launchdarkly_version}: one flag, us", f"{launchdarkly_us:.2f}"),
            ("/pz/decide req/s", f"{decide_rps:.0f}"),
            ("bare Starlette route req/s", f"{bare_rps:.0f}"),
            ("decide / bare (budget 0.8)", f"{decide_rps / bare_rps:.2f}x"),
        ],
    )
    write_json(json_path, result)
    return 0
