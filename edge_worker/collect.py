"""`POST /pz/collect`: validate one interaction event, stamp it, and queue it for Kafka."""

from __future__ import annotations

import time
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge_worker import metrics
from edge_worker.attribution import AttributionSigner
from edge_worker.event_sink import EventSink, OutboundRecord
from edge_worker.identity import Identity
from schemas.bounded_body import read_bounded
from schemas.errors import ValidationError
from schemas.event_codec import encode_event
from schemas.events import MAX_BODY_BYTES, Attribution, Event, parse_browser_event
from schemas.topics import event_topic, partition_for_key

# sendBeacon sends a string as text/plain; fetch() from pz.js sends application/json.
_ACCEPTED_TYPES = ("application/json", "text/plain")
_ACCEPTED = b'{"accepted":true}'
_FIELD_LABELS = frozenset(
    {"body", "type", "ts", "item", "category", "value", "path", "session", "attribution"}
)


def _reject(status: int, error: str, field: str, reason: str, metric_reason: str) -> Response:
    metrics.EVENTS_REJECTED.labels(metric_reason).inc()
    return JSONResponse({"error": error, "field": field, "reason": reason}, status_code=status)


def _credited(event: Event, attribution: AttributionSigner) -> Event:
    """The event with its attribution token replaced by what the token verifiably says."""
    if event.attribution is None:
        return event
    credit = attribution.verify(event.attribution.token)
    if credit is None:
        raise ValidationError("attribution.token", "does not verify")
    if credit.item != event.item:
        raise ValidationError("attribution.token", f"was issued for another item than {event.item!r}")
    return replace(event, attribution=Attribution(slot=credit.slot, variant=credit.variant, rule=credit.rule))


async def collect_endpoint(
    request: Request,
    identity: Identity,
    sink: EventSink,
    attribution: AttributionSigner,
    *,
    max_skew_ms: int,
    partitions: int,
) -> Response:
    if request.method != "POST":
        response = _reject(405, "method_not_allowed", "method", "use POST", "method")
        response.headers["Allow"] = "POST"
        return response
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _ACCEPTED_TYPES:
        return _reject(
            415,
            "unsupported_media_type",
            "content-type",
            f"expected one of {', '.join(_ACCEPTED_TYPES)}",
            "content_type",
        )
    body = await read_bounded(request, MAX_BODY_BYTES)
    if body is None:
        return _reject(400, "invalid_event", "body", f"larger than {MAX_BODY_BYTES} bytes", "too_large")
    try:
        event = parse_browser_event(
            body, user_key=identity.key, server_ms=int(time.time() * 1000), max_skew_ms=max_skew_ms
        )
        event = _credited(event, attribution)
    except ValidationError as exc:
        top_field = exc.field.split(".")[0]
        label = top_field if top_field in _FIELD_LABELS else "unknown_field"  # bounded label values
        return _reject(400, "invalid_event", exc.field, exc.reason, label)
    record = OutboundRecord(
        topic=event_topic(event.type),
        partition=partition_for_key(event.user_key, partitions),
        key=event.user_key.to_bytes(8, "big"),
        value=encode_event(event),
    )
    if not sink.offer(record):
        response = _reject(
            503, "overloaded", "body", "event buffer full; the broker is unreachable", "buffer_full"
        )
        response.headers["Retry-After"] = "1"
        return response
    metrics.EVENTS_ACCEPTED.labels(event.type).inc()
    return Response(_ACCEPTED, status_code=202, media_type="application/json")
