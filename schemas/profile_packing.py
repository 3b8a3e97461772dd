"""Packed user profiles for snapshots: a few bytes per user instead of a FlatBuffers table each.

Layout of one profile (all numbers LEB128 varints; `z` marks zigzag-encoded signed values):

    updated_age_s(z)  n_segments  segment_index*  n_items
    then per item:    item_index*3+kind  n_times*2+has_value  newest_age_s(z)  gap_s*  [value_cents(z)]

Ages count back from the snapshot's creation second; each gap is the distance to the previous
(newer) event, so typical values fit one or two bytes. Items and segments are indexes into the
snapshot's dictionaries; kind is the index in EVENT_KINDS (viewed, added to cart, bought).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from schemas.errors import DecodeError
from schemas.profiles import EVENT_KINDS, ItemHistory, Profile

_KINDS = len(EVENT_KINDS)


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
    _varint(out, len(profile.items))
    for history in profile.items:
        _varint(out, item_index[history.item] * _KINDS + EVENT_KINDS.index(history.event))
        cents = round(history.value * 100)
        _varint(out, len(history.times_s) * 2 + (1 if cents else 0))
        previous = None
        for t in history.times_s:
            if previous is None:
                _varint(out, _zigzag(created_s - t))
            elif t > previous:
                raise ValueError(f"view times of {history.item!r} must be newest first")
            else:
                _varint(out, previous - t)
            previous = t
        if cents:
            _varint(out, _zigzag(cents))


@dataclass(slots=True)
class PackedProfiles:
    """Profiles packed one after the other, and the dictionaries they refer to (in first-use order)."""

    data: bytearray
    ends: list[int]  # profile i is data[ends[i-1] .. ends[i]]
    item_index: dict[str, int]
    item_categories: list[str]  # per item, the category it was first seen with
    segment_index: dict[str, int]


def pack_profiles(profiles: Iterable[Profile], created_s: int) -> PackedProfiles:
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
    """Decodes packed profiles against one snapshot's dictionaries (names decoded once, on demand)."""

    __slots__ = ("_created_s", "_item_name", "_item_category", "_segment_name")

    def __init__(
        self,
        created_s: int,
        item_name: Sequence[str],
        item_category: Sequence[str],
        segment_name: Sequence[str],
    ) -> None:
        self._created_s = created_s
        self._item_name = item_name
        self._item_category = item_category
        self._segment_name = segment_name

    def unpack(self, key: int, data: bytes) -> Profile:
        take = iter(_read_varints(data)).__next__
        created_s = self._created_s
        try:
            updated_s = created_s - _unzigzag(take())
            segments = tuple(self._segment_name[take()] for _ in range(take()))
            items = []
            for _ in range(take()):
                index, kind = divmod(take(), _KINDS)
                n_times, has_value = divmod(take(), 2)
                times: list[int] = []
                if n_times:
                    t = created_s - _unzigzag(take())
                    times.append(t)
                    for _ in range(n_times - 1):
                        t -= take()
                        times.append(t)
                value = _unzigzag(take()) / 100 if has_value else 0.0
                items.append(
                    ItemHistory(
                        self._item_name[index],
                        self._item_category[index],
                        tuple(times),
                        EVENT_KINDS[kind],
                        value,
                    )
                )
        except (StopIteration, IndexError):
            raise DecodeError("packed profile is truncated or refers past a dictionary") from None
        if _has_more(take):
            raise DecodeError("stray numbers after the packed profile")
        return Profile(key=key, items=tuple(items), segments=segments, updated_ms=updated_s * 1000)


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
            values.append(value)
            value = shift = 0
    if shift:
        raise DecodeError("packed profile ends inside a number")
    return values
