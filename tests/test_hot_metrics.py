"""The edge's lock-free request metrics expose what prometheus-client's own would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from edge_worker.hot_metrics import HotCounter, HotHistogram

BUCKETS = (5e-6, 1e-5, 1e-3)


def samples(registry: CollectorRegistry) -> list[str]:
    """Exposition lines without `_created` (the library's own add it; it carries no counts)."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_counters_and_histograms_read_the_same_as_the_librarys() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    hot_requests = HotCounter("t_requests_total", "Requests", ["route", "status"], registry=ours)
    requests = Counter("t_requests_total", "Requests", ["route", "status"], registry=theirs)
    hot_seconds = HotHistogram("t_seconds", "Seconds", BUCKETS, registry=ours)
    seconds = Histogram("t_seconds", "Seconds", buckets=BUCKETS, registry=theirs)
    for route, status in [("/a", "200"), ("/a", "200"), ("/b", "404")]:
        hot_requests.labels(route, status).inc()
        requests.labels(route, status).inc()
    for value in (1e-6, 5e-6, 7e-6, 1e-5, 0.5, 2.0):  # on a bound, between, above every bound
        hot_seconds.observe(value)
        seconds.observe(value)
    assert samples(ours) == samples(theirs)


def test_a_counter_asks_for_its_labels() -> None:
    counter = HotCounter("t_things_total", "Things", ["kind"], registry=CollectorRegistry())
    with pytest.raises(ValueError, match="takes labels"):
        counter.labels("a", "b")
    assert counter.labels("a") is counter.labels("a")  # kept: hot paths bind it once
