"""What becomes of each consumed record before it touches any state.

Applied, when it decodes and is on time; sent to the dead-letter topic when it cannot be read; sent
to the late topic when its event time is further behind the partition's watermark than the allowed
lateness (the windows it belonged to have been judged already). Nothing is dropped silently: both
topics keep the record with the reason, and both are counted.

Browser clocks are not trusted. The edge bounds the skew it accepts, and the aggregator defends
again: an event time ahead of the edge's receive time by more than `max_clock_skew_ms` is taken as
that bound, so one wrong clock cannot drag a partition's watermark into the future and make every
honest event late.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from aggregator import metrics
from schemas.errors import DecodeError
from schemas.event_codec import decode_event
from schemas.events import Event, record_problem
from schemas.topics import DLQ_TOPIC, LATE_TOPIC


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    allowed_lateness_s: int = 1800
    max_clock_skew_ms: int = 600_000  # the same variable and default as the edge (PZ_MAX_CLOCK_SKEW_MS)


@dataclass(frozen=True, slots=True)
class Routed:
    """A record that is not applied: where it goes instead, and why."""

    topic: str
    reason: str


def admit(raw: bytes, watermark_s: int, settings: IntakeSettings) -> Event | Routed:
    """The event to apply, or where the record goes instead. `watermark_s` 0: none yet."""
    try:
        event = decode_event(raw)
    except DecodeError as exc:
        return Routed(DLQ_TOPIC, str(exc))
    problem = record_problem(event)  # the edge checks; other producers may not
    if problem is not None:
        return Routed(DLQ_TOPIC, problem)
    latest_ms = event.server_ms + settings.max_clock_skew_ms
    if event.client_ms > latest_ms:
        metrics.CLOCK_SKEWED.inc()
        event = dataclasses.replace(event, client_ms=latest_ms)
    t_s = event.client_ms // 1000
    behind_s = watermark_s - t_s
    if watermark_s and behind_s > settings.allowed_lateness_s:
        return Routed(
            LATE_TOPIC,
            f"late: event time {t_s} is {behind_s} s behind the partition's watermark {watermark_s} "
            f"(allowed lateness {settings.allowed_lateness_s} s)",
        )
    return event
