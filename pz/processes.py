"""Child processes of the local stack: start on loopback, wait until healthy, stop by PID."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


class StackError(Exception):
    """Something the local stack needs is missing or taken; the message says which and how to fix it."""


def free_port() -> int:
    """A loopback port the OS picked (bound and released: the child binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str]
    env: dict[str, str]  # what was added to the inherited environment
    die_with_parent: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """kill -9, for fault tests."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait()

    def pause(self) -> None:
        """SIGSTOP: the process holds its sockets and data but answers nothing (a hang, a partition)."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
        self.popen.terminate()
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _dies_with(parent_pid: int) -> None:
    """Runs in the child before exec: the kernel sends SIGTERM when the parent dies, however it dies
    (SIGKILL included), so children of `pz up` never outlive it holding their ports."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os.kill(os.getpid(), signal.SIGTERM)


def spawn(
    name: str,
    argv: list[str],
    log_dir: Path,
    env: dict[str, str] | None = None,
    die_with_parent: bool = True,
) -> ManagedProcess:
    """Start `argv` with its output in LOG_DIR/NAME.log. `die_with_parent`: ended by the kernel when
    this process ends (the local stack, tests); without it the child outlives us (`pz fleet`)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    parent_pid = os.getpid()
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        # A session of its own: Ctrl-C in the terminal reaches `pz up`, which stops children in order.
        popen = subprocess.Popen(  # noqa: S603 - argv is built by us, never from a shell string
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=(lambda: _dies_with(parent_pid)) if die_with_parent else None,  # noqa: PLW1509
        )
    return ManagedProcess(name, popen, log_path, argv, dict(env or {}), die_with_parent)


def wait_for_tcp(process: ManagedProcess, port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.alive():
            raise StackError(f"{process.name} exited early (see {process.log_path}):\n{process.log_tail()}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise StackError(
        f"{process.name} did not open port {port} within {timeout_s:.0f} s (see {process.log_path})"
    )


def wait_for_http(process: ManagedProcess, url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if not process.alive():
            raise StackError(f"{process.name} exited early (see {process.log_path}):\n{process.log_tail()}")
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.05)
    raise StackError(
        f"{process.name} not healthy at {url} within {timeout_s:.0f} s: {last} (see {process.log_path})"
    )
