from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import (
    Attribution,
    DecodeError,
    DeltaBatch,
    Event,
    ItemHistory,
    PartitionPosition,
    Profile,
    SignatureError,
    SigningKey,
    SnapshotContent,
    SnapshotReader,
    decode_delta,
    decode_event,
    encode_delta,
    encode_event,
    encode_snapshot,
    open_sealed,
    seal,
)
from schemas._generated import pz_generated as fb

KEY = SigningKey("k1", b"secret-one")
KEYS = {"k1": KEY}


def profile(key: int, item: str = "p1") -> Profile:
    return Profile(
        key=key,
        items=(
            ItemHistory(item, "shoes", (300, 200, 100)),
            ItemHistory(item, "shoes", (250,), "cart", 19.99),
            ItemHistory("p9", "hats", (90,), "purchase"),
        ),
        segments=("s",),
        updated_ms=5_000,
    )


def test_event_round_trip_keeps_every_field() -> None:
    event = Event(
        "click", 2**64 - 1, 1, 2, "p1", "shoes", 9.5, "/x", "sess", Attribution("recs", "b", "e1", "r1")
    )
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize(
    "data", [b"", b"garbage-bytes-here", encode_delta(DeltaBatch(0, 1, 0, ())), b"\0" * 64]
)
def test_anything_but_an_event_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_event(data)


def test_truncated_event_is_a_decode_error_not_a_crash() -> None:
    data = encode_event(Event("page_view", 1, 1, 2, "p1"))
    with pytest.raises(DecodeError):
        decode_event(data[: len(data) // 2])


def test_snapshot_finds_users_by_binary_search_in_place() -> None:
    users = [profile(k) for k in (50, 7, 2**63 + 5, 1000)]
    content = SnapshotContent(
        "s1",
        123,
        {0: PartitionPosition(4, 17)},
        ("p1",),
        {"shoes": ("p1", "p2")},
        users,
        "rules-7",
        b'{"r":1}',
        ("p9", "p2"),
    )
    reader = SnapshotReader(open_sealed(seal(encode_snapshot(content), KEY), KEYS))
    assert reader.snapshot_id == "s1" and reader.user_count == 4 and reader.rules_version == "rules-7"
    assert reader.rules_json == b'{"r":1}' and reader.out_of_stock == {"p2", "p9"}
    assert reader.positions == {0: PartitionPosition(4, 17)}
    assert reader.popular_by_category == {"shoes": ("p1", "p2")}
    for user in users:
        assert reader.find_user(user.key) == user
    assert reader.find_user(8) is None
    assert reader.find_user(0) is None


def test_delta_round_trip() -> None:
    batch = DeltaBatch(3, 9, 77, (profile(1), profile(2, "p8")), (5, 6))
    assert decode_delta(open_sealed(seal(encode_delta(batch), KEY), KEYS)) == batch
    empty = DeltaBatch(0, 1, 2_000, (), (7,))
    assert decode_delta(encode_delta(empty)) == empty


def test_tampered_payload_fails_verification() -> None:
    sealed = bytearray(seal(encode_delta(DeltaBatch(0, 1, 0, (profile(1),))), KEY))
    sealed[-20] ^= 0x01
    with pytest.raises((SignatureError, DecodeError)):
        open_sealed(bytes(sealed), KEYS)


def test_wrong_secret_and_unknown_key_id_are_refused() -> None:
    sealed = seal(b"payload", SigningKey("k1", b"another-secret"))
    with pytest.raises(SignatureError, match="does not verify"):
        open_sealed(sealed, KEYS)
    with pytest.raises(SignatureError, match="unknown signing key"):
        open_sealed(seal(b"payload", SigningKey("k2", b"x")), KEYS)


def test_not_an_envelope_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        open_sealed(encode_snapshot(SnapshotContent("s", 0, {}, (), {}, ())), KEYS)


EVENTS = st.builds(
    Event,
    type=st.sampled_from(["page_view", "click", "add_to_cart", "purchase", "exposure"]),
    user_key=st.integers(0, 2**64 - 1),
    client_ms=st.integers(-(2**63), 2**63 - 1),
    server_ms=st.integers(0, 2**62),
    item=st.text(max_size=40),
    category=st.text(max_size=20),
    value=st.floats(allow_nan=False),
    path=st.text(max_size=60),
    session=st.text(max_size=20),
    attribution=st.none()
    | st.builds(
        Attribution, st.text(max_size=10), st.text(max_size=10), st.text(max_size=10), st.text(max_size=10)
    ),
)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_the_fast_event_reader_agrees_with_the_generated_one(event: Event) -> None:
    data = encode_event(event)
    assert decode_event(data) == event
    generated = fb.Event.GetRootAs(data, 0)
    assert (generated.UserKey(), generated.ClientMs(), (generated.Item() or b"").decode()) == (
        event.user_key,
        event.client_ms,
        event.item,
    )
