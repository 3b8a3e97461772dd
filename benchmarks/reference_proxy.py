"""The reference in `pz bench proxy`: nginx (serving the page, and as a `proxy_pass` in front of
it), load from wrk, and a time-to-first-byte probe, each process pinned to a core.

nginx and wrk are Debian's (`scripts/install --with-bench`); without them the caller says so and
measures what it can.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import latency_summary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(argv: list[str], core: int | None) -> list[str]:
    """`argv` run on one core, when taskset is there and the machine has that core."""
    if core is None or shutil.which("taskset") is None or core >= (os.cpu_count() or 1):
        return argv
    return ["taskset", "-c", str(core), *argv]


def pin(pid: int, core: int) -> None:
    if shutil.which("taskset") is not None and core < (os.cpu_count() or 1):
        subprocess.run(["taskset", "-a", "-p", "-c", str(core), str(pid)], check=True, capture_output=True)


@dataclass
class Nginx:
    """One nginx master with one worker: a static server for `root`, or a proxy_pass to `upstream`."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        return shutil.which("nginx") or next(
            (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None
        )

    def start(self, core: int | None, root: Path | None = None, upstream: str | None = None) -> None:
        binary = self.available()
        assert binary is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        if root is not None:
            site = f"location / {{ root {root}; default_type text/html; }}"
            upstreams = ""
        else:
            assert upstream is not None
            upstreams = f"upstream origin {{ server {upstream}; keepalive 64; }}"
            site = (
                "location / { proxy_pass http://origin; proxy_http_version 1.1; "
                'proxy_set_header Connection ""; }'
            )
        temp = " ".join(
            f"{kind}_temp_path {self.directory / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        config = self.directory / "nginx.conf"
        config.write_text(
            "worker_processes 1; daemon off; master_process on;\n"
            f"pid {self.directory / 'nginx.pid'}; error_log {self.directory / 'error.log'} warn;\n"
            "events { worker_connections 4096; }\n"
            f"http {{ access_log off; types {{ text/html html; }} {temp} {upstreams}\n"
            f"  server {{ listen 127.0.0.1:{self.port}; {site} }} }}\n"
        )
        self.process = subprocess.Popen(
            pinned([binary, "-c", str(config), "-p", str(self.directory)], core),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(
            f"nginx did not listen on {self.port}: {(self.directory / 'error.log').read_text()}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class WrkResult:
    rps: float
    latency_p50_ms: float
    latency_p99_ms: float
    errors: int


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, accept: str, seconds: float, connections: int, core: int | None) -> WrkResult:
    binary = shutil.which("wrk")
    assert binary is not None
    argv = [
        binary,
        "-t1",
        f"-c{connections}",
        f"-d{seconds:.0f}s",
        "--latency",
        "-H",
        f"Accept: {accept}",
        url,
    ]
    out = subprocess.run(pinned(argv, core), check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(name: str) -> float:
        found = re.search(rf"^\s+{name}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return round(float(found.group(1)) * _UNITS_MS[found.group(2)], 3) if found else float("nan")

    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    if errors:  # requests/s of error pages or broken connections would measure the wrong thing
        raise RuntimeError(f"wrk against {url}: {errors} responses were errors\n{out}")
    return WrkResult(rps, percentile("50"), percentile("99"), errors)


async def _first_bytes(host: str, port: int, path: str, accept: str, count: int) -> list[float]:
    """Time to the first byte of each of `count` responses, one keep-alive connection, one at a time."""
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: {accept}\r\n\r\n".encode()
    times: list[float] = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(request)
            await reader.readexactly(1)
            times.append((time.perf_counter() - started) * 1000)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if length is not None:
                await reader.readexactly(int(length.group(1)))
                continue
            while True:  # chunked
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
    finally:
        writer.close()
    return times


def ttfb(url_host: str, port: int, path: str, accept: str, count: int = 300) -> dict[str, float]:
    summary = latency_summary(asyncio.run(_first_bytes(url_host, port, path, accept, count)), "ttfb")
    return {key: round(value, 3) for key, value in summary.items()}
