"""`pz bench all [--quick]`: every scenario, one after the other, then the report.

Full: JSON and plots in benchmarks/results/, the report in benchmarks/RESULTS.md. Quick (a smoke
run of a few minutes, shorter runs and fewer rates): everything in benchmarks/quick/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.aggregator import run_aggregator
from benchmarks.decide import run_decide
from benchmarks.load import run_collect, run_decide_load, run_proxy_load
from benchmarks.proxy import run_proxy
from benchmarks.recovery import run_recovery
from benchmarks.recs import run_recs
from benchmarks.report import write_report
from benchmarks.skeleton import run_skeleton
from benchmarks.snapshot import run_snapshot
from benchmarks.sync import run_sync

HERE = Path(__file__).resolve().parent


def rewrite_report() -> Path:
    """RESULTS.md again from the JSON in benchmarks/results/, without running anything."""
    return write_report(HERE / "results", HERE / "RESULTS.md")


def run_all(quick: bool, out: Path | None = None) -> int:
    folder = out or (HERE / ("quick" if quick else "results"))
    report = folder / "RESULTS.md" if (quick or out) else HERE / "RESULTS.md"
    scenarios: list[tuple[str, Callable[[Path], object]]] = [
        ("freshness_1000", lambda p: run_skeleton(1000.0, 4.0 if quick else 20.0, False, p)),
        *([] if quick else [("freshness_5000", lambda p: run_skeleton(5000.0, 20.0, False, p))]),
        ("decide", lambda p: run_decide(quick, p)),
        ("decide_load", lambda p: run_decide_load(quick, p)),
        ("proxy", lambda p: run_proxy(quick, p)),
        ("proxy_load", lambda p: run_proxy_load(quick, p)),
        ("collect", lambda p: run_collect(quick, p)),
        ("aggregator", lambda p: run_aggregator(500_000, quick, p)),
        ("recovery", lambda p: run_recovery(20, 1, quick, p)),
        ("recovery_2", lambda p: run_recovery(10, 2, quick, p)),
        ("snapshot", lambda p: run_snapshot(1_000_000, quick, p)),
        ("recs", lambda p: run_recs(20_000, quick, p)),
        ("sync", lambda p: run_sync(5000.0, 20.0, quick, p)),
    ]
    failed = []
    started = time.perf_counter()
    for name, run in scenarios:
        print(f"\n=== {name} ===", flush=True)
        began = time.perf_counter()
        try:
            run(folder / f"{name}.json")
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not cost the others their report
            failed.append(name)
            print(f"{name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"({name}: {time.perf_counter() - began:.0f} s)", flush=True)
    write_report(folder, report, "Benchmark results (quick run)" if quick else "Benchmark results")
    print(f"\nreport: {report} ({time.perf_counter() - started:.0f} s in all)")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0
