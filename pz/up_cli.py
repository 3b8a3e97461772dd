"""`pz up`: the whole system on this machine, the demo shop or your own site behind the edge."""

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
from pz.local_stack import LocalStack, demo_rules_file, stack_options_from_env
from pz.processes import StackError
from pz.supervisor import Supervisor
from schemas.rules import RulesInvalid, load_rules_text


def add_up(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
