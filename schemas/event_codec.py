"""Events on Kafka: a compact FlatBuffer with file identifier PZEV."""

from __future__ import annotations

import flatbuffers
from flatbuffers import util

from schemas._generated import pz_generated as fb
from schemas.errors import DecodeError
from schemas.events import Attribution, Event

EVENT_IDENTIFIER = b"PZEV"
_TYPE_CODES = {"page_view": 0, "click": 1, "add_to_cart": 2, "purchase": 3, "exposure": 4}
_TYPE_NAMES = {code: name for name, code in _TYPE_CODES.items()}


def encode_event(event: Event) -> bytes:
    builder = flatbuffers.Builder(128)
    attribution_off = 0
    if event.attribution is not None:
        a = event.attribution
        slot, variant, experiment, rule = (
            builder.CreateString(s) for s in (a.slot, a.variant, a.experiment, a.rule)
        )
        fb.AttributionStart(builder)
        fb.AttributionAddSlot(builder, slot)
        fb.AttributionAddVariant(builder, variant)
        fb.AttributionAddExperiment(builder, experiment)
        fb.AttributionAddRule(builder, rule)
        attribution_off = fb.AttributionEnd(builder)
    item, category, path, session = (
        builder.CreateString(s) for s in (event.item, event.category, event.path, event.session)
    )
    fb.EventStart(builder)
    fb.EventAddType(builder, _TYPE_CODES[event.type])
    fb.EventAddUserKey(builder, event.user_key)
    fb.EventAddClientMs(builder, event.client_ms)
    fb.EventAddServerMs(builder, event.server_ms)
    fb.EventAddItem(builder, item)
    fb.EventAddCategory(builder, category)
    fb.EventAddValue(builder, event.value)
    fb.EventAddPath(builder, path)
    fb.EventAddSession(builder, session)
    if attribution_off:
        fb.EventAddAttribution(builder, attribution_off)
    builder.Finish(fb.EventEnd(builder), file_identifier=EVENT_IDENTIFIER)
    return bytes(builder.Output())


def _text(raw: bytes | None) -> str:
    return raw.decode() if raw else ""


def decode_event(data: bytes) -> Event:
    """Decode an event record; raises DecodeError on anything that is not a well-formed event."""
    if len(data) < 8 or not util.BufferHasIdentifier(data, 0, EVENT_IDENTIFIER):
        raise DecodeError("not a pz event (file identifier PZEV missing)")
    try:
        ev = fb.Event.GetRootAs(data, 0)
        type_name = _TYPE_NAMES.get(ev.Type())
        if type_name is None:
            raise DecodeError(f"unknown event type code {ev.Type()}")
        raw_attr = ev.Attribution()
        attribution = None
        if raw_attr is not None:
            attribution = Attribution(
                slot=_text(raw_attr.Slot()),
                variant=_text(raw_attr.Variant()),
                experiment=_text(raw_attr.Experiment()),
                rule=_text(raw_attr.Rule()),
            )
        return Event(
            type=type_name,
            user_key=ev.UserKey(),
            client_ms=ev.ClientMs(),
            server_ms=ev.ServerMs(),
            item=_text(ev.Item()),
            category=_text(ev.Category()),
            value=ev.Value(),
            path=_text(ev.Path()),
            session=_text(ev.Session()),
            attribution=attribution,
        )
    except DecodeError:
        raise
    except Exception as exc:  # torn or hostile buffers fail deep inside flatbuffers
        raise DecodeError(f"malformed event buffer: {exc}") from exc
