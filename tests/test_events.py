from __future__ import annotations

import orjson
import pytest

from schemas.errors import ValidationError
from schemas.events import MAX_BODY_BYTES, parse_browser_event

NOW_MS = 1_800_000_000_000
SKEW_MS = 60_000


def parse(body: object) -> object:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse_browser_event(raw, user_key=7, server_ms=NOW_MS, max_skew_ms=SKEW_MS)


def test_a_valid_page_view_is_stamped_with_user_key_and_server_time() -> None:
    event = parse(
        {"type": "page_view", "item": "p0042", "category": "watches", "ts": NOW_MS - 5, "path": "/p"}
    )
    assert event.user_key == 7  # type: ignore[attr-defined]
    assert event.server_ms == NOW_MS  # type: ignore[attr-defined]
    assert event.client_ms == NOW_MS - 5  # type: ignore[attr-defined]
    assert event.item == "p0042"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "field", "reason_part"),
    [
        (b"{not json", "body", "malformed JSON"),
        (b"[1,2]", "body", "JSON object"),
        ({"item": "x", "ts": NOW_MS}, "type", "required"),
        ({"type": "teleport", "ts": NOW_MS}, "type", "must be one of"),
        ({"type": 3, "ts": NOW_MS}, "type", "must be one of"),
        ({"type": "page_view"}, "ts", "required"),
        ({"type": "page_view", "ts": "now"}, "ts", "integer"),
        ({"type": "page_view", "ts": True}, "ts", "integer"),
        ({"type": "page_view", "ts": NOW_MS + SKEW_MS + 1}, "ts", "away from server time"),
        ({"type": "page_view", "ts": NOW_MS - SKEW_MS - 1}, "ts", "away from server time"),
        ({"type": "click", "ts": NOW_MS}, "item", "required for click"),
        ({"type": "page_view", "ts": NOW_MS, "item": 42}, "item", "string"),
        ({"type": "page_view", "ts": NOW_MS, "item": "x" * 129}, "item", "longer than"),
        ({"type": "page_view", "ts": NOW_MS, "item": "<script>"}, "item", "letters, digits"),
        ({"type": "purchase", "ts": NOW_MS, "item": "p1", "value": -1}, "value", "between"),
        ({"type": "purchase", "ts": NOW_MS, "item": "p1", "value": "9"}, "value", "number"),
        ({"type": "page_view", "ts": NOW_MS, "path": "relative"}, "path", "start with /"),
        ({"type": "page_view", "ts": NOW_MS, "admin": True}, "admin", "unknown field"),
        ({"type": "click", "ts": NOW_MS, "item": "p1", "attribution": "recs"}, "attribution", "object"),
        (
            {"type": "click", "ts": NOW_MS, "item": "p1", "attribution": {"x": "1"}},
            "attribution.x",
            "unknown",
        ),
        (
            {"type": "click", "ts": NOW_MS, "item": "p1", "attribution": {"slot": "recs"}},
            "attribution.slot",
            "unknown",
        ),
        (
            {"type": "click", "ts": NOW_MS, "item": "p1", "attribution": {"token": 5}},
            "attribution.token",
            "string",
        ),
        (
            {"type": "click", "ts": NOW_MS, "item": "p1", "attribution": {"token": "a b"}},
            "attribution.token",
            "not an",
        ),
    ],
)
def test_bad_events_name_the_field_and_the_reason(body: object, field: str, reason_part: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(body)
    assert caught.value.field == field
    assert reason_part in caught.value.reason


def test_a_body_over_the_limit_is_refused_before_parsing() -> None:
    body = b'{"type":"page_view","ts":1,"path":"/' + b"a" * MAX_BODY_BYTES + b'"}'
    with pytest.raises(ValidationError) as caught:
        parse(body)
    assert caught.value.field == "body"
