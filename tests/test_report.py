"""The benchmark report is generated from the JSON of a results folder: tables with budgets and
baselines, and plots for the load curves and the freshness distribution."""

from __future__ import annotations

from pathlib import Path

import orjson

from benchmarks.report import write_report


def _curve(offered: list[float], p99: list[float]) -> list[dict[str, float]]:
    return [
        {
            "offered_per_s": o,
            "achieved_per_s": o,
            "ok": 10,
            "errors": 0,
            "p50_ms": p / 2,
            "p90_ms": p,
            "p99_ms": p,
            "p999_ms": p,
            "max_ms": p,
        }
        for o, p in zip(offered, p99, strict=True)
    ]


def test_a_report_has_tables_plots_and_says_what_was_not_run(tmp_path: Path) -> None:
    (tmp_path / "decide_load.json").write_bytes(
        orjson.dumps(
            {
                "metrics": {"max_rate_within_p99_target": 3000},
                "baseline": {"bare_max_rate_within_p99_target": 4000},
                "ratio": {"decide_over_bare_max_rate": 0.75},
                "curves": {
                    "decide": _curve([1000, 3000], [2.0, 9.0]),
                    "bare": _curve([1000, 3000], [1.5, 3.0]),
                },
                "env": {"cpu_count": 2, "python": "3.11", "platform": "linux", "git_commit": "abc"},
                "started_at": "2026-11-26T10:00:00",
            }
        )
    )
    (tmp_path / "freshness_1000.json").write_bytes(
        orjson.dumps(
            {
                "params": {"rate_per_s": 1000},
                "metrics": {"events_per_s": 1000.0, "freshness_p50_ms": 20.0, "freshness_p99_ms": 40.0},
                "baseline": {"kafka_round_trip_p50_ms": 3.0},
                "ratio": {"freshness_p50_over_kafka_round_trip_p50": 6.67},
                "samples": {"freshness_ms": [10.0, 20.0, 40.0]},
            }
        )
    )
    report = write_report(tmp_path, tmp_path / "RESULTS.md")
    text = report.read_text()
    assert "| highest rate with p99 ≤ 50 ms | 3 000/s | — | 4 000/s | 0.75× |" in text
    assert "| freshness p50 | 20.00 ms | — | 3.00 ms | 6.67× |" in text
    assert "![decide_load: latency against offered load](decide_load.png)" in text
    assert (tmp_path / "decide_load.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "freshness.png").exists() and "freshness.png" in text
    assert text.count("Not run in this report.") >= 6  # decide, proxy, recs, … were not in the folder
    assert "## recs — the item model's next-item prediction" in text
