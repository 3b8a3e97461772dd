"""The `pz` command: `pz up` runs the local stack; `pz edge` one edge; `pz bench SCENARIO` measures it."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import urllib.parse
from pathlib import Path
from types import FrameType

from pz.arguments import port_number as _port
from pz.arguments import positive_float as _positive_float
from pz.arguments import positive_int as _positive_int
from pz.demo_shop.catalog import write_inventory
from pz.edge_cli import add_edge, run_edge
from pz.fleet_cli import add_fleet, run_fleet
from pz.local_stack import LocalStack, demo_rules_file, stack_options_from_env
from pz.processes import StackError
from pz.rules_cli import add_rules, run_rules
from pz.supervisor import Supervisor
from schemas.rules import RulesInvalid, load_rules_text
from schemas.settings import ConfigError


def _add_up(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser(
        "up",
        help="run the whole system locally",
        description=(
            "Start, on loopback, a Kafka-protocol broker (tansu) and a Redis server (valkey) on free ports "
            "unless PZ_KAFKA_BOOTSTRAP / PZ_REDIS_URL point at running ones; create the topics; start the "
            "aggregator, an edge worker and the demo shop behind it. Prints the URLs; Ctrl-C or SIGTERM "
            "stops exactly what was started."
        ),
    )
    up.add_argument(
        "--edge-port", type=_port, default=8080, help="edge worker port (default 8080; 0 = any free)"
    )
    up.add_argument(
        "--shop-port", type=_port, default=8081, help="demo shop (origin) port (default 8081; 0 = any)"
    )
    up.add_argument(
        "--aggregator-port",
        type=_port,
        default=8090,
        help="aggregator HTTP port (default 8090; 0 = any free)",
    )
    up.add_argument("--partitions", type=_positive_int, default=4, help="partitions per topic (default 4)")
    up.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".pz"),
        help="where logs, snapshots and service state go (default ./.pz)",
    )
    up.add_argument(
        "--snapshot-interval",
        type=_positive_float,
        default=5.0,
        help="seconds between snapshot builds (default 5)",
    )
    up.add_argument(
        "--rules",
        type=Path,
        default=None,
        help="the rules file the aggregator publishes (default: the demo shop's, pz/demo_shop/rules.yaml); "
        "edit it while pz runs and the change reaches the edge within seconds",
    )
    up.add_argument(
        "--origin",
        type=_origin_url,
        default=os.environ.get("PZ_ORIGIN_URL") or None,
        help="front this site instead of the demo shop (an http:// or https:// URL, e.g. "
        "http://127.0.0.1:3000; default: PZ_ORIGIN_URL if set): its pages go through the edge, "
        "placeholders filled",
    )
    up.add_argument(
        "--country",
        type=_country_code,
        default="DE",
        help="the country of visitors when no CDN header says it (default DE: the demo's DACH banner)",
    )


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


def _origin_url(text: str) -> str:
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r}: an http:// or https:// URL with a host, e.g. http://127.0.0.1:3000"
        )
    if parsed.query or parsed.fragment:
        raise argparse.ArgumentTypeError(f"{text!r}: the site's base URL, without a query or fragment")
    return text.rstrip("/")


def _origin_host_env(origin: str | None) -> dict[str, str]:
    """A site off this machine is asked for by its own name: the browser's Host here is the local
    edge's (127.0.0.1:8080), which a name-based virtual host or a CDN would not know. PZ_ORIGIN_HOST
    set by hand wins."""
    if origin is None or os.environ.get("PZ_ORIGIN_HOST"):
        return {}
    parts = urllib.parse.urlsplit(origin)
    host = parts.hostname or ""
    if host in ("localhost", "::1") or host.startswith("127."):
        return {}
    return {"PZ_ORIGIN_HOST": parts.netloc}


def _country_code(text: str) -> str:
    if len(text) != 2 or not text.isascii() or not text.isalpha():
        raise argparse.ArgumentTypeError(f"{text!r} is not a two-letter country code such as DE")
    return text.upper()


def run_up(args: argparse.Namespace) -> int:
    rules = args.rules or demo_rules_file()
    try:
        load_rules_text(rules.read_text())
    except OSError as exc:
        print(f"pz up: --rules {rules}: {exc.strerror}", file=sys.stderr)
        return 1
    except RulesInvalid as exc:
        print(f"pz up: --rules {rules} is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {rules}:{problem}", file=sys.stderr)
        return 1
    options = stack_options_from_env(
        edge_port=args.edge_port,
        shop_port=args.shop_port,
        aggregator_port=args.aggregator_port,
        partitions=args.partitions,
        state_dir=args.state_dir,
        snapshot_interval_s=args.snapshot_interval,
        rules_file=rules.resolve(),
        default_country=args.country,
        with_shop=args.origin is None,
        origin_url=args.origin,
        extra_env=_origin_host_env(args.origin),
        # the demo shop's sold-out list; a fronted site is not the demo's
        inventory_file=None if args.origin else write_inventory(args.state_dir.resolve() / "inventory.json"),
    )
    stack = LocalStack(options)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    say("pz: starting the local stack…")
    try:
        try:
            stack.up()
        except StackError as exc:
            say(f"pz up: {exc}", error=True)
            return 1
        origin_host = options.extra_env.get("PZ_ORIGIN_HOST")
        origin_line = (
            f"origin (fronted)         {args.origin}/"
            + (f" (asked for as Host: {origin_host})" if origin_host else "")
            if args.origin
            else f"demo shop (origin)       {stack.shop_url}/"
        )
        say(
            f"pz is up.\n"
            f"  shop (through the edge)  {stack.edge_url}/\n"
            f"  decision API             {stack.edge_url}/pz/decide?slots=hero,recs\n"
            f"  edge metrics / health    {stack.edge_url}/metrics  {stack.edge_url}/readyz\n"
            f"  aggregator               {stack.aggregator_url}/readyz\n"
            f"  {origin_line}\n"
            f"  Kafka                    {stack.kafka_bootstrap}\n"
            f"  Redis                    {stack.redis_url} (data in {options.state_dir / 'redis'})\n"
            f"  rules                    {rules} (edit it: changes go live in seconds)\n"
            f"  visitors' country        {args.country} unless a CF-IPCountry header says otherwise\n"
            f"  logs                     {options.state_dir / 'logs'}/\n"
            f"Press Ctrl-C to stop."
        )
        supervisor = Supervisor(stack, lambda line: say(line, error=True))
        while not stopping.wait(0.5):
            supervisor.check()
        say("pz: stopping…")
        return 0
    finally:
        stack.down()  # whatever happened above, also a print to a closed pipe: nothing outlives pz up


def say(text: str, error: bool = False) -> None:
    """Print, ignoring an output that went away (`pz up | tee log`, then Ctrl-C closes the pipe)."""
    try:
        print(text, file=sys.stderr if error else sys.stdout, flush=True)
    except (BrokenPipeError, OSError):
        pass


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
    _add_up(sub)
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
