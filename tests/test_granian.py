"""The edge under granian (PZ_SERVER=granian): the same application, served, and stopped whole."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from pz.local_stack import LocalStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_an_edge_served_by_granian_decides_collects_and_stops_with_its_worker(stack: LocalStack) -> None:
    url = stack.add_edge("edge-granian", extra_env={"PZ_SERVER": "granian"})
    process = stack.processes.pop("edge-granian")
    try:
        workers = children(process.pid)
        assert workers, "granian serves from a worker process"
        with httpx.Client(base_url=url, timeout=5) as client:
            decided = client.get("/pz/decide", params={"slots": "hero"})
            assert decided.status_code == 200 and "hero" in decided.json()["slots"]
            event = {"type": "page_view", "item": "p0001", "category": "books", "ts": int(time.time() * 1000)}
            assert client.post("/pz/collect", json=event).status_code == 202
            assert client.get("/readyz").json()["ready"] is True
    finally:
        process.stop()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()], "a worker outlived the server"
