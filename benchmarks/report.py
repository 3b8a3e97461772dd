"""The benchmark report: RESULTS.md and its PNG plots, regenerated from the JSON of a results folder.

Each table row: the figure, its budget (from ../shared/DESIGN.md, or the issue that set it), the
same-run baseline and the ratio. Scenarios whose JSON is missing are listed as not run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    value: Callable[[dict[str, Any]], Any]
    unit: str = ""
    budget: str = "—"
    baseline: Callable[[dict[str, Any]], Any] | None = None
    ratio: Callable[[dict[str, Any]], Any] | None = None


def _m(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: r.get("metrics", {}).get(key)


def _b(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: r.get("baseline", {}).get(key)


def _r(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: r.get("ratio", {}).get(key)


def _freshness(rate: int) -> tuple[str, str, list[Row]]:
    return (
        f"freshness_{rate}",
        f"freshness at {rate} events/s — event accepted → the edge's decision reflects it",
        [
            Row("events/s achieved", _m("events_per_s"), "/s"),
            Row(
                "freshness p50",
                _m("freshness_p50_ms"),
                " ms",
                "—",
                _b("kafka_round_trip_p50_ms"),
                _r("freshness_p50_over_kafka_round_trip_p50"),
            ),
            Row(
                "freshness p99",
                _m("freshness_p99_ms"),
                " ms",
                "≤ 100 ms at 5 000 events/s",
                _b("kafka_round_trip_p99_ms"),
            ),
            Row("freshness max", _m("freshness_max_ms"), " ms"),
            Row("samples (missed)", lambda r: f"{_m('freshness_samples')(r)} ({_m('freshness_missed')(r)})"),
            Row("collect p99 (scheduled → 202)", _m("collect_p99_ms"), " ms"),
        ],
    )


_RECOVERY_ROWS = [
    Row(
        "restart → first committed batch, p50",
        _m("recovery_p50_s"),
        " s",
        "≤ 2 s",
        _b("group_member_restart_to_records_p50_s"),
        _r("recovery_over_group_rejoin"),
    ),
    Row("restart → first committed batch, max", _m("recovery_max_s"), " s", "≤ 5 s"),
    Row("kill -9s", _m("kills"), ""),
    Row(
        "events lost / duplicated",
        lambda r: f"{r['metrics']['lost_events']} / {r['metrics']['duplicated_events']}",
        "",
        "0 / 0",
    ),
    Row("edge profiles unlike a fresh snapshot", _m("edge_profiles_wrong"), "", "0"),
]

SECTIONS: list[tuple[str, str, list[Row]]] = [
    _freshness(1000),
    _freshness(5000),
    (
        "decide",
        "decide — a whole page decided by the rules (20 rules, 5 slots), in-process and over HTTP",
        [
            Row(
                "warm profile",
                _m("decision_warm_us"),
                " µs",
                "≤ 10 µs",
                _b("growthbook_eval_us"),
                _r("page_warm_over_growthbook_flag"),
            ),
            Row(
                "warm, against LaunchDarkly",
                _m("decision_warm_us"),
                " µs",
                "< one flag",
                _b("launchdarkly_eval_us"),
                _r("page_warm_over_launchdarkly_flag"),
            ),
            Row("cold profile", _m("decision_cold_us"), " µs", "≤ 50 µs"),
            Row(
                "/pz/decide closed loop",
                _m("decide_rps"),
                " req/s",
                "≥ 0.80× bare",
                _b("bare_rps"),
                _r("decide_over_bare"),
            ),
        ],
    ),
    (
        "decide_load",
        "decide_load — /pz/decide under open-loop load",
        [
            Row(
                "highest rate with p99 ≤ 50 ms",
                _m("max_rate_within_p99_target"),
                "/s",
                "—",
                _b("bare_max_rate_within_p99_target"),
                _r("decide_over_bare_max_rate"),
            ),
        ],
    ),
    (
        "proxy",
        "proxy — streaming HTML injection engine and proxy",
        [
            Row(
                "injection engine",
                _m("inject_mb_per_s"),
                " MB/s",
                "≥ lol_html",
                _b("lolhtml_mb_per_s"),
                _r("pz_over_lolhtml"),
            ),
            Row(
                "injection engine vs selectolax",
                _m("inject_mb_per_s"),
                " MB/s",
                "≥ 10× selectolax",
                _b("selectolax_mb_per_s"),
                _r("pz_over_selectolax"),
            ),
            Row(
                "injecting proxy vs nginx proxy_pass",
                _m("proxy_rps"),
                " req/s",
                "≥ 0.5× nginx",
                _b("nginx_proxy_rps"),
                _r("proxy_vs_nginx"),
            ),
            Row(
                "pass-through vs nginx proxy_pass",
                _m("passthrough_rps"),
                " req/s",
                "≥ 0.5× nginx",
                _b("nginx_proxy_rps"),
                _r("passthrough_vs_nginx"),
            ),
            Row(
                "injecting vs pass-through",
                _m("proxy_rps"),
                " req/s",
                "≥ 0.80× pass-through",
                _m("passthrough_rps"),
                _r("proxy_over_passthrough"),
            ),
            Row(
                "first byte p50, injecting (baseline: nginx)",
                _m("proxy_ttfb_p50_ms"),
                " ms",
                "—",
                _m("nginx_ttfb_p50_ms"),
            ),
        ],
    ),
    (
        "proxy_load",
        "proxy_load — pages through the edge under open-loop load",
        [
            Row(
                "injecting: highest rate with p99 ≤ 50 ms",
                _m("inject_max_rate_within_p99_target"),
                "/s",
                "≥ 0.80× pass-through",
                _b("passthrough_max_rate_within_p99_target"),
                _r("inject_over_passthrough_max_rate"),
            ),
            Row("origin alone", _b("origin_max_rate_within_p99_target"), "/s"),
        ],
    ),
    (
        "collect",
        "collect — beacons into Kafka",
        [
            Row("highest rate with p99 ≤ 50 ms", _m("max_rate_within_p99_target"), "/s"),
            Row(
                "accepted → produced to Kafka",
                lambda r: f"{_fmt(_m('accepted')(r))} → {_fmt(_m('produced_to_kafka')(r))}",
                "",
                "nothing lost",
                None,
                _r("produced_over_accepted"),
            ),
        ],
    ),
    (
        "aggregator",
        "aggregator — windows, Redis state and deltas for pre-produced events, one process",
        [
            Row(
                "events/s, effect committed in Redis",
                _m("events_per_s"),
                "/s",
                "≥ 50 000/s",
                _b("raw_consume_per_s"),
                _r("pipeline_over_raw_consume"),
            ),
            Row("Redis memory per user (whole instance)", _m("state_bytes_per_user"), " B"),
            Row("recovery after kill -9: restart → commits again", _m("recovery_s"), " s"),
            Row(
                "event → delta p50 / p99 (live rate in params)",
                lambda r: f"{_fmt(_m('event_to_delta_p50_ms')(r))} / {_fmt(_m('event_to_delta_p99_ms')(r))}",
                " ms",
            ),
        ],
    ),
    (
        "recovery",
        "recovery — kill -9 of one aggregator under load (baseline: a consumer-group member restarted)",
        _RECOVERY_ROWS,
    ),
    (
        "recovery_2",
        "recovery — kill -9 of one of two aggregators in turn, under load",
        _RECOVERY_ROWS,
    ),
    (
        "snapshot",
        "snapshot — build, size, load and lookups",
        [
            Row("users", _m("users")),
            Row("build", _m("build_s"), " s", "≤ 10 s (1 M users)"),
            Row("size", _m("bytes_per_user"), " B/user", "≤ 48 B/user", _b("json_bytes_per_user")),
            Row("edge load", _m("load_ms"), " ms", "≤ 100 ms", _b("json_load_ms"), _r("load_vs_json")),
            Row(
                "cold lookup",
                _m("lookup_cold_us"),
                " µs",
                "≤ 5 µs",
                _b("dict_lookup_us"),
                _r("cold_lookup_vs_dict"),
            ),
        ],
    ),
    (
        "recs",
        "recs — the item model's next-item prediction on a generated clickstream (held-out sessions)",
        [
            Row(
                "hit-rate@10",
                _m("item_model_hit_rate_at_10"),
                "",
                "> popularity",
                _b("popularity_hit_rate_at_10"),
                _r("hit_rate_vs_popularity"),
            ),
            Row(
                "NDCG@10",
                _m("item_model_ndcg_at_10"),
                "",
                "> popularity",
                _b("popularity_ndcg_at_10"),
                _r("ndcg_vs_popularity"),
            ),
            Row(
                "hit-rate@10 against the popular items of the last item's category",
                _m("item_model_hit_rate_at_10"),
                "",
                "—",
                _m("category_popularity_hit_rate_at_10"),
                _r("hit_rate_vs_category_popularity"),
            ),
        ],
    ),
    (
        "sync",
        "sync — delta batch published → visible at an edge",
        [
            Row(
                "over Kafka p50 / p99",
                lambda r: f"{_fmt(_b('kafka_p50_ms')(r))} / {_fmt(_b('kafka_p99_ms')(r))}",
                " ms",
            ),
            Row(
                "over HTTP p50 / p99",
                lambda r: f"{_fmt(_m('http_p50_ms')(r))} / {_fmt(_m('http_p99_ms')(r))}",
                " ms",
                "—",
                None,
                _r("http_p50_over_kafka_p50"),
            ),
        ],
    ),
]


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if 0 < abs(value) < 0.01:
            return f"{value:.2g}{unit}"
        text = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        return text.replace(",", " ") + unit
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ") + unit
    return f"{value}{unit}"


def _plot_curves(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in result.get("curves", {}).items():
        offered = [p["offered_per_s"] for p in points]
        line = ax.plot(offered, [p["p50_ms"] for p in points], marker="o", label=f"{name} p50")[0]
        ax.plot(
            offered,
            [p["p99_ms"] for p in points],
            marker="^",
            linestyle="--",
            color=line.get_color(),
            label=f"{name} p99",
        )
    ax.set_xlabel("offered load (requests/s)")
    ax.set_ylabel("latency (ms), from scheduled send")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_freshness(results: dict[str, dict[str, Any]], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for result in results.values():
        samples = sorted(result.get("samples", {}).get("freshness_ms", []))
        if not samples:
            continue
        drawn = True
        share = [(i + 1) / len(samples) for i in range(len(samples))]
        ax.plot(samples, share, label=f"{result['params']['rate_per_s']:g} events/s ({len(samples)} samples)")
    if not drawn:
        plt.close(fig)
        return False
    ax.axvline(100, color="grey", linestyle=":", label="budget: p99 ≤ 100 ms")
    ax.set_xlabel("event accepted → decision reflects it (ms)")
    ax.set_ylabel("share of samples")
    ax.set_title("freshness distribution")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return dict(orjson.loads(path.read_bytes())) if path.exists() else None


def write_report(folder: Path, out: Path, title: str = "Benchmark results") -> Path:
    results = {name: r for name, _, _ in SECTIONS if (r := _load(folder, name)) is not None}
    env: dict[str, Any] = next((r["env"] for r in results.values() if "env" in r), {})
    when = max((r.get("started_at", "") for r in results.values()), default="")
    lines = [
        f"# {title}",
        "",
        f"Machine: {env.get('cpu_count', '?')} cores, Python {env.get('python', '?')}, "
        f"{env.get('platform', '?')}; "
        f"latest run {when[:19].replace('T', ' ')} UTC, commit {env.get('git_commit', '?')}. "
        "Generated by `pz bench all` from the JSON beside it; every figure has its same-run baseline. "
        "How the figures got here, and what was tried: "
        f"[HISTORY.md]({os.path.relpath(Path(__file__).resolve().parent / 'HISTORY.md', out.parent)}).",
        "",
    ]
    for name, heading, rows in SECTIONS:
        lines += [f"## {heading}", ""]
        result = results.get(name)
        if result is None:
            lines += ["Not run in this report.", ""]
            continue
        lines += ["| figure | result | budget | baseline (same run) | ratio |", "|---|---|---|---|---|"]
        for row in rows:
            base = _fmt(row.baseline(result), row.unit) if row.baseline else "—"
            ratio = _fmt(row.ratio(result), "×") if row.ratio else "—"
            lines.append(
                f"| {row.label} | {_fmt(row.value(result), row.unit)} | {row.budget} | {base} | {ratio} |"
            )
        lines.append("")
        if result.get("curves"):
            png = folder / f"{name}.png"
            _plot_curves(result, png, heading.split(" — ")[0])
            lines += [f"![{name}: latency against offered load]({os.path.relpath(png, out.parent)})", ""]
        lines += [f"`{result.get('command', f'pz bench {name}')}` · `{name}.json`", ""]
    freshness = {n: r for n, r in results.items() if n.startswith("freshness_")}
    if freshness and _plot_freshness(freshness, folder / "freshness.png"):
        link = os.path.relpath(folder / "freshness.png", out.parent)
        lines += ["## freshness distribution", "", f"![freshness distribution]({link})", ""]
    out.write_text("\n".join(lines) + "\n")
    return out
