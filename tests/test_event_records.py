"""Event records: the C reader and writer (schemas/_event_records.c) against its Python specification."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas._generated import pz_generated as fb
from schemas.errors import DecodeError
from schemas.event_codec import decode_event, decode_event_in_python, encode_event, encode_event_in_python
from schemas.events import Attribution, Event

texts = st.text(max_size=12)
attributions = st.one_of(st.none(), st.builds(Attribution, texts, texts, texts, texts))
events = st.builds(
    Event,
    st.sampled_from(["page_view", "click", "add_to_cart", "purchase", "exposure"]),
    st.integers(0, 2**64 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**63), 2**63 - 1),
    texts,
    texts,
    st.floats(allow_nan=False),
    texts,
    texts,
    attributions,
)


def outcome(decode: object, data: bytes) -> object:
    try:
        event = decode(data)  # type: ignore[operator]
    except DecodeError as exc:
        return ("DecodeError", str(exc))
    return repr(dataclasses.astuple(event))  # repr: a NaN value compares equal to itself


@settings(max_examples=300, deadline=None)
@given(events)
def test_the_c_reader_decodes_what_was_encoded(event: Event) -> None:
    data = encode_event_in_python(event)
    assert decode_event(data) == event == decode_event_in_python(data)


def generated_fields(data: bytes) -> tuple[object, ...]:
    """The record as FlatBuffers' generated accessors read it."""
    record = fb.Event.GetRootAs(data, 0)
    texts = (record.Item(), record.Category(), record.Path(), record.Session())
    attribution = record.Attribution()
    by_attribution = (
        None
        if attribution is None
        else (attribution.Slot(), attribution.Variant(), attribution.Experiment(), attribution.Rule())
    )
    return (
        record.Type(),
        record.UserKey(),
        record.ClientMs(),
        record.ServerMs(),
        record.Value(),
        texts,
        by_attribution,
    )


@settings(max_examples=300, deadline=None)
@given(events)
def test_the_c_writer_writes_what_every_reader_reads_back(event: Event) -> None:
    data = encode_event(event)
    assert decode_event(data) == event == decode_event_in_python(data)
    assert generated_fields(data) == generated_fields(encode_event_in_python(event))


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (Event("wishlist", 1, 1, 1), KeyError),
        (Event("page_view", -1, 1, 1), OverflowError),
        (Event("page_view", 1, 1, 1, item="\ud800"), UnicodeEncodeError),
    ],
)
def test_events_that_cannot_be_written_are_refused_by_both(event: Event, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode_event(event)
    with pytest.raises((error, TypeError, ValueError)):  # the FlatBuffers builder words some its own way
        encode_event_in_python(event)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4), st.integers(0, 400))
def test_damaged_records_get_the_same_answer_from_both(
    event: Event, damage: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(encode_event(event))
    for position, byte in damage:
        if position < len(data):
            data[position] = byte
    for record in (bytes(data), bytes(data[:cut])):
        assert outcome(decode_event, record) == outcome(decode_event_in_python, record)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_get_the_same_answer_from_both(data: bytes) -> None:
    for record in (data, b"\x0c\x00\x00\x00PZEV" + data):
        assert outcome(decode_event, record) == outcome(decode_event_in_python, record)
