"""A failing origin: the breaker opens, a fallback page is served, and it closes once the origin is back."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from edge_worker.circuit_breaker import BreakerState, CircuitBreaker
from pz.local_stack import LocalStack
from pz.processes import free_port, spawn, wait_for_http


def state_of(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state  # read through a call: mypy would keep the narrowed state


def test_the_breaker_opens_after_consecutive_failures_and_probes_once() -> None:
    breaker = CircuitBreaker(failure_threshold=3, open_s=10)
    for _ in range(2):
        breaker.failed(now=0)
    breaker.succeeded()  # a success in between resets the count
    for _ in range(3):
        assert breaker.allow(now=1)
        breaker.failed(now=1)
    assert breaker.state is BreakerState.OPEN and not breaker.allow(now=5)
    assert breaker.retry_after_s(now=5) == 6
    assert breaker.allow(now=11)  # half-open: one probe...
    assert not breaker.allow(now=11)  # ...and only one
    breaker.failed(now=11)
    assert breaker.state is BreakerState.OPEN and not breaker.allow(now=12)
    assert breaker.allow(now=21)
    breaker.succeeded()
    assert state_of(breaker) is BreakerState.CLOSED and breaker.allow(now=21)


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_a_dead_origin_gets_the_fallback_page_and_decisions_go_on(stack: LocalStack, tmp_path: Path) -> None:
    fallback = tmp_path / "sorry.html"
    fallback.write_text("<h1>Back in a moment</h1>")
    port = free_port()  # nothing listens here yet
    edge = stack.add_edge(
        "edge-breaker",
        extra_env={
            "PZ_ORIGIN_URL": f"http://127.0.0.1:{port}",
            "PZ_ORIGIN_FAILURES": "2",
            "PZ_ORIGIN_OPEN_S": "1",
            "PZ_ORIGIN_FALLBACK_FILE": str(fallback),
        },
    )
    with httpx.Client(base_url=edge, timeout=5) as client:
        first = client.get("/category/books", headers={"accept": "text/html"})
        assert first.status_code == 502 and "Back in a moment" in first.text
        assert (
            client.get("/products.json", headers={"accept": "application/json"}).json()["error"]
            == "origin_unreachable"
        )
        short = client.get("/category/books", headers={"accept": "text/html"})
        assert (
            short.status_code == 503
            and short.headers["retry-after"] == "1"
            and "Back in a moment" in short.text
        )
        assert "pz_edge_origin_short_circuited_total 1.0" in client.get("/metrics").text
        assert client.get("/pz/decide").status_code == 200  # the edge's own API is not the origin's

        shop = spawn(
            "shop-late", [sys.executable, "-m", "pz.demo_shop", "--port", str(port)], tmp_path / "logs"
        )
        try:
            wait_for_http(shop, f"http://127.0.0.1:{port}/shop/healthz")
            deadline = time.monotonic() + 10
            status = 0
            while status != 200 and time.monotonic() < deadline:
                status = client.get("/category/books", headers={"accept": "text/html"}).status_code
                time.sleep(0.2)
            assert status == 200
        finally:
            shop.stop()
