"""Events on Kafka: a compact FlatBuffer with file identifier PZEV.

The edge encodes every beacon and the aggregator decodes every event with the C code in
schemas/_event_records.c (several times faster); encode_event_in_python and decode_event_in_python
are its specification, and tests hold the two equal."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import flatbuffers
from flatbuffers import util

from schemas import _event_records
from schemas._generated import pz_generated as fb
from schemas.errors import DecodeError
from schemas.events import Attribution, Event

EVENT_IDENTIFIER = b"PZEV"
_TYPE_CODES = {"page_view": 0, "click": 1, "add_to_cart": 2, "purchase": 3, "exposure": 4}
_TYPE_NAMES = {code: name for name, code in _TYPE_CODES.items()}


def encode_event(event: Event) -> bytes:
    return _event_records.encode_event(event, _TYPE_CODES)


def encode_event_in_python(event: Event) -> bytes:
    """The specification of encode_event(): the FlatBuffers builder's record (the bytes may differ,
    the event they decode to may not)."""
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


_U8 = struct.Struct("<B").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_I64 = struct.Struct("<q").unpack_from
_F64 = struct.Struct("<d").unpack_from


_MAX_FIELDS = 16  # more than any table here has; later fields are ignored, as old readers do
_FIELD_OFFSETS = [struct.Struct(f"<{n}H").unpack_from for n in range(_MAX_FIELDS + 1)]


class _Table:
    """One FlatBuffers table read in place: the vtable is found once, each field is one unpack.
    (The generated accessors redo that lookup per field; this is the aggregator's hottest loop.)"""

    __slots__ = ("data", "pos", "offsets", "size")

    def __init__(self, data: bytes, pos: int) -> None:
        size = len(data)
        if not 0 <= pos <= size - 4:
            raise DecodeError("table outside the buffer")
        vt = pos - _I32(data, pos)[0]
        if not 0 <= vt <= size - 4:
            raise DecodeError("vtable outside the buffer")
        fields = min(max(0, (_U16(data, vt)[0] - 4) // 2), _MAX_FIELDS)
        if vt + 4 + 2 * fields > size:
            raise DecodeError("vtable runs past the buffer")
        self.data, self.pos, self.size = data, pos, size
        self.offsets: tuple[int, ...] = _FIELD_OFFSETS[fields](data, vt + 4)  # every field's offset at once

    def _field(self, index: int, width: int) -> int:
        """Absolute position of field `index`, or 0 when absent."""
        offsets = self.offsets
        offset = offsets[index] if index < len(offsets) else 0
        if not offset:
            return 0
        at = self.pos + offset
        if at + width > self.size:
            raise DecodeError("field outside the buffer")
        return at

    def number(self, index: int, unpack: Callable[[bytes, int], tuple[Any, ...]], width: int) -> Any:
        at = self._field(index, width)
        return unpack(self.data, at)[0] if at else 0

    def text(self, index: int) -> str:
        at = self._field(index, 4)
        if not at:
            return ""
        start = at + _U32(self.data, at)[0]
        if start + 4 > self.size:
            raise DecodeError("string outside the buffer")
        length = _U32(self.data, start)[0]
        if start + 4 + length > self.size:
            raise DecodeError("string runs past the buffer")
        return self.data[start + 4 : start + 4 + length].decode()

    def table(self, index: int) -> _Table | None:
        at = self._field(index, 4)
        return _Table(self.data, at + _U32(self.data, at)[0]) if at else None


_READER_TYPES = (Event, Attribution, DecodeError, _TYPE_NAMES)


def decode_event(data: bytes) -> Event:
    """Decode an event record; raises DecodeError on anything that is not a well-formed event."""
    return _event_records.decode_event(data, _READER_TYPES)


def decode_event_in_python(data: bytes) -> Event:
    """The specification of decode_event()."""
    if len(data) < 8 or not util.BufferHasIdentifier(data, 0, EVENT_IDENTIFIER):
        raise DecodeError("not a pz event (file identifier PZEV missing)")
    try:
        ev = _Table(data, _U32(data, 0)[0])
        code = ev.number(0, _U8, 1)
        type_name = _TYPE_NAMES.get(code)
        if type_name is None:
            raise DecodeError(f"unknown event type code {code}")
        raw_attr = ev.table(9)
        attribution = None
        if raw_attr is not None:
            attribution = Attribution(
                slot=raw_attr.text(0),
                variant=raw_attr.text(1),
                experiment=raw_attr.text(2),
                rule=raw_attr.text(3),
            )
        return Event(
            type=type_name,
            user_key=ev.number(1, _U64, 8),
            client_ms=ev.number(2, _I64, 8),
            server_ms=ev.number(3, _I64, 8),
            item=ev.text(4),
            category=ev.text(5),
            value=float(ev.number(6, _F64, 8)),
            path=ev.text(7),
            session=ev.text(8),
            attribution=attribution,
        )
    except DecodeError:
        raise
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"malformed event buffer: {exc}") from exc
