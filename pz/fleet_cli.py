"""`pz fleet`: start, stop, gate and roll out long-lived services; what the Terraform modules call."""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path

import httpx
import orjson

from pz.arguments import port_number, positive_float, positive_int
from pz.embedded import create_topics_sync
from pz.gate import GateCriteria, run_gate
from pz.processes import StackError
from pz.rollout import SpecError, parse_spec, run_rollout
from pz.rules_cli import run_lint
from pz.services import KINDS, ServiceRecord, all_records, is_running, log_tail, start_service, stop_service

_HEALTH_PATHS = {"edge": "/healthz", "aggregator": "/readyz", "shop": "/shop/healthz"}


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def add_fleet(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fleet = sub.add_parser(
        "fleet",
        help="manage long-lived services and staged rollouts (used by terraform/)",
        description="Start, stop, health-gate and roll out services that outlive this command; each is "
        "recorded under STATE_DIR/services so that a later command can find and stop exactly it.",
    )
    tools = fleet.add_subparsers(dest="tool", required=True)

    start = tools.add_parser("start", help="start (or restart) a service and wait until it is healthy")
    start.add_argument("name")
    start.add_argument("--kind", choices=KINDS, required=True)
    start.add_argument("--port", type=port_number, required=True)
    start.add_argument("--state-dir", type=Path, required=True)
    start.add_argument("--env", type=_key_value, action="append", default=[], metavar="KEY=VALUE")
    start.add_argument(
        "--secret-env",
        type=_key_value,
        action="append",
        default=[],
        metavar="VAR=SOURCE",
        help="give the service VAR from this process's SOURCE variable, never recorded (signing keys)",
    )
    start.add_argument("--timeout", type=positive_float, default=60.0, help="seconds to become healthy")

    stop = tools.add_parser("stop", help="stop services by name (SIGTERM, then SIGKILL) and forget them")
    stop.add_argument("names", nargs="+")
    stop.add_argument("--state-dir", type=Path, required=True)

    topics = tools.add_parser("topics", help="create pz's topics (existing ones are kept)")
    topics.add_argument("--bootstrap", required=True)
    topics.add_argument("--partitions", type=positive_int, required=True)

    rollout = tools.add_parser("rollout", help="roll a release out to edges, wave by wave, gated")
    rollout.add_argument(
        "--spec", required=True, help="the rollout as JSON (the edge_fleet module writes it)"
    )

    publish = tools.add_parser(
        "publish-rules", help="lint a rules file and put it where an aggregator reads it (atomically)"
    )
    publish.add_argument("source", type=Path)
    publish.add_argument("--to", type=Path, required=True, dest="target")

    await_rules = tools.add_parser("await-rules", help="wait until an aggregator publishes a rules version")
    await_rules.add_argument("url", help="the aggregator's base URL")
    await_rules.add_argument("--version", required=True)
    await_rules.add_argument("--timeout", type=positive_float, default=30.0)

    gate = tools.add_parser("gate", help="check one edge against the rollout gate")
    gate.add_argument("url")
    gate.add_argument("--release", required=True, help="the release the edge must report")
    gate.add_argument("--rules-version", default="", help="the rules version it must serve (default: any)")
    gate.add_argument("--timeout", type=positive_float, default=30.0)

    status = tools.add_parser("status", help="every recorded service: alive, port, release, last good")
    status.add_argument("--state-dir", type=Path, required=True)
    status.add_argument("--json", action="store_true")


def _wait_healthy(record: ServiceRecord, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    path = _HEALTH_PATHS.get(record.kind)
    last = "no answer"
    while time.monotonic() < deadline:
        if not is_running(record):
            raise StackError(f"{record.name} exited (see {record.log}):\n{log_tail(record)}")
        if path is None:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", record.port)) == 0:
                    return
        else:
            try:
                response = httpx.get(record.url + path, timeout=1.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
        time.sleep(0.1)
    raise StackError(f"{record.name} not healthy within {timeout_s:g} s: {last} (see {record.log})")


def _publish_rules(source: Path, target: Path) -> int:
    """Only rules that pass lint reach the aggregator; the file appears whole or not at all."""
    if run_lint([source]) != 0:
        print(f"pz fleet publish-rules: {source} was not published", file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(source.read_bytes())
    tmp.replace(target)
    print(f"published {source} to {target}")
    return 0


def _await_rules(url: str, version: str, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    seen = "no answer"
    while time.monotonic() < deadline:
        try:
            seen = str(httpx.get(f"{url}/readyz", timeout=2.0).json().get("rules_version"))
        except (httpx.HTTPError, ValueError) as exc:
            seen = type(exc).__name__
        if seen == version:
            print(f"{url} publishes rules {version}")
            return 0
        time.sleep(0.2)
    print(
        f"pz fleet await-rules: {url} still publishes {seen!r} after {timeout_s:g} s, not {version!r} "
        "(its log says why: refused rules are logged with every problem)",
        file=sys.stderr,
    )
    return 1


def _status(state_dir: Path, as_json: bool) -> int:
    rows = []
    for record in all_records(state_dir):
        rows.append(
            {
                "name": record.name,
                "kind": record.kind,
                "alive": is_running(record),
                "pid": record.pid,
                "url": record.url,
                "release": record.release.get("version", ""),
                "last_good": (record.last_good.get("release") or {}).get("version", ""),
            }
        )
    if as_json:
        print(orjson.dumps(rows).decode())
        return 0
    print(f"{'name':<16} {'kind':<10} {'alive':<6} {'pid':>7}  {'url':<24} {'release':<12} last good")
    for row in rows:
        print(
            f"{row['name']:<16} {row['kind']:<10} {'yes' if row['alive'] else 'NO':<6} {row['pid']:>7}  "
            f"{row['url']:<24} {row['release'] or '-':<12} {row['last_good'] or '-'}"
        )
    return 0


def run_fleet(args: argparse.Namespace) -> int:
    if args.tool == "start":
        record = start_service(
            args.state_dir, args.name, args.kind, args.port, dict(args.env), secret_env=dict(args.secret_env)
        )
        _wait_healthy(record, args.timeout)
        print(f"{args.name} ({args.kind}) running, pid {record.pid}, {record.url}")
        return 0
    if args.tool == "stop":
        for name in args.names:
            print(f"{name}: {'stopped' if stop_service(args.state_dir, name) else 'was not running'}")
        return 0
    if args.tool == "topics":
        create_topics_sync(args.bootstrap, args.partitions)
        print(f"topics ready on {args.bootstrap} ({args.partitions} partitions)")
        return 0
    if args.tool == "gate":
        result = run_gate(
            args.url.rstrip("/"),
            GateCriteria(args.release, args.rules_version, timeout_s=args.timeout),
        )
        print(result.summary())
        return 0 if result.passed else 1
    if args.tool == "status":
        return _status(args.state_dir, args.json)
    if args.tool == "publish-rules":
        return _publish_rules(args.source, args.target)
    if args.tool == "await-rules":
        return _await_rules(args.url.rstrip("/"), args.version, args.timeout)
    try:
        spec = parse_spec(args.spec)
    except SpecError as exc:
        print(f"pz fleet rollout: invalid spec: {exc}", file=sys.stderr)
        return 2
    outcome = run_rollout(spec, say=lambda line: print(line, flush=True))
    print(outcome.message, file=sys.stdout if outcome.passed else sys.stderr)
    return 0 if outcome.passed else 1
