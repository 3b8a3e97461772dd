"""Prometheus metrics of the edge worker (default registry, exposed at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("pz_edge_requests_total", "HTTP requests served", ["route", "status"])
DECISION_SECONDS = Histogram(
    "pz_edge_decision_seconds",
    "In-process decision time for one request (all slots)",
    buckets=(5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3),
)
EVENTS_ACCEPTED = Counter("pz_edge_events_accepted_total", "Events accepted at /pz/collect", ["type"])
EVENTS_REJECTED = Counter("pz_edge_events_rejected_total", "Events rejected at /pz/collect", ["reason"])
EVENTS_PRODUCED = Counter("pz_edge_events_produced_total", "Events written to Kafka")
EVENT_BUFFER = Gauge("pz_edge_event_buffer", "Accepted events waiting to be written to Kafka")
DELTAS_APPLIED = Counter("pz_edge_deltas_applied_total", "Delta batches applied")
DELTAS_DROPPED = Counter("pz_edge_deltas_dropped_total", "Delta batches dropped", ["reason"])
DELTA_LAG_SECONDS = Gauge("pz_edge_delta_lag_seconds", "Age of the newest applied delta batch when applied")
SNAPSHOT_LOADS = Counter("pz_edge_snapshot_loads_total", "Snapshots loaded", ["source"])
SNAPSHOT_REJECTED = Counter("pz_edge_snapshot_rejected_total", "Snapshots refused", ["reason"])
