"""Session fixtures: a real broker (tansu) and Redis server (valkey) on ports the OS picks, and the
whole local stack for end-to-end tests. Nothing here mocks Kafka or Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from pz.embedded import create_topics, start_broker, start_redis
from pz.local_stack import LocalStack, StackOptions
from pz.processes import ManagedProcess
from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS

PARTITIONS = 4


class Services:
    def __init__(self, broker: ManagedProcess, bootstrap: str, redis: ManagedProcess, redis_url: str) -> None:
        self.broker, self.bootstrap, self.redis, self.redis_url = broker, bootstrap, redis, redis_url


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    logs = tmp_path_factory.mktemp("services")
    broker, bootstrap = start_broker(logs)
    redis_proc, redis_url = start_redis(logs)
    asyncio.run(create_topics(bootstrap, PARTITIONS))
    try:
        yield Services(broker, bootstrap, redis_proc, redis_url)
    finally:
        redis_proc.stop()
        broker.stop()


@contextlib.contextmanager
def running_stack(state: Path, **options: Any) -> Iterator[LocalStack]:
    """The whole system as `pz up` runs it, with its own broker and Redis, on OS-chosen ports."""
    defaults: dict[str, Any] = {"snapshot_interval_s": 1.0, "partitions": PARTITIONS}
    local = LocalStack(
        StackOptions(edge_port=0, shop_port=0, aggregator_port=0, state_dir=state, **{**defaults, **options})
    )
    local.up()
    try:
        yield local
    finally:
        local.down()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(Path(tmp_path_factory.mktemp("stack"))) as local:
        yield local


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
