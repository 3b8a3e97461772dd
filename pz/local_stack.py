"""`pz up`: the whole system on loopback, from what `pip install` brought."""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pz.embedded import create_topics_sync, start_broker, start_redis
from pz.processes import ManagedProcess, StackError, free_port, port_is_free, spawn, wait_for_http


@dataclass(frozen=True, slots=True)
class StackOptions:
    edge_port: int = 8080  # 0: the OS picks (tests)
    shop_port: int = 8081
    aggregator_port: int = 8090
    partitions: int = 4
    state_dir: Path = Path(".pz")
    snapshot_interval_s: float = 5.0
    kafka_bootstrap: str | None = None  # None: start the embedded broker
    redis_url: str | None = None  # None: start the embedded Redis server
    with_shop: bool = True
    origin_url: str | None = None  # the site the edge fronts; None: the demo shop (when with_shop)
    rules_file: Path | None = None  # None: the built-in rules (schemas/rules/default_rules.yaml)
    inventory_file: Path | None = None  # what is sold out (the demo shop writes one)
    default_country: str = ""  # the country of visitors when no CDN header says it
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalStack:
    options: StackOptions
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    kafka_bootstrap: str = ""
    redis_url: str = ""
    edge_url: str = ""
    shop_url: str = ""
    aggregator_url: str = ""

    def _ports(self) -> dict[str, int]:
        wanted = {"edge": self.options.edge_port, "aggregator": self.options.aggregator_port}
        if self.options.with_shop:
            wanted["shop"] = self.options.shop_port
        ports = {}
        for name, port in wanted.items():
            if port and not port_is_free(port):
                flag = f"--{name}-port"
                raise StackError(
                    f"port {port} ({name}) is already in use: stop what uses it, or pass {flag} PORT"
                )
            ports[name] = port or free_port()
        return ports

    def _service_env(self) -> dict[str, str]:
        return {
            "PZ_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "PZ_REDIS_URL": self.redis_url,
            "PZ_PARTITIONS": str(self.options.partitions),
            "PZ_AGGREGATOR_URL": self.aggregator_url,
            "PZ_SESSION_TIMEOUT_MS": "6000",  # a tansu group join takes half of it
            "PZ_SNAPSHOT_INTERVAL_S": str(self.options.snapshot_interval_s),
            "PZ_SNAPSHOT_POLL_S": "1",
            "PZ_RULES_FILE": str(self.options.rules_file or ""),
            "PZ_INVENTORY_FILE": str(self.options.inventory_file or ""),
            "PZ_DEFAULT_COUNTRY": self.options.default_country,
            **self.options.extra_env,
        }

    def up(self) -> None:
        """Start everything and wait for health; on any failure, stop what was started and raise."""
        try:
            self._up()
        except BaseException:
            self.down()
            raise

    def _up(self) -> None:
        opts = self.options
        logs = opts.state_dir / "logs"
        ports = self._ports()
        if opts.kafka_bootstrap:
            self.kafka_bootstrap = opts.kafka_bootstrap
        else:
            self.processes["broker"], self.kafka_bootstrap = start_broker(logs)
        if opts.redis_url:
            self.redis_url = opts.redis_url
        else:
            # Persistent (append-only file, fsynced every second): a restarted Redis or `pz up` keeps
            # the state; what a kill -9 loses of the last second the aggregator replays from the log.
            self.processes["redis"], self.redis_url = start_redis(
                logs, data_dir=opts.state_dir / "redis", fsync="everysec"
            )
        create_topics_sync(self.kafka_bootstrap, opts.partitions)

        self.aggregator_url = f"http://127.0.0.1:{ports['aggregator']}"
        env = self._service_env()
        if opts.with_shop:
            self.shop_url = f"http://127.0.0.1:{ports['shop']}"
            self.processes["shop"] = spawn(
                "shop", [sys.executable, "-m", "pz.demo_shop", "--port", str(ports["shop"])], logs
            )
            wait_for_http(self.processes["shop"], f"{self.shop_url}/shop/healthz")
        self.processes["aggregator"] = spawn(
            "aggregator",
            [sys.executable, "-m", "aggregator"],
            logs,
            {
                **env,
                "PZ_AGGREGATOR_PORT": str(ports["aggregator"]),
                "PZ_AGGREGATOR_MEMBER": "aggregator",  # restarted, it takes its partitions back at once
                "PZ_AGGREGATOR_STATE_DIR": str(opts.state_dir / "aggregator"),
            },
        )
        wait_for_http(self.processes["aggregator"], f"{self.aggregator_url}/readyz", timeout_s=60)
        self.edge_url = self.add_edge("edge", ports["edge"])

    def add_edge(self, name: str, port: int = 0, extra_env: dict[str, str] | None = None) -> str:
        """Start an edge worker (one more, for tests of several edges) and wait until it is ready."""
        port = port or free_port()
        # Edges verify; only aggregators sign. An Ed25519 private key never reaches an edge.
        env = {k: v for k, v in self._service_env().items() if k != "PZ_SIGNING_PRIVATE_KEY"}
        self.processes[name] = spawn(
            name,
            [sys.executable, "-m", "edge_worker"],
            self.options.state_dir / "logs",
            {
                **env,
                "PZ_EDGE_PORT": str(port),
                "PZ_ORIGIN_URL": self.options.origin_url or self.shop_url,
                "PZ_EDGE_STATE_DIR": str(self.options.state_dir / name),
                **(extra_env or {}),
            },
        )
        url = f"http://127.0.0.1:{port}"
        wait_for_http(self.processes[name], f"{url}/readyz", timeout_s=60)
        return url

    def down(self) -> None:
        """Stop exactly what this stack started, services first, by PID."""
        rank = {"aggregator": 1, "shop": 2, "redis": 3, "broker": 4}  # edges (any name) go first
        for name in sorted(self.processes, key=lambda n: rank.get(n, 0)):
            self.processes.pop(name).stop()

    def restart(self, name: str) -> None:
        """Start a stopped or killed service again, same command and environment (fault tests)."""
        old = self.processes[name]
        old.stop()
        self.processes[name] = spawn(name, old.argv, old.log_path.parent, old.env, old.die_with_parent)


def demo_rules_file() -> Path:
    """The demo shop's rules, as installed with pz."""
    return Path(str(resources.files("pz.demo_shop").joinpath("rules.yaml")))


def stack_options_from_env(**overrides: object) -> StackOptions:
    """Options honouring PZ_KAFKA_BOOTSTRAP / PZ_REDIS_URL: set, they replace the embedded services."""
    base = StackOptions(
        kafka_bootstrap=os.environ.get("PZ_KAFKA_BOOTSTRAP") or None,
        redis_url=os.environ.get("PZ_REDIS_URL") or None,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]
