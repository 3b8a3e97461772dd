"""Long-lived services that outlive the command that started them (`pz fleet`, driven by Terraform).

Each service is a detached process with a record in `STATE_DIR/services/NAME.json`: what was
started (argv, environment, port, release) and its PID, so that a later command, in another
process, can find it, check it and stop exactly it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pz.embedded import broker_argv, redis_argv
from pz.processes import StackError, spawn

KINDS = ("edge", "aggregator", "shop", "broker", "redis")


@dataclass
class ServiceRecord:
    name: str
    kind: str
    port: int
    pid: int
    argv: list[str]
    env: dict[str, str]
    log: str
    started_at: float
    proc_start: int  # the kernel's start time of `pid`: tells our process from a later one with its PID
    release: dict[str, Any] = field(default_factory=dict)  # edges: what they run now
    last_good: dict[str, Any] = field(default_factory=dict)  # edges: the last release that passed a gate
    secret_env: dict[str, str] = field(default_factory=dict)  # VAR -> the variable of ours that holds it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _records_dir(state_dir: Path) -> Path:
    return state_dir / "services"


def load_record(state_dir: Path, name: str) -> ServiceRecord | None:
    path = _records_dir(state_dir) / f"{name}.json"
    try:
        return ServiceRecord(**orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        return None


def save_record(state_dir: Path, record: ServiceRecord) -> None:
    directory = _records_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{record.name}.json.tmp"
    tmp.write_bytes(orjson.dumps(asdict(record), option=orjson.OPT_INDENT_2))
    tmp.replace(directory / f"{record.name}.json")  # a reader never sees half a record


def all_records(state_dir: Path) -> list[ServiceRecord]:
    directory = _records_dir(state_dir)
    names = sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []
    return [r for r in (load_record(state_dir, n) for n in names) if r is not None]


def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (state first); empty when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return []


def process_start_time(pid: int) -> int:
    fields = _proc_stat(pid)
    return int(fields[19]) if len(fields) > 19 else -1


def pid_alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped) counts as gone."""
    fields = _proc_stat(pid)
    return bool(fields) and fields[0] != "Z"


def is_running(record: ServiceRecord) -> bool:
    """Alive and still the process we started (a PID can be reused after it exits)."""
    return pid_alive(record.pid) and process_start_time(record.pid) == record.proc_start


def service_argv(kind: str, port: int, data_dir: Path) -> list[str]:
    if kind == "edge":
        return [sys.executable, "-m", "edge_worker"]
    if kind == "aggregator":
        return [sys.executable, "-m", "aggregator"]
    if kind == "shop":
        return [sys.executable, "-m", "pz.demo_shop", "--port", str(port)]
    if kind == "broker":
        return broker_argv(port)
    if kind == "redis":
        return redis_argv(port, data_dir)  # append-only file: a restarted Redis keeps its state
    raise StackError(f"unknown service kind {kind!r}: use one of {', '.join(KINDS)}")


def _port_env(kind: str, port: int, state_dir: Path, name: str) -> dict[str, str]:
    if kind == "edge":
        return {"PZ_EDGE_PORT": str(port), "PZ_EDGE_STATE_DIR": str(state_dir / "data" / name)}
    if kind == "aggregator":
        return {"PZ_AGGREGATOR_PORT": str(port), "PZ_AGGREGATOR_STATE_DIR": str(state_dir / "data" / name)}
    return {}


def start_service(
    state_dir: Path,
    name: str,
    kind: str,
    port: int,
    env: dict[str, str],
    release: dict[str, Any] | None = None,
    secret_env: dict[str, str] | None = None,
) -> ServiceRecord:
    """Start NAME (stopping an older instance of it first) and record it; does not wait for health.

    `secret_env` maps a variable of the service to a variable of this process that holds its value
    (a signing secret): the value reaches the service but never the record, the logs or Terraform."""
    if kind not in KINDS:
        raise StackError(f"unknown service kind {kind!r}: use one of {', '.join(KINDS)}")
    secrets = {}
    for target, source in (secret_env or {}).items():
        if not os.environ.get(source):
            raise StackError(f"{source} is not set: it must hold the value of {target} for {name}")
        secrets[target] = os.environ[source]
    previous = load_record(state_dir, name)
    if previous is not None:
        stop_process(previous)
    argv = service_argv(kind, port, state_dir / "data" / name)
    full_env = {**env, **_port_env(kind, port, state_dir, name)}
    # Detached on purpose: a service outlives the command that started it (Terraform drives them).
    process = spawn(name, argv, state_dir / "logs", {**full_env, **secrets}, die_with_parent=False)
    record = ServiceRecord(
        name=name,
        kind=kind,
        port=port,
        pid=process.pid,
        argv=argv,
        env=full_env,
        log=str(process.log_path),
        started_at=time.time(),
        proc_start=process_start_time(process.pid),
        release=dict(release or {}),
        last_good=dict(previous.last_good) if previous is not None else {},
        secret_env=dict(secret_env or {}),
    )
    save_record(state_dir, record)
    return record


def stop_process(record: ServiceRecord, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`; only if the PID is still the process we started."""
    if not is_running(record):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signal.SIGCONT)
        os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(record.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(record.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)
        while pid_alive(record.pid):
            time.sleep(0.02)


def stop_service(state_dir: Path, name: str) -> bool:
    """Stop NAME and forget it; False when there was nothing recorded under that name."""
    record = load_record(state_dir, name)
    if record is None:
        return False
    stop_process(record)
    (_records_dir(state_dir) / f"{name}.json").unlink(missing_ok=True)
    return True


def log_tail(record: ServiceRecord, lines: int = 15) -> str:
    try:
        return "\n".join(Path(record.log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
