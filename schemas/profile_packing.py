"""Packed user profiles for snapshots: a few bytes per user instead of a FlatBuffers table each.

Layout of one profile (all numbers LEB128 varints; `z` marks zigzag-encoded signed values):

    updated_age_s(z)  n_segments  segment_index*  n_items*2+has_lifetime
    then per item:    item_index  (n_times*3+kind)*2+has_value  newest_step_s(z)  gap_s*  [value_cents(z)]
    then, if any:     last_seen_age_s(z)  seen_for_s  views  carts  purchases  revenue_cents(z)

Times count back: an item's newest event from the newest event of the item before it (the first
item's from the snapshot's creation second; profiles list items newest first, so the steps are
short), each older event from the one before it; seen_for_s is last seen - first seen. Typical
values fit one or two bytes. Items and segments are indexes into the snapshot's dictionaries; kind
is the index in EVENT_KINDS (viewed, added to cart, bought). The lifetime totals
(schemas.profiles.Lifetime) cost nothing when a profile has none. Every number fits 63 bits;
decoded times stay within +-2**40 s, values and revenue within +-2**53 cents.

Snapshots and deltas pack and unpack with the C implementation of this (schemas/_packing.c, ~10x
faster); the Python here is its specification, and tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from schemas._packing import pack_profiles_into, unpack_profile
from schemas.errors import DecodeError
from schemas.profiles import EVENT_KINDS, ItemHistory, Lifetime, Profile

_KINDS = len(EVENT_KINDS)
_NUMBER_LIMIT = 2**63
_TIME_LIMIT_S = 2**40
_CENTS_LIMIT = 2**53
_TYPES = (ItemHistory, Profile, DecodeError, EVENT_KINDS, Lifetime)


def _varint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def pack_profile(
    out: bytearray,
    profile: Profile,
    created_s: int,
    item_index: dict[str, int],
    segment_index: dict[str, int],
) -> None:
    _varint(out, _zigzag(created_s - profile.updated_ms // 1000))
    _varint(out, len(profile.segments))
    for segment in profile.segments:
        _varint(out, segment_index[segment])
    lifetime = profile.lifetime
    _varint(out, len(profile.items) * 2 + (lifetime is not None))
    newest_before = created_s
    for history in profile.items:
        index, kind = item_index[history.item], EVENT_KINDS.index(history.event)
        _varint(out, index)
        if not abs(history.value * 100) < _CENTS_LIMIT:  # NaN too
            raise ValueError(f"value of {history.item!r} is not a price in range")
        cents = round(history.value * 100)
        _varint(out, (len(history.times_s) * _KINDS + kind) * 2 + (1 if cents else 0))
        previous = None
        for t in history.times_s:
            if not -_TIME_LIMIT_S <= t <= _TIME_LIMIT_S:
                raise ValueError(f"a time of {history.item!r} is out of range")
            if previous is None:
                _varint(out, _zigzag(newest_before - t))
                newest_before = t
            elif t > previous:
                raise ValueError(f"view times of {history.item!r} must be newest first")
            else:
                _varint(out, previous - t)
            previous = t
        if cents:
            _varint(out, _zigzag(cents))
    if lifetime is not None:
        _pack_lifetime(out, lifetime, created_s)


def _pack_lifetime(out: bytearray, lifetime: Lifetime, created_s: int) -> None:
    first_s, last_s, views, carts, purchases, revenue_cents = lifetime
    if not (-_TIME_LIMIT_S <= first_s <= last_s <= _TIME_LIMIT_S):
        raise ValueError("lifetime: first and last seen must be in range, first no later than last")
    if not all(0 <= count < _NUMBER_LIMIT for count in (views, carts, purchases)):
        raise ValueError("lifetime: counts must be in 0 .. 2**63")
    if not abs(revenue_cents) < _CENTS_LIMIT:
        raise ValueError("lifetime: revenue out of range")
    numbers = (_zigzag(created_s - last_s), last_s - first_s, views, carts, purchases, _zigzag(revenue_cents))
    for number in numbers:
        _varint(out, number)


@dataclass(slots=True)
class PackedProfiles:
    """Profiles packed one after the other, and the dictionaries they refer to (in first-use order)."""

    data: bytearray
    ends: list[int]  # profile i is data[ends[i-1] .. ends[i]]
    item_index: dict[str, int]
    item_categories: list[str]  # per item, the category it was first seen with
    segment_index: dict[str, int]


def pack_profiles(profiles: Iterable[Profile], created_s: int) -> PackedProfiles:
    """Profiles packed, in C."""
    packed = PackedProfiles(bytearray(), [], {}, [], {})
    pack_profiles_into(
        packed.data,
        packed.ends,
        packed.item_index,
        packed.item_categories,
        packed.segment_index,
        profiles,
        created_s,
        EVENT_KINDS,
    )
    return packed


def pack_profiles_in_python(profiles: Iterable[Profile], created_s: int) -> PackedProfiles:
    """The specification of pack_profiles()."""
    if not -_TIME_LIMIT_S <= created_s <= _TIME_LIMIT_S:
        raise ValueError("snapshot time out of range")
    packed = PackedProfiles(bytearray(), [], {}, [], {})
    item_index, segment_index = packed.item_index, packed.segment_index
    for profile in profiles:
        for history in profile.items:
            if history.item not in item_index:
                item_index[history.item] = len(item_index)
                packed.item_categories.append(history.category)
        for segment in profile.segments:
            segment_index.setdefault(segment, len(segment_index))
        pack_profile(packed.data, profile, created_s, item_index, segment_index)
        packed.ends.append(len(packed.data))
    return packed


class ProfileUnpacker:
    """Decodes packed profiles against one snapshot's (or delta batch's) dictionaries.

    `names` and `categories` are per item; an entry still None is filled by `load_item(index)` (a
    snapshot decodes a name the first time a profile needs it)."""

    __slots__ = ("created_s", "names", "categories", "load_item", "segments")

    def __init__(
        self,
        created_s: int,
        names: list[str | None],
        categories: list[str | None],
        load_item: Callable[[int], None],
        segments: list[str],
    ) -> None:
        self.created_s = created_s
        self.names = names
        self.categories = categories
        self.load_item = load_item
        self.segments = segments

    def unpack(
        self, key: int, data: bytes | memoryview | Sequence[int], start: int = 0, end: int | None = None
    ) -> Profile:
        """The profile packed in data[start:end] (data: any buffer of bytes), in C."""
        return unpack_profile(
            key,
            data,
            start,
            len(data) if end is None else end,
            self.created_s,
            self.names,
            self.categories,
            self.load_item,
            self.segments,
            _TYPES,
        )

    def unpack_in_python(self, key: int, data: bytes) -> Profile:
        """The specification of unpack()."""
        created_s = _in_range(self.created_s, _TIME_LIMIT_S, "snapshot time")
        take = iter(_read_varints(data)).__next__
        try:
            updated_s = _in_range(created_s - _unzigzag(take()), _TIME_LIMIT_S, "updated time")
            segments = []
            for _ in range(take()):
                segments.append(self.segments[take()])
            items = []
            n_items, has_lifetime = divmod(take(), 2)
            newest_before = created_s
            for _ in range(n_items):
                index = take()
                code, has_value = divmod(take(), 2)
                n_times, kind = divmod(code, _KINDS)
                times: list[int] = []
                if n_times:
                    t = _in_range(newest_before - _unzigzag(take()), _TIME_LIMIT_S, "event time")
                    newest_before = t
                    times.append(t)
                    for _ in range(n_times - 1):
                        t = _in_range(t - take(), _TIME_LIMIT_S, "event time")
                        times.append(t)
                value = _in_range(_unzigzag(take()), _CENTS_LIMIT, "value") / 100 if has_value else 0.0
                if index >= len(self.names) or index >= len(self.categories):
                    raise IndexError(index)
                if self.names[index] is None:
                    self.load_item(index)
                items.append(
                    ItemHistory(
                        self.names[index],  # type: ignore[arg-type]  # loaded just above
                        self.categories[index],  # type: ignore[arg-type]
                        tuple(times),
                        EVENT_KINDS[kind],
                        value,
                    )
                )
            lifetime = None
            if has_lifetime:
                last_s = _in_range(created_s - _unzigzag(take()), _TIME_LIMIT_S, "last seen time")
                first_s = _in_range(last_s - take(), _TIME_LIMIT_S, "first seen time")
                views, carts, purchases = take(), take(), take()
                revenue_cents = _in_range(_unzigzag(take()), _CENTS_LIMIT, "revenue")
                lifetime = Lifetime(first_s, last_s, views, carts, purchases, revenue_cents)
        except (StopIteration, IndexError):
            raise DecodeError("packed profile is truncated or refers past a dictionary") from None
        if _has_more(take):
            raise DecodeError("stray numbers after the packed profile")
        return Profile(key, tuple(items), tuple(segments), updated_s * 1000, lifetime)


def _in_range(value: int, limit: int, what: str) -> int:
    if not -limit <= value <= limit:
        raise DecodeError(f"{what} out of range in a packed profile")
    return value


def _has_more(take: object) -> bool:
    try:
        take()  # type: ignore[operator]
    except StopIteration:
        return False
    return True


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _read_varints(data: bytes) -> list[int]:
    values = []
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                raise DecodeError("varint longer than 64 bits")
        else:
            if value >= _NUMBER_LIMIT:
                raise DecodeError("number larger than 63 bits in a packed profile")
            values.append(value)
            value = shift = 0
    if shift:
        raise DecodeError("packed profile ends inside a number")
    return values
