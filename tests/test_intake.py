"""Each consumed record: applied, dead-lettered (unreadable) or sent to the late topic (past the
allowed lateness), with browser clocks that run ahead clamped to the edge's receive time."""

from __future__ import annotations

import dataclasses

from aggregator.intake import IntakeSettings, Routed, admit
from schemas.event_codec import encode_event
from schemas.events import VALUE_MAX, Event
from schemas.topics import DLQ_TOPIC, LATE_TOPIC

SETTINGS = IntakeSettings(allowed_lateness_s=600, max_clock_skew_ms=60_000)
NOW_S = 1_800_000_000


def record(client_s: int, server_s: int = NOW_S) -> bytes:
    return encode_event(Event("page_view", 7, client_s * 1000, server_s * 1000, item="p1", category="c"))


def test_an_on_time_event_is_applied_as_sent() -> None:
    event = admit(record(NOW_S - 30), NOW_S, SETTINGS)
    assert isinstance(event, Event) and event.client_ms == (NOW_S - 30) * 1000


def test_an_event_within_the_allowed_lateness_is_still_applied() -> None:
    assert isinstance(admit(record(NOW_S - 600), NOW_S, SETTINGS), Event)


def test_an_event_past_the_allowed_lateness_goes_to_the_late_topic_with_the_reason() -> None:
    routed = admit(record(NOW_S - 601), NOW_S, SETTINGS)
    assert isinstance(routed, Routed) and routed.topic == LATE_TOPIC
    assert (
        "601 s behind the partition's watermark" in routed.reason
        and "allowed lateness 600 s" in routed.reason
    )


def test_before_any_watermark_nothing_is_late() -> None:
    assert isinstance(admit(record(NOW_S - 86_400), 0, SETTINGS), Event)


def test_a_clock_running_ahead_is_clamped_to_the_receive_time_plus_the_allowed_skew() -> None:
    event = admit(record(NOW_S + 3600), NOW_S, SETTINGS)
    assert isinstance(event, Event) and event.client_ms == (NOW_S + 60) * 1000
    ahead_within_skew = admit(record(NOW_S + 30), NOW_S, SETTINGS)
    assert isinstance(ahead_within_skew, Event) and ahead_within_skew.client_ms == (NOW_S + 30) * 1000


def test_an_unreadable_record_goes_to_the_dead_letter_topic() -> None:
    routed = admit(b"\x00garbage", NOW_S, SETTINGS)
    assert isinstance(routed, Routed) and routed.topic == DLQ_TOPIC and routed.reason


def test_a_value_no_edge_would_accept_goes_to_the_dead_letter_topic() -> None:
    for value in (float("nan"), float("inf"), -1.0, VALUE_MAX * 10):
        raw = encode_event(Event("add_to_cart", 7, NOW_S * 1000, NOW_S * 1000, item="p1", value=value))
        routed = admit(raw, NOW_S, SETTINGS)
        assert isinstance(routed, Routed) and routed.topic == DLQ_TOPIC and "value" in routed.reason


def test_ids_no_edge_would_accept_go_to_the_dead_letter_topic_with_the_field() -> None:
    """Another producer's record with a hostile item id never reaches a profile (and a page)."""
    event = Event("page_view", 7, NOW_S * 1000, NOW_S * 1000, item="p1")
    hostile = {
        "item": dataclasses.replace(event, item='x" onmouseover="alert(1)'),
        "category": dataclasses.replace(event, category="<script>"),
        "session": dataclasses.replace(event, session="a" * 65),
    }
    for field, bad in hostile.items():
        raw = encode_event(bad)
        routed = admit(raw, NOW_S, SETTINGS)
        assert isinstance(routed, Routed) and routed.topic == DLQ_TOPIC, field
        assert routed.reason.startswith(f"{field}: "), routed.reason
    no_item = encode_event(Event("purchase", 7, NOW_S * 1000, NOW_S * 1000, value=3.0))
    routed = admit(no_item, NOW_S, SETTINGS)
    assert isinstance(routed, Routed) and routed.reason == "item: required for purchase"
    relative = encode_event(Event("page_view", 7, NOW_S * 1000, NOW_S * 1000, path="relative"))
    routed = admit(relative, NOW_S, SETTINGS)
    assert isinstance(routed, Routed) and routed.reason.startswith("path: ")
