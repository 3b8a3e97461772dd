"""Packed profiles: the C implementation (schemas/_packing.c) against its Python specification."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import DecodeError
from schemas.profile_packing import (
    PackedProfiles,
    ProfileUnpacker,
    _varint,
    _zigzag,
    pack_profiles,
    pack_profiles_in_python,
)
from schemas.profiles import EVENT_KINDS, ItemHistory, Lifetime, Profile

NOW_S = 1_790_000_000

names = st.sampled_from([f"p{i}" for i in range(30)] + ["é-item", ""])
histories = st.builds(
    lambda item, gaps, newest, kind, cents: ItemHistory(
        item,
        f"c{len(item) % 4}",
        tuple(newest - sum(gaps[:i]) for i in range(len(gaps) + 1)),
        kind,
        cents / 100,
    ),
    names,
    st.lists(st.integers(0, 10**6), max_size=4),
    st.integers(NOW_S - 10**7, NOW_S + 10**4),
    st.sampled_from(EVENT_KINDS),
    st.one_of(st.just(0), st.integers(-(10**9), 10**11)),
)
count = st.one_of(st.integers(0, 300), st.integers(0, 2**63 - 1))
lifetimes = st.builds(
    lambda last_s, seen_for_s, views, carts, purchases, revenue_cents: Lifetime(
        last_s - seen_for_s, last_s, views, carts, purchases, revenue_cents
    ),
    st.integers(NOW_S - 10**7, NOW_S + 10**4),
    st.one_of(st.integers(0, 10**5), st.integers(0, 10**8)),
    count,
    count,
    count,
    st.one_of(st.integers(0, 10**7), st.integers(-(2**53) + 1, 2**53 - 1)),
)
profiles = st.builds(
    Profile,
    st.integers(0, 2**64 - 1),
    st.lists(histories, max_size=10).map(tuple),
    st.lists(st.sampled_from([f"s{i}" for i in range(12)]), max_size=8).map(tuple),
    st.integers(-(10**13), 10**13),
    st.one_of(st.none(), lifetimes),
)


def same_packing(a: PackedProfiles, b: PackedProfiles) -> None:
    assert a.data == b.data and a.ends == b.ends
    assert a.item_index == b.item_index and a.item_categories == b.item_categories
    assert list(a.segment_index.items()) == list(b.segment_index.items())


def unpacker_for(packed: PackedProfiles, created_s: int) -> ProfileUnpacker:
    names: list[str | None] = list(packed.item_index)
    categories: list[str | None] = list(packed.item_categories)
    return ProfileUnpacker(created_s, names, categories, lambda i: None, list(packed.segment_index))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(profiles, max_size=6), st.integers(NOW_S - 10**6, NOW_S + 10**6))
def test_c_packs_the_bytes_python_specifies_and_unpacks_them_back(
    batch: list[Profile], created_s: int
) -> None:
    packed = pack_profiles(batch, created_s)
    same_packing(packed, pack_profiles_in_python(batch, created_s))
    unpacker = unpacker_for(packed, created_s)
    start = 0
    for profile, end in zip(batch, packed.ends, strict=True):
        back = unpacker.unpack(profile.key, packed.data, start, end)
        assert back == unpacker.unpack_in_python(profile.key, bytes(packed.data[start:end]))
        assert back.items == profile.items and back.segments == profile.segments
        assert back.updated_ms == profile.updated_ms // 1000 * 1000
        assert back.lifetime == profile.lifetime
        assert all(type(h) is ItemHistory for h in back.items)
        assert back.lifetime is None or type(back.lifetime) is Lifetime
        start = end


def outcome(unpack: object) -> object:
    try:
        return unpack()  # type: ignore[operator]
    except DecodeError as exc:
        return ("DecodeError", str(exc))


def small_numbers() -> st.SearchStrategy[bytes]:
    """Mostly plausible profiles: short varints, with a sprinkling of long and broken ones."""

    def encode(numbers: list[int]) -> bytes:
        out = bytearray()
        for n in numbers:
            _varint(out, n)
        return bytes(out)

    number = st.one_of(st.integers(0, 40), st.integers(0, 2**45), st.integers(0, 2**64))
    plausible = st.lists(number, max_size=30)
    return st.one_of(plausible.map(encode), st.binary(max_size=40))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_numbers(), st.integers(-(2**41), 2**41))
def test_c_unpacks_any_bytes_as_python_specifies_with_the_same_errors(data: bytes, created_s: int) -> None:
    assert unpacked(data, created_s, in_c=True) == unpacked(data, created_s, in_c=False)


def unpacked(data: bytes, created_s: int, in_c: bool) -> tuple[object, list[int]]:
    """What unpacking gives, and which items it had to load (names 0 and 2 are not loaded yet)."""
    loads: list[int] = []
    names: list[str | None] = [None, "b", None, "d"]
    categories: list[str | None] = [None, "cb", None, "cd"]

    def load(i: int) -> None:
        loads.append(i)
        names[i], categories[i] = f"n{i}", f"c{i}"

    unpacker = ProfileUnpacker(created_s, names, categories, load, ["s0", "s1", "s2"])
    unpack = unpacker.unpack if in_c else unpacker.unpack_in_python
    return outcome(lambda: unpack(7, data)), loads


def test_a_snapshot_time_out_of_range_is_refused_by_both() -> None:
    with pytest.raises(ValueError, match="snapshot time out of range"):
        pack_profiles([], 2**41)
    with pytest.raises(ValueError, match="snapshot time out of range"):
        pack_profiles_in_python([], 2**41)


@pytest.mark.parametrize(
    "history",
    [
        ItemHistory("a", "c", (NOW_S - 5, NOW_S), "view"),  # oldest first
        ItemHistory("a", "c", (NOW_S,), "wishlist"),  # not a kind
        ItemHistory("a", "c", (NOW_S,), "cart", math.nan),
        ItemHistory("a", "c", (NOW_S,), "cart", 1e300),
        ItemHistory("a", "c", (2**41,), "view"),
    ],
)
def test_profiles_that_cannot_be_packed_are_refused_by_both(history: ItemHistory) -> None:
    profile = Profile(1, (history,), (), NOW_S * 1000)
    with pytest.raises(ValueError):
        pack_profiles([profile], NOW_S)
    with pytest.raises(ValueError):
        pack_profiles_in_python([profile], NOW_S)


@pytest.mark.parametrize(
    ("lifetime", "error"),
    [
        (Lifetime(NOW_S, NOW_S - 1), "first no later than last"),
        (Lifetime(-(2**41), NOW_S), "first no later than last"),
        (Lifetime(NOW_S, 2**41), "first no later than last"),
        (Lifetime(NOW_S, 2**70), "first no later than last"),
        (Lifetime(NOW_S, NOW_S, -1), "counts must be"),
        (Lifetime(NOW_S, NOW_S, 0, 2**63), "counts must be"),
        (Lifetime(NOW_S, NOW_S, 0, 0, 2**80), "counts must be"),
        (Lifetime(NOW_S, NOW_S, revenue_cents=2**53), "revenue out of range"),
        (Lifetime(NOW_S, NOW_S, revenue_cents=-(2**90)), "revenue out of range"),
    ],
)
def test_lifetimes_that_cannot_be_packed_are_refused_by_both(lifetime: Lifetime, error: str) -> None:
    profile = Profile(1, (), (), NOW_S * 1000, lifetime)
    for pack in (pack_profiles, pack_profiles_in_python):
        with pytest.raises(ValueError, match=error):
            pack([profile], NOW_S)


def test_the_largest_lifetime_round_trips_and_costs_nothing_when_absent() -> None:
    largest = Lifetime(-(2**40), 2**40, 2**63 - 1, 2**63 - 1, 2**63 - 1, -(2**53) + 1)
    with_it, without = Profile(1, (), (), 0, largest), Profile(2, (), (), 0)
    packed = pack_profiles([with_it, without], 0)
    same_packing(packed, pack_profiles_in_python([with_it, without], 0))
    assert packed.ends[1] - packed.ends[0] == 3  # updated, no segments, no items and no lifetime
    unpacker = unpacker_for(packed, 0)
    assert unpacker.unpack(1, packed.data, 0, packed.ends[0]).lifetime == largest
    assert unpacker.unpack_in_python(1, bytes(packed.data[: packed.ends[0]])).lifetime == largest


def test_a_count_larger_than_the_profile_fails_cleanly_without_a_huge_allocation() -> None:
    out = bytearray()
    for n in (_zigzag(0), 0, 2**62):  # updated, no segments, 2**62 items, then nothing
        _varint(out, n)
    unpacker = ProfileUnpacker(NOW_S, ["a"], ["c"], lambda i: None, [])
    with pytest.raises(DecodeError, match="truncated"):
        unpacker.unpack(1, bytes(out))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x80" * 9 + b"\x01", "number larger than 63 bits in a packed profile"),
        (b"\x80" * 9 + b"\x81\x00", "varint longer than 64 bits"),
        (b"\xff" * 9 + b"\x7f", "number larger than 63 bits in a packed profile"),
        (b"\x80", "packed profile ends inside a number"),
        (b"", "packed profile is truncated or refers past a dictionary"),
    ],
)
def test_broken_numbers_get_the_same_error_in_c_and_python(data: bytes, error: str) -> None:
    unpacker = ProfileUnpacker(NOW_S, ["a"], ["c"], lambda i: None, [])
    for unpack in (unpacker.unpack, unpacker.unpack_in_python):
        with pytest.raises(DecodeError) as raised:
            unpack(1, data)
        assert str(raised.value) == error
