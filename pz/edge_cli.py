"""`pz edge`: one edge worker in front of a site, joined to a Kafka and an aggregator that already run.

Settings are the edge's PZ_* variables; `--config FILE` reads them from a TOML file instead, one key
per variable without its prefix, in lower case (`origin_url = "http://127.0.0.1:3000"` is
PZ_ORIGIN_URL). A variable set in the environment wins over the file. Before serving it prints
every setting it uses and where it came from, secrets masked.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

from edge_worker.config import EdgeConfig
from schemas.settings import ConfigError

_SECRET_WORDS = ("SECRET", "TOKEN", "PRIVATE")


class _Recording(Mapping[str, str]):
    """An environment that remembers which names were asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self._values[key]

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return self._values.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def edge_variables() -> frozenset[str]:
    """Every PZ_* variable the edge reads (with either signing algorithm)."""
    names: set[str] = set()
    for env in ({}, {"PZ_SIGNING_ALG": "ed25519"}):
        recording = _Recording(env)
        try:
            EdgeConfig.from_env(recording)
        except ConfigError:
            pass  # the Ed25519 pass stops at its missing key, after asking for it
        names |= recording.asked
    return frozenset(name for name in names if name.startswith("PZ_"))


def settings_from_file(path: Path, known: frozenset[str]) -> dict[str, str]:
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not TOML: {exc}") from None
    settings: dict[str, str] = {}
    for key, value in table.items():
        name = "PZ_" + key.upper()
        if name not in known:
            raise ConfigError(
                f"--config {path}: {key!r} is not an edge setting (known: "
                f"{', '.join(sorted(n.removeprefix('PZ_').lower() for n in known))})"
            )
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float | str):
            text = str(value)
        else:
            raise ConfigError(f"--config {path}: {key}: expected a string, number or boolean")
        settings[name] = text
    return settings


def add_edge(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    edge = sub.add_parser(
        "edge",
        help="run one edge worker against an existing Kafka and aggregator",
        description=(
            "Run one edge worker configured by PZ_* variables or --config FILE (TOML: origin_url, "
            "kafka_bootstrap, aggregator_url, edge_port, …); the environment wins over the file. "
            "Prints the settings it uses, then serves until Ctrl-C."
        ),
    )
    edge.add_argument("--config", type=Path, help="a TOML file of edge settings")
    edge.add_argument("--check", action="store_true", help="print the settings and exit without serving")


def run_edge(args: argparse.Namespace) -> int:
    known = edge_variables()
    from_file = settings_from_file(args.config, known) if args.config else {}
    from_env = {name: value for name, value in os.environ.items() if name in known}
    merged = {**from_file, **from_env}
    config = EdgeConfig.from_env(merged)  # refuses bad values by name before anything starts
    print("pz edge: settings (environment over file over defaults)")
    for name in sorted(known):
        if name in merged:
            source = "environment" if name in from_env else str(args.config)
            value = merged[name]
            shown = "(set)" if any(word in name for word in _SECRET_WORDS) else value
            print(f"  {name:<28} {shown}  [{source}]")
    main_defaults = {
        "PZ_ORIGIN_URL": config.origin_url or "(none: only the /pz/ API)",
        "PZ_KAFKA_BOOTSTRAP": config.kafka_bootstrap,
        "PZ_AGGREGATOR_URL": config.aggregator_url,
        "PZ_EDGE_HOST": config.host,
        "PZ_EDGE_PORT": str(config.port),
        "PZ_PARTITIONS": str(config.partitions),
    }
    for name, value in main_defaults.items():
        if name not in merged:
            print(f"  {name:<28} {value}  [default]")
    if args.check:
        return 0
    os.environ.update(merged)
    from edge_worker.__main__ import main as serve_edge

    serve_edge()
    return 0
