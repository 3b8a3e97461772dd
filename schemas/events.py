"""The interaction event: the model and strict validation of what a browser sends."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.errors import ValidationError

EVENT_TYPES = ("page_view", "click", "add_to_cart", "purchase")
ITEM_REQUIRED = frozenset({"click", "add_to_cart", "purchase"})
MAX_BODY_BYTES = 16 * 1024

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]*")
_ID_MAX = 128
_NAME_MAX = 64
_PATH_MAX = 2048
VALUE_MAX = 1e9
_ALLOWED_FIELDS = frozenset({"type", "ts", "item", "category", "value", "path", "session", "attribution"})
# From a browser, attribution is only the token the edge signed (it expands it after verifying).
_ATTRIBUTION_FIELDS = frozenset({"token"})
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_TOKEN_MAX = 512


@dataclass(frozen=True, slots=True)
class Attribution:
    slot: str = ""
    variant: str = ""
    experiment: str = ""
    rule: str = ""
    token: str = ""  # as received from a browser, before the edge verified and expanded it


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    user_key: int
    client_ms: int
    server_ms: int
    item: str = ""
    category: str = ""
    value: float = 0.0
    path: str = ""
    session: str = ""
    attribution: Attribution | None = None


def _identifier(body: dict[str, Any], field: str, max_len: int) -> str:
    value = body.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise ValidationError(field, f"longer than {max_len} characters")
    if not _ID_RE.fullmatch(value):
        raise ValidationError(field, "may hold only letters, digits and . _ : - and must start alphanumeric")
    return value


def _attribution(raw: Any) -> Attribution | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValidationError("attribution", "must be an object")
    unknown = set(raw) - _ATTRIBUTION_FIELDS
    if unknown:
        raise ValidationError(f"attribution.{sorted(unknown)[0]}", "unknown field")
    token = raw.get("token")
    if not isinstance(token, str):
        raise ValidationError("attribution.token", "required, a string")
    if len(token) > _TOKEN_MAX or not _TOKEN_RE.fullmatch(token):
        raise ValidationError("attribution.token", "not an attribution token")
    return Attribution(token=token)


def parse_browser_event(body: bytes, *, user_key: int, server_ms: int, max_skew_ms: int) -> Event:
    """Validate one event as a browser sends it and stamp it with the user key and server time.

    Raises ValidationError naming the first offending field and why.
    """
    if len(body) > MAX_BODY_BYTES:
        raise ValidationError("body", f"larger than {MAX_BODY_BYTES} bytes")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"malformed JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValidationError("body", "must be a JSON object")
    unknown = set(parsed) - _ALLOWED_FIELDS
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown field")

    event_type = parsed.get("type")
    if event_type is None:
        raise ValidationError("type", "required")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise ValidationError("type", f"must be one of {', '.join(EVENT_TYPES)}")

    ts = parsed.get("ts")
    if ts is None:
        raise ValidationError("ts", "required (client time, milliseconds since the epoch)")
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ValidationError("ts", "must be an integer number of milliseconds")
    if abs(ts - server_ms) > max_skew_ms:
        raise ValidationError("ts", f"more than {max_skew_ms} ms away from server time")

    item = _identifier(parsed, "item", _ID_MAX)
    if not item and event_type in ITEM_REQUIRED:
        raise ValidationError("item", f"required for {event_type}")

    value = parsed.get("value", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError("value", "must be a number")
    if not math.isfinite(value) or not 0 <= value <= VALUE_MAX:
        raise ValidationError("value", f"must be between 0 and {VALUE_MAX:g}")

    path = parsed.get("path", "")
    if not isinstance(path, str):
        raise ValidationError("path", "must be a string")
    if len(path) > _PATH_MAX:
        raise ValidationError("path", f"longer than {_PATH_MAX} characters")
    if path and not path.startswith("/"):
        raise ValidationError("path", "must start with /")

    return Event(
        type=event_type,
        user_key=user_key,
        client_ms=ts,
        server_ms=server_ms,
        item=item,
        category=_identifier(parsed, "category", _NAME_MAX),
        value=float(value),
        path=path,
        session=_identifier(parsed, "session", _NAME_MAX),
        attribution=_attribution(parsed.get("attribution")),
    )


def record_problem(event: Event) -> str | None:
    """What a decoded event breaks of the rules the edge enforces at collection, as "field: reason",
    or None. The aggregator checks every record with it: other producers may not have been as strict,
    and ids end up in pages (pz.js and the injector escape them, and still should not have to)."""
    for field, value, max_len in (
        ("item", event.item, _ID_MAX),
        ("category", event.category, _NAME_MAX),
        ("session", event.session, _NAME_MAX),
    ):
        if value and len(value) > max_len:
            return f"{field}: longer than {max_len} characters"
        if value and not _ID_RE.fullmatch(value):
            return f"{field}: may hold only letters, digits and . _ : - and must start alphanumeric"
    if not event.item and event.type in ITEM_REQUIRED:
        return f"item: required for {event.type}"
    if not (math.isfinite(event.value) and 0 <= event.value <= VALUE_MAX):
        return f"value: must be between 0 and {VALUE_MAX:g}, got {event.value!r}"
    if len(event.path) > _PATH_MAX or (event.path and not event.path.startswith("/")):
        return f"path: must start with / and be at most {_PATH_MAX} characters"
    return None
