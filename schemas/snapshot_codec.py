"""The snapshot: everything an edge needs to decide, readable in place (file identifier PZSN)."""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import NamedTuple

import flatbuffers
from flatbuffers import util

from schemas._generated import pz_generated as fb
from schemas.errors import DecodeError
from schemas.fb_vectors import numbers_vector, read_numbers, strings_vector
from schemas.profile_packing import PackedProfiles, ProfileUnpacker, pack_profiles
from schemas.profiles import Profile

SNAPSHOT_IDENTIFIER = b"PZSN"
# 2: user_keys vector; 3: packed profiles and dictionaries; 4: event kinds; 5: values; 6: lifetime totals
SNAPSHOT_FORMAT_VERSION = 6


@dataclass(frozen=True, slots=True)
class PartitionPosition:
    seq: int
    delta_offset: int  # offset in pz.deltas of the batch carrying `seq`; -1 when none


@dataclass(frozen=True, slots=True)
class SnapshotContent:
    snapshot_id: str
    created_ms: int
    positions: Mapping[int, PartitionPosition]
    popular: Sequence[str]
    popular_by_category: Mapping[str, Sequence[str]]
    users: Sequence[Profile]
    rules_version: str = ""
    rules_json: bytes = b""
    out_of_stock: Collection[str] = ()
    similar: Mapping[str, Sequence[str]] = field(default_factory=dict)  # item -> nearest items, best first


class _KeyedList(NamedTuple):
    """The generated builders of a table {key: string; items: [string]} and of a vector of them."""

    start: Callable[[flatbuffers.Builder], None]
    add_key: Callable[[flatbuffers.Builder, int], None]
    add_items: Callable[[flatbuffers.Builder, int], None]
    end: Callable[[flatbuffers.Builder], int]
    start_vector: Callable[[flatbuffers.Builder, int], None]


_CATEGORY_POPULARITY = _KeyedList(
    fb.CategoryPopularityStart,
    fb.CategoryPopularityAddCategory,
    fb.CategoryPopularityAddItems,
    fb.CategoryPopularityEnd,
    fb.SnapshotStartCategoriesVector,
)
_SIMILAR_ITEMS = _KeyedList(
    fb.SimilarItemsStart,
    fb.SimilarItemsAddItem,
    fb.SimilarItemsAddItems,
    fb.SimilarItemsEnd,
    fb.SnapshotStartSimilarVector,
)


def _keyed_lists(builder: flatbuffers.Builder, lists: Mapping[str, Sequence[str]], table: _KeyedList) -> int:
    """A vector of key -> items tables, sorted by key (readers binary-search it)."""
    offsets = []
    for key in sorted(lists):
        name = builder.CreateString(key)
        items = strings_vector(builder, lists[key])
        table.start(builder)
        table.add_key(builder, name)
        table.add_items(builder, items)
        offsets.append(table.end(builder))
    table.start_vector(builder, len(offsets))
    for off in reversed(offsets):
        builder.PrependUOffsetTRelative(off)
    return int(builder.EndVector())


def _in_key_order(packed: PackedProfiles, keys: list[int]) -> tuple[list[int], bytes, list[int]]:
    """Keys ascending (edges binary-search them in place), with the packed profiles and their ends
    in the same order. Profiles are packed in the order given and moved afterwards: packing in key
    order visits the profile objects at random places in memory, twice as slow (pz bench snapshot)."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ends = packed.ends
    starts = [0, *ends[:-1]]
    # Slices of bytes, not of a memoryview: each a copy, but a memoryview is an object the cyclic GC
    # tracks, and a million of them set off full collections over every profile (2.5 -> 1.1 s at 1 M).
    whole = bytes(packed.data)
    data = b"".join([whole[starts[i] : ends[i]] for i in order])
    return [keys[i] for i in order], data, list(accumulate(ends[i] - starts[i] for i in order))


def encode_snapshot(content: SnapshotContent) -> bytes:
    users = content.users
    packed = pack_profiles(users, content.created_ms // 1000)
    keys, data, ends = _in_key_order(packed, [u.key for u in users])
    category_index: dict[str, int] = {}
    for category in packed.item_categories:
        category_index.setdefault(category, len(category_index))
    if len(category_index) > 0xFFFF:
        raise ValueError(f"{len(category_index)} categories: a snapshot holds at most 65535")

    builder = flatbuffers.Builder(1024 + len(data) + 12 * len(users) + 16 * len(packed.item_index))
    user_data = builder.CreateByteVector(data)
    user_ends = numbers_vector(builder, "I", ends)
    user_keys = numbers_vector(builder, "Q", keys)
    item_categories = numbers_vector(builder, "H", [category_index[c] for c in packed.item_categories])
    item_names = strings_vector(builder, list(packed.item_index))
    category_names = strings_vector(builder, list(category_index))
    segment_names = strings_vector(builder, list(packed.segment_index))
    categories_vec = _keyed_lists(builder, content.popular_by_category, _CATEGORY_POPULARITY)
    popular_vec = strings_vector(builder, content.popular)
    similar_vec = _keyed_lists(builder, content.similar, _SIMILAR_ITEMS)

    fb.SnapshotStartPositionsVector(builder, len(content.positions))
    for partition in sorted(content.positions, reverse=True):
        pos = content.positions[partition]
        fb.CreatePartitionPosition(builder, partition, pos.seq, pos.delta_offset)
    positions_vec = builder.EndVector()

    snapshot_id = builder.CreateString(content.snapshot_id)
    rules_version = builder.CreateString(content.rules_version)
    rules_json = builder.CreateByteVector(content.rules_json)
    out_of_stock = strings_vector(builder, sorted(content.out_of_stock))
    fb.SnapshotStart(builder)
    fb.SnapshotAddFormatVersion(builder, SNAPSHOT_FORMAT_VERSION)
    fb.SnapshotAddId(builder, snapshot_id)
    fb.SnapshotAddCreatedMs(builder, content.created_ms)
    fb.SnapshotAddRulesVersion(builder, rules_version)
    fb.SnapshotAddRules(builder, rules_json)
    fb.SnapshotAddOutOfStock(builder, out_of_stock)
    fb.SnapshotAddPositions(builder, positions_vec)
    fb.SnapshotAddPopular(builder, popular_vec)
    fb.SnapshotAddSimilar(builder, similar_vec)
    fb.SnapshotAddCategories(builder, categories_vec)
    fb.SnapshotAddUserKeys(builder, user_keys)
    fb.SnapshotAddItemNames(builder, item_names)
    fb.SnapshotAddItemCategories(builder, item_categories)
    fb.SnapshotAddCategoryNames(builder, category_names)
    fb.SnapshotAddSegmentNames(builder, segment_names)
    fb.SnapshotAddUserEnds(builder, user_ends)
    fb.SnapshotAddUserData(builder, user_data)
    builder.Finish(fb.SnapshotEnd(builder), file_identifier=SNAPSHOT_IDENTIFIER)
    return bytes(builder.Output())


class SnapshotReader:
    """Reads a snapshot buffer in place: the header and popularity lists are decoded at once (they
    are small); users are found by binary search over the key vector and unpacked only when asked
    for; dictionary entries are decoded on first use."""

    __slots__ = (
        "_keys",
        "_ends",
        "_data",
        "_unpacker",
        "_user_count",
        "snapshot_id",
        "created_ms",
        "rules_version",
        "rules_json",
        "out_of_stock",
        "positions",
        "popular",
        "popular_by_category",
        "_similar_at",
        "_similar_count",
        "_similar",
    )

    def __init__(self, buf: bytes | memoryview) -> None:
        if len(buf) < 8 or not util.BufferHasIdentifier(buf, 0, SNAPSHOT_IDENTIFIER):
            raise DecodeError("not a pz snapshot (file identifier PZSN missing)")
        try:
            root = fb.Snapshot.GetRootAs(buf, 0)
            if root.FormatVersion() != SNAPSHOT_FORMAT_VERSION:
                raise DecodeError(f"unsupported snapshot format version {root.FormatVersion()}")
            tab = root._tab  # noqa: SLF001 - flatbuffers exposes no public accessor for a vector's bytes
            self._keys = read_numbers(buf, tab, _USER_KEYS, "Q")
            self._ends = read_numbers(buf, tab, _USER_ENDS, "I")
            self._data = read_numbers(buf, tab, _USER_DATA, "B")
            self._user_count = len(self._keys)
            if len(self._ends) != self._user_count:
                raise DecodeError(f"{len(self._ends)} profile ends for {self._user_count} user keys")
            if self._user_count and self._ends[-1] > len(self._data):
                raise DecodeError("profiles run past the end of the profile data")
            self.snapshot_id = (root.Id() or b"").decode()
            self.created_ms = root.CreatedMs()
            self.rules_version = (root.RulesVersion() or b"").decode()
            self.rules_json = bytes(read_numbers(buf, tab, _RULES, "B"))
            self.out_of_stock = frozenset(root.OutOfStock(i).decode() for i in range(root.OutOfStockLength()))
            categories = [
                c.decode() for c in (root.CategoryNames(i) for i in range(root.CategoryNamesLength()))
            ]
            item_categories = read_numbers(buf, tab, _ITEM_CATEGORIES, "H")
            if any(c >= len(categories) for c in item_categories):
                raise DecodeError("an item refers past the category dictionary")
            if root.ItemNamesLength() != len(item_categories):
                raise DecodeError(
                    f"{len(item_categories)} item categories for {root.ItemNamesLength()} items"
                )
            items = _ItemLoader(root.ItemNames, item_categories, categories)
            self._unpacker = ProfileUnpacker(
                self.created_ms // 1000,
                items.names,
                items.categories,
                items.load,
                [s.decode() for s in (root.SegmentNames(i) for i in range(root.SegmentNamesLength()))],
            )
            self.positions = {
                p.Partition(): PartitionPosition(seq=p.Seq(), delta_offset=p.DeltaOffset())
                for p in (root.Positions(i) for i in range(root.PositionsLength()))
            }
            self.popular = tuple(root.Popular(i).decode() for i in range(root.PopularLength()))
            self._similar_at = root.Similar
            self._similar_count = root.SimilarLength()
            self._similar: dict[str, tuple[str, ...]] = {}
            popularity = (root.Categories(i) for i in range(root.CategoriesLength()))
            self.popular_by_category = {
                (c.Category() or b"").decode(): tuple(c.Items(j).decode() for j in range(c.ItemsLength()))
                for c in popularity
            }
        except DecodeError:
            raise
        except Exception as exc:  # flatbuffers raises struct, index, type and unicode errors on bad data
            raise DecodeError(f"malformed snapshot: {exc}") from exc

    @property
    def user_count(self) -> int:
        return self._user_count

    def similar_items(self, item: str) -> tuple[str, ...]:
        """The item model's nearest items to `item`, best first (binary search in place, then kept)."""
        try:
            return self._similar[item]
        except KeyError:
            pass
        wanted = item.encode()
        low, high = 0, self._similar_count
        found: tuple[str, ...] = ()
        try:
            while low < high:
                middle = (low + high) // 2
                entry = self._similar_at(middle)
                key = entry.Item() or b""
                if key < wanted:
                    low = middle + 1
                elif key > wanted:
                    high = middle
                else:
                    found = tuple(entry.Items(j).decode() for j in range(entry.ItemsLength()))
                    break
        except Exception as exc:  # flatbuffers raises struct, index, type and unicode errors on bad data
            raise DecodeError(f"malformed snapshot at the similar items of {item!r}: {exc}") from exc
        if len(self._similar) < _SIMILAR_KEPT:
            self._similar[item] = found
        return found

    def find_user(self, key: int) -> Profile | None:
        """The profile of `key`, or None. Raises DecodeError if the buffer is malformed there."""
        index = bisect_left(self._keys, key)  # in C, over the keys in place
        if index == self._user_count or self._keys[index] != key:
            return None
        start = self._ends[index - 1] if index else 0
        end = self._ends[index]
        if start > end:
            raise DecodeError(f"profile of user {key} has a negative length")
        try:
            return self._unpacker.unpack(key, self._data, start, end)
        except (UnicodeDecodeError, struct.error) as exc:  # from an item name read on first use
            raise DecodeError(f"malformed snapshot at user {key}: {exc}") from exc


class _ItemLoader:
    """Item names and categories decoded the first time a profile needs them, then kept."""

    __slots__ = ("_name_at", "_category_codes", "_category_names", "names", "categories")

    def __init__(
        self, name_at: Callable[[int], bytes], category_codes: Sequence[int], category_names: list[str]
    ) -> None:
        self._name_at = name_at
        self._category_codes = category_codes
        self._category_names = category_names
        self.names: list[str | None] = [None] * len(category_codes)
        self.categories: list[str | None] = [None] * len(category_codes)

    def load(self, index: int) -> None:
        self.categories[index] = self._category_names[self._category_codes[index]]
        self.names[index] = self._name_at(index).decode()


_SIMILAR_KEPT = 65_536  # items whose similar-items lists a reader keeps decoded

# vtable offsets of Snapshot's vector fields (4 + 2 * field index)
_USER_KEYS, _ITEM_CATEGORIES, _USER_ENDS, _USER_DATA, _RULES = 18, 22, 28, 30, 34
