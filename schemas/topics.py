"""Kafka topic names shared by the edge and the aggregator."""

from __future__ import annotations

EVENT_TOPIC_PREFIX = "pz.events."
DLQ_TOPIC = "pz.events.dlq"
# Events further behind their partition's watermark than the allowed lateness: kept, not applied.
LATE_TOPIC = "pz.events.late"
DELTAS_TOPIC = "pz.deltas"
# Rules updates (schemas/rules/channel.py), partition 0: edges take a new rule set in milliseconds
# instead of at their next snapshot.
RULES_TOPIC = "pz.rules"
INTERACTION_TYPES = ("page_view", "click", "add_to_cart", "purchase")
EVENT_TOPICS = tuple(EVENT_TOPIC_PREFIX + t for t in INTERACTION_TYPES)
EXPOSURE_TOPIC = EVENT_TOPIC_PREFIX + "exposure"
ALL_TOPICS = (*EVENT_TOPICS, EXPOSURE_TOPIC, DLQ_TOPIC, LATE_TOPIC, DELTAS_TOPIC, RULES_TOPIC)


def event_topic(event_type: str) -> str:
    return EVENT_TOPIC_PREFIX + event_type


def partition_for_key(user_key: int, partitions: int) -> int:
    """Partition of a user key: the same in every event topic and in pz.deltas.

    The edge sets the partition explicitly instead of relying on a client's key hash, so that
    co-partitioning holds whatever produces the records.
    """
    return user_key % partitions
