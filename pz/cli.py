"""The `pz` command: `pz up` runs the local stack; `pz edge` one edge; `pz bench SCENARIO` measures it."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from pz.arguments import positive_float as _positive_float
from pz.arguments import positive_int as _positive_int
from pz.edge_cli import add_edge, run_edge
from pz.fleet_cli import add_fleet, run_fleet
from pz.processes import StackError
from pz.rules_cli import add_rules, run_rules
from pz.up_cli import add_up, run_up
from schemas.settings import ConfigError


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser(
        "bench",
        help="run a benchmark scenario",
        description="Run a benchmark scenario; prints a table, and JSON with --json.",
    )
    bench.add_argument(
        "scenario",
        choices=[
            "all",
            "report",
            "aggregator",
            "recovery",
            "recs",
            "skeleton",
            "snapshot",
            "sync",
            "proxy",
            "decide",
            "decide_load",
            "proxy_load",
            "collect",
        ],
        help="skeleton: event -> edge decision freshness; recs: the item model's next-item hit-rate and "
        "NDCG against popularity; snapshot: build, size, load, lookups; "
        "sync: delta publication -> edge, Kafka and HTTP; proxy: HTML injection engine and proxy; "
        "recovery: kill -9 of aggregators under load, restart -> first commit, lost/duplicated events; "
        "decide: the decision in-process and /pz/decide against a bare route; decide_load, proxy_load, "
        "collect: open-loop rate sweeps; all: every scenario, then benchmarks/RESULTS.md with plots "
        "(--quick: into benchmarks/quick/); report: RESULTS.md again from benchmarks/results/*.json",
    )
    bench.add_argument("--json", type=Path, dest="json_path", help="write the result as JSON to this path")
    bench.add_argument("--quick", action="store_true", help="a short smoke run (well under a minute)")
    bench.add_argument(
        "--rate",
        type=_positive_float,
        default=None,
        help="skeleton: events/s (default 300); sync: user updates/s (default 5000)",
    )
    bench.add_argument("--duration", type=_positive_float, default=20.0, help="seconds of load (default 20)")
    bench.add_argument(
        "--users",
        type=_positive_int,
        default=None,
        help="snapshot: users (default 1 000 000); recs: users of the generated shop (default 20 000)",
    )
    bench.add_argument(
        "--events", type=_positive_int, default=500_000, help="aggregator: events (default 500 000)"
    )
    bench.add_argument(
        "--kills", type=_positive_int, default=20, help="recovery: kill -9s of an aggregator (default 20)"
    )
    bench.add_argument(
        "--members",
        type=int,
        choices=[1, 2],
        default=1,
        help="recovery: aggregator processes in the group, one killed at a time (default 1)",
    )


def _add_snapshot(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    snapshot = sub.add_parser(
        "snapshot",
        help="look inside a snapshot file",
        description="Look inside a snapshot file (the signing key comes from "
        "PZ_SIGNING_KEY_ID / PZ_SIGNING_SECRET).",
    )
    tools = snapshot.add_subparsers(dest="tool", required=True)
    inspect = tools.add_parser("inspect", help="header, counts, sizes and signature status")
    inspect.add_argument("file", type=Path)
    user = tools.add_parser("user", help="one user's profile")
    user.add_argument("file", type=Path)
    user.add_argument(
        "uid", help="the raw id from the pz_uid cookie (hashed with PZ_COOKIE_SECRET), or key:NUMBER"
    )


def _add_keys(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser(
        "keys",
        help="make signing keys",
        description="Make an Ed25519 key pair for snapshots and deltas: the private key "
        "goes to the aggregators, the public key to the edges.",
    )
    keys.add_argument("alg", choices=["ed25519"])
    keys.add_argument("--key-id", default="k1", help="the key id carried by every envelope (default k1)")


def run_keys(args: argparse.Namespace) -> int:
    import base64

    from schemas.signing import generate_ed25519

    def encode(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    pair = generate_ed25519(args.key_id)
    print("# both sides")
    print("PZ_SIGNING_ALG=ed25519")
    print(f"PZ_SIGNING_KEY_ID={args.key_id}")
    print("# aggregators only: keep it secret")
    print(f"PZ_SIGNING_PRIVATE_KEY={encode(pair.private_key)}")
    print("# edges")
    print(f"PZ_SIGNING_PUBLIC_KEY={encode(pair.public().public_key)}")
    return 0


def run_snapshot_tool(args: argparse.Namespace) -> int:
    from pz.snapshot_tools import SnapshotToolError, dumps, find_user, inspect_snapshot

    try:
        result = inspect_snapshot(args.file) if args.tool == "inspect" else find_user(args.file, args.uid)
    except SnapshotToolError as exc:
        print(f"pz snapshot {args.tool}: {exc}", file=sys.stderr)
        return 1
    print(dumps(result))
    return 0 if args.tool == "inspect" or result["found"] else 3


def run_bench(args: argparse.Namespace) -> int:
    if args.scenario == "all":
        from benchmarks.all import run_all

        return run_all(quick=args.quick)
    if args.scenario == "aggregator":
        from benchmarks.aggregator import run_aggregator

        return run_aggregator(events=args.events, quick=args.quick, json_path=args.json_path)
    if args.scenario == "recovery":
        from benchmarks.recovery import run_recovery

        return run_recovery(
            kills=args.kills, members=args.members, quick=args.quick, json_path=args.json_path
        )
    if args.scenario == "report":
        from benchmarks.all import rewrite_report

        print(f"wrote {rewrite_report()}")
        return 0
    if args.scenario in ("decide_load", "proxy_load", "collect"):
        from benchmarks import load

        runner = {
            "decide_load": load.run_decide_load,
            "proxy_load": load.run_proxy_load,
            "collect": load.run_collect,
        }
        runner[args.scenario](quick=args.quick, json_path=args.json_path)
        return 0
    if args.scenario == "decide":
        from benchmarks.decide import run_decide

        return run_decide(quick=args.quick, json_path=args.json_path)
    if args.scenario == "proxy":
        from benchmarks.proxy import run_proxy

        return run_proxy(quick=args.quick, json_path=args.json_path)
    if args.scenario == "sync":
        from benchmarks.sync import run_sync

        return run_sync(
            updates_per_s=args.rate or 5000.0,
            duration_s=args.duration,
            quick=args.quick,
            json_path=args.json_path,
        )
    if args.scenario == "snapshot":
        from benchmarks.snapshot import run_snapshot

        return run_snapshot(users=args.users or 1_000_000, quick=args.quick, json_path=args.json_path)
    if args.scenario == "recs":
        from benchmarks.recs import run_recs

        return run_recs(users=args.users or 20_000, quick=args.quick, json_path=args.json_path)
    from benchmarks.skeleton import run_skeleton

    return run_skeleton(
        rate=args.rate or 300.0, duration_s=args.duration, quick=args.quick, json_path=args.json_path
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pz", description="pz: real-time personalization at the edge.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_up(sub)
    _add_bench(sub)
    _add_snapshot(sub)
    _add_keys(sub)
    add_fleet(sub)
    add_rules(sub)
    add_edge(sub)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so that whatever a command started is stopped by its `finally`.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        if args.command == "up":
            return run_up(args)
        if args.command == "snapshot":
            return run_snapshot_tool(args)
        if args.command == "keys":
            return run_keys(args)
        if args.command == "fleet":
            return run_fleet(args)
        if args.command == "rules":
            return run_rules(args)
        if args.command == "edge":
            return run_edge(args)
        return run_bench(args)
    except (StackError, ConfigError) as exc:
        print(f"pz {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
