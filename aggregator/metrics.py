"""Prometheus metrics of the aggregator (default registry, exposed at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("pz_aggregator_events_total", "Events consumed and applied", ["topic"])
DEAD_LETTERS = Counter("pz_aggregator_dead_letters_total", "Records sent to the dead-letter topic", ["topic"])
LATE_EVENTS = Counter(
    "pz_aggregator_late_events_total", "Events past the allowed lateness, sent to the late topic", ["topic"]
)
CLOCK_SKEWED = Counter(
    "pz_aggregator_clock_skewed_events_total", "Events whose client time was ahead of the allowed skew"
)
EVENT_RATE = Gauge("pz_aggregator_event_rate", "Events applied per second over the last tick", ["type"])
EVENT_RATE_BASELINE = Gauge(
    "pz_aggregator_event_rate_baseline", "The recent normal of the event rate", ["type"]
)
EVENT_RATE_ALARM = Gauge(
    "pz_aggregator_event_rate_alarm",
    "1 while the rate is a spike or a drop against its baseline",
    ["type", "direction"],
)
EVENT_RATE_ALARMS = Counter(
    "pz_aggregator_event_rate_alarms_total", "Rate alarms raised", ["type", "direction"]
)
CONSUMER_LAG = Gauge(
    "pz_aggregator_consumer_lag",
    "Records behind the newest in the partition, from the last fetch response",
    ["topic", "partition"],
)
REDIS_USED_BYTES = Gauge("pz_aggregator_redis_used_bytes", "Memory Redis reports in use (all state)")
WATERMARK = Gauge("pz_aggregator_watermark_seconds", "Newest event time seen, per partition", ["partition"])
BATCH_FAILURES = Counter(
    "pz_aggregator_batch_failures_total", "Batches rewound after an error (Redis, Kafka, other)"
)
FENCED_COMMITS = Counter(
    "pz_aggregator_fenced_commits_total",
    "Commits refused because another member committed the partition first",
)
DELTAS = Counter("pz_aggregator_deltas_total", "Delta batches published")
COMMITS = Counter("pz_aggregator_commits_total", "Partition batches committed to Redis (state + offsets)")
BATCH_SECONDS = Histogram(
    "pz_aggregator_batch_seconds",
    "Time to process one consumed batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SNAPSHOT_SECONDS = Histogram("pz_aggregator_snapshot_build_seconds", "Time to build and sign a snapshot")
SNAPSHOT_USERS = Gauge("pz_aggregator_snapshot_users", "Users in the latest snapshot")
ASSIGNED_PARTITIONS = Gauge("pz_aggregator_assigned_partitions", "Partitions this member owns")
RULES_INFO = Gauge("pz_aggregator_rules_info", "The rules in force (value 1)", ["version", "origin"])
RULES_REJECTED = Counter("pz_aggregator_rules_rejected_total", "Rules refused as invalid", ["source"])
INVENTORY_REJECTED = Counter("pz_aggregator_inventory_rejected_total", "Inventory files refused as invalid")
STALLED_PARTITIONS = Gauge(
    "pz_aggregator_stalled_partitions",
    "Owned topic-partitions with records beyond the committed offset and no progress for PZ_STALL_AFTER_S",
)
STALLS = Counter("pz_aggregator_stalls_total", "Times a topic-partition was found stalled", ["topic"])
STALL_RECOVERIES = Counter(
    "pz_aggregator_stall_recoveries_total", "Recovery actions on stalled partitions", ["action"]
)
STATE_RESETS = Counter(
    "pz_aggregator_state_resets_total",
    "Partitions found with their Redis state lost (no position although deltas were published), rebuilt",
    ["partition"],
)
STATE_ROLLBACKS = Counter(
    "pz_aggregator_state_rollbacks_total",
    "Positions found older in Redis than this process committed (Redis lost its latest writes), replayed",
)
DEPENDENCY_UP = Gauge("pz_aggregator_dependency_up", "1 while the dependency answers", ["dependency"])
LOG_TRUNCATIONS = Counter(
    "pz_aggregator_log_truncations_total",
    "Topic-partitions whose log was found ending below the committed offset (broker lost records)",
    ["topic"],
)
FETCH_WAIT_MS = Gauge(
    "pz_aggregator_fetch_max_wait_ms",
    "The consumer's fetch wait: PZ_FETCH_MAX_WAIT_MS, doubled while the broker answered with nothing below "
    "its high-water mark",
)
