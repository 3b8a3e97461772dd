"""Prometheus metrics of the edge worker (default registry, exposed at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from edge_worker.hot_metrics import HotCounter, HotHistogram

# Updated on every request: plain numbers, collected at scrape time (hot_metrics.py).
REQUESTS = HotCounter("pz_edge_requests_total", "HTTP requests served", ["route", "status"])
DECISION_SECONDS = HotHistogram(
    "pz_edge_decision_seconds",
    "In-process decision time for one request (all slots)",
    buckets=(5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1),
)
EVENTS_ACCEPTED = HotCounter("pz_edge_events_accepted_total", "Events accepted at /pz/collect", ["type"])
EVENTS_WITHOUT_CONSENT = Counter(
    "pz_edge_events_without_consent_total", "Beacons answered 204 and dropped: no consent (GPC, PZ_CONSENT)"
)
EVENTS_REJECTED = HotCounter("pz_edge_events_rejected_total", "Events rejected at /pz/collect", ["reason"])
EVENTS_PRODUCED = Counter("pz_edge_events_produced_total", "Events written to Kafka")
EVENT_BUFFER = Gauge("pz_edge_event_buffer", "Accepted events waiting to be written to Kafka")
DELTAS_APPLIED = Counter("pz_edge_deltas_applied_total", "Delta batches applied")
DELTAS_DROPPED = Counter("pz_edge_deltas_dropped_total", "Delta batches dropped", ["reason"])
DELTA_LAG_SECONDS = Gauge(
    "pz_edge_delta_lag_seconds", "Age of the newest applied delta batch when applied", ["partition"]
)
PROFILE_CACHE = HotCounter(
    "pz_edge_profile_cache_total", "Profile lookups in the decoded-profile cache", ["result"]
)
PROFILE_DECODE_ERRORS = Counter(
    "pz_edge_profile_decode_errors_total", "Snapshot profiles that failed to decode"
)
SNAPSHOT_AGE_SECONDS = Gauge("pz_edge_snapshot_age_seconds", "Age of the snapshot in use")
SYNC_AGE_SECONDS = Gauge(
    "pz_edge_sync_age_seconds", "Time since the edge last heard from sync (snapshot or deltas)"
)
OVERLAY_USERS = Gauge("pz_edge_overlay_users", "Users held in the delta overlay")
SNAPSHOT_INFO = Gauge("pz_edge_snapshot_info", "The snapshot in use (value 1)", ["snapshot_id"])
SNAPSHOT_LOADS = Counter("pz_edge_snapshot_loads_total", "Snapshots loaded", ["source"])
SNAPSHOT_REJECTED = Counter("pz_edge_snapshot_rejected_total", "Snapshots refused", ["reason"])
PROXIED = Counter("pz_edge_proxied_total", "Origin responses streamed back", ["mode"])
SLOTS_INJECTED = Counter("pz_edge_slots_injected_total", "Placeholders filled while proxying", ["slot"])
SLOTS_LEFT_UNFILLED = Counter(
    "pz_edge_slots_left_unfilled_total",
    "Placeholders left as the origin sent them: their old content did not end within the limit",
    ["slot"],
)
PAGES_NOT_REWRITTEN = Counter(
    "pz_edge_pages_not_rewritten_total", "HTML pages passed unchanged, by reason", ["reason"]
)
ORIGIN_ERRORS = Counter("pz_edge_origin_errors_total", "Requests the origin did not answer")
ORIGIN_SHORT_CIRCUITED = Counter(
    "pz_edge_origin_short_circuited_total", "Requests answered while the breaker was open"
)
ORIGIN_BREAKER_OPEN = Gauge(
    "pz_edge_origin_breaker_open", "1 while the origin circuit breaker is open or probing"
)
DECISIONS_OVER_BUDGET = Counter(
    "pz_edge_decisions_over_budget_total", "Page decisions dropped for taking too long"
)
RULES_INFO = Gauge("pz_edge_rules_info", "The rules version deciding (value 1)", ["version"])
RULES_REJECTED = Counter("pz_edge_rules_rejected_total", "Rule sets from snapshots refused as invalid")
RULE_ERRORS = Counter(
    "pz_edge_rule_errors_total", "Slots decided by their default after a rule raised", ["slot"]
)
EXPOSURES = Counter("pz_edge_exposures_total", "Experiment exposures logged", ["experiment"])
DELTA_FETCH_WAIT_MS = Gauge(
    "pz_edge_delta_fetch_max_wait_ms",
    "The delta consumer's fetch wait: PZ_FETCH_MAX_WAIT_MS, doubled while the broker answered with nothing "
    "below its high-water mark",
)
