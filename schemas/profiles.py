"""User profiles as the edge decides on them, and their FlatBuffers form (shared by snapshot and delta)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flatbuffers

from schemas._generated import pz_generated as fb
from schemas.errors import DecodeError
from schemas.fb_vectors import numbers_vector

# What a user did with an item; index = the code in snapshots and deltas.
EVENT_KINDS = ("view", "cart", "purchase")


@dataclass(frozen=True, slots=True)
class ItemHistory:
    item: str
    category: str
    times_s: tuple[int, ...]  # newest first
    event: str = "view"  # one of EVENT_KINDS

    def count_since(self, since_s: int) -> int:
        n = 0
        for t in self.times_s:
            if t < since_s:
                break
            n += 1
        return n


@dataclass(frozen=True, slots=True)
class Profile:
    key: int
    items: tuple[ItemHistory, ...] = ()
    segments: tuple[str, ...] = ()
    updated_ms: int = 0
    # Derived once by the rules (schemas/rules/features.py) and kept with a cached profile.
    index: object = field(default=None, compare=False, repr=False)


def write_profile(builder: flatbuffers.Builder, profile: Profile) -> int:
    item_offsets = []
    for history in profile.items:
        # Items and categories repeat across the profiles of a batch: each string is written once.
        item = builder.CreateSharedString(history.item)
        category = builder.CreateSharedString(history.category)
        times = numbers_vector(builder, "I", history.times_s)
        fb.ItemHistoryStart(builder)
        fb.ItemHistoryAddItem(builder, item)
        fb.ItemHistoryAddCategory(builder, category)
        fb.ItemHistoryAddTimesS(builder, times)
        fb.ItemHistoryAddKind(builder, EVENT_KINDS.index(history.event))
        item_offsets.append(fb.ItemHistoryEnd(builder))
    fb.UserProfileStartItemsVector(builder, len(item_offsets))
    for off in reversed(item_offsets):
        builder.PrependUOffsetTRelative(off)
    items_vec = builder.EndVector()
    segment_offsets = [builder.CreateSharedString(s) for s in profile.segments]
    fb.UserProfileStartSegmentsVector(builder, len(segment_offsets))
    for off in reversed(segment_offsets):
        builder.PrependUOffsetTRelative(off)
    segments_vec = builder.EndVector()
    fb.UserProfileStart(builder)
    fb.UserProfileAddKey(builder, profile.key)
    fb.UserProfileAddItems(builder, items_vec)
    fb.UserProfileAddSegments(builder, segments_vec)
    fb.UserProfileAddUpdatedMs(builder, profile.updated_ms)
    return int(fb.UserProfileEnd(builder))


def read_profile(raw: Any) -> Profile:
    """Decode a generated `UserProfile` accessor into a Profile."""
    items = []
    for i in range(raw.ItemsLength()):
        h = raw.Items(i)
        times = tuple(h.TimesS(j) for j in range(h.TimesSLength()))
        kind = h.Kind()
        if kind >= len(EVENT_KINDS):
            raise DecodeError(f"unknown item event kind {kind}")
        items.append(
            ItemHistory(
                item=(h.Item() or b"").decode(),
                category=(h.Category() or b"").decode(),
                times_s=times,
                event=EVENT_KINDS[kind],
            )
        )
    segments = tuple(raw.Segments(i).decode() for i in range(raw.SegmentsLength()))
    return Profile(key=raw.Key(), items=tuple(items), segments=segments, updated_ms=raw.UpdatedMs())
