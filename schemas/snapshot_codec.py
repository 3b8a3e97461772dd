"""The snapshot: everything an edge needs to decide, readable in place (file identifier PZSN)."""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import flatbuffers
from flatbuffers import number_types, util

from schemas._generated import pz_generated as fb
from schemas.errors import DecodeError
from schemas.profiles import Profile, read_profile, write_profile

SNAPSHOT_IDENTIFIER = b"PZSN"
SNAPSHOT_FORMAT_VERSION = 2  # 2: user_keys vector


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


def _strings(builder: flatbuffers.Builder, values: Sequence[str]) -> int:
    offsets = [builder.CreateString(v) for v in values]
    builder.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        builder.PrependUOffsetTRelative(off)
    return int(builder.EndVector())


def encode_snapshot(content: SnapshotContent) -> bytes:
    builder = flatbuffers.Builder(1024 + 64 * len(content.users))
    users = sorted(content.users, key=lambda p: p.key)  # sorted so that edges binary-search in place
    user_offsets = [write_profile(builder, p) for p in users]
    fb.SnapshotStartUsersVector(builder, len(user_offsets))
    for off in reversed(user_offsets):
        builder.PrependUOffsetTRelative(off)
    users_vec = builder.EndVector()
    fb.SnapshotStartUserKeysVector(builder, len(users))
    for user in reversed(users):
        builder.PrependUint64(user.key)
    keys_vec = builder.EndVector()

    category_offsets = []
    for category in sorted(content.popular_by_category):
        name = builder.CreateString(category)
        items = _strings(builder, content.popular_by_category[category])
        fb.CategoryPopularityStart(builder)
        fb.CategoryPopularityAddCategory(builder, name)
        fb.CategoryPopularityAddItems(builder, items)
        category_offsets.append(fb.CategoryPopularityEnd(builder))
    fb.SnapshotStartCategoriesVector(builder, len(category_offsets))
    for off in reversed(category_offsets):
        builder.PrependUOffsetTRelative(off)
    categories_vec = builder.EndVector()
    popular_vec = _strings(builder, content.popular)

    fb.SnapshotStartPositionsVector(builder, len(content.positions))
    for partition in sorted(content.positions, reverse=True):
        pos = content.positions[partition]
        fb.CreatePartitionPosition(builder, partition, pos.seq, pos.delta_offset)
    positions_vec = builder.EndVector()

    snapshot_id = builder.CreateString(content.snapshot_id)
    fb.SnapshotStart(builder)
    fb.SnapshotAddFormatVersion(builder, SNAPSHOT_FORMAT_VERSION)
    fb.SnapshotAddId(builder, snapshot_id)
    fb.SnapshotAddCreatedMs(builder, content.created_ms)
    fb.SnapshotAddPositions(builder, positions_vec)
    fb.SnapshotAddPopular(builder, popular_vec)
    fb.SnapshotAddCategories(builder, categories_vec)
    fb.SnapshotAddUsers(builder, users_vec)
    fb.SnapshotAddUserKeys(builder, keys_vec)
    builder.Finish(fb.SnapshotEnd(builder), file_identifier=SNAPSHOT_IDENTIFIER)
    return bytes(builder.Output())


class SnapshotReader:
    """Reads a snapshot buffer in place: header and popularity lists are decoded once (they are
    small); users are found by binary search and decoded only when asked for."""

    __slots__ = (
        "_keys",
        "_root",
        "_user_count",
        "snapshot_id",
        "created_ms",
        "positions",
        "popular",
        "popular_by_category",
    )

    def __init__(self, buf: bytes | memoryview) -> None:
        if len(buf) < 8 or not util.BufferHasIdentifier(buf, 0, SNAPSHOT_IDENTIFIER):
            raise DecodeError("not a pz snapshot (file identifier PZSN missing)")
        try:
            root = fb.Snapshot.GetRootAs(buf, 0)
            if root.FormatVersion() != SNAPSHOT_FORMAT_VERSION:
                raise DecodeError(f"unsupported snapshot format version {root.FormatVersion()}")
            self._root = root
            self._user_count = root.UsersLength()
            self._keys = _key_view(buf, root)
            if len(self._keys) != self._user_count:
                raise DecodeError(f"{len(self._keys)} user keys for {self._user_count} users")
            self.snapshot_id = (root.Id() or b"").decode()
            self.created_ms = root.CreatedMs()
            self.positions = {
                p.Partition(): PartitionPosition(seq=p.Seq(), delta_offset=p.DeltaOffset())
                for p in (root.Positions(i) for i in range(root.PositionsLength()))
            }
            self.popular = tuple(root.Popular(i).decode() for i in range(root.PopularLength()))
            categories = (root.Categories(i) for i in range(root.CategoriesLength()))
            self.popular_by_category = {
                (c.Category() or b"").decode(): tuple(c.Items(j).decode() for j in range(c.ItemsLength()))
                for c in categories
            }
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"malformed snapshot: {exc}") from exc

    @property
    def user_count(self) -> int:
        return int(self._user_count)

    def find_user(self, key: int) -> Profile | None:
        """The profile of `key`, or None. Raises DecodeError if the buffer is malformed there."""
        index = bisect_left(self._keys, key)  # in C, over the keys in place
        if index == self._user_count or self._keys[index] != key:
            return None
        try:
            return read_profile(self._root.Users(index))
        except Exception as exc:  # flatbuffers raises struct, index, type and unicode errors on bad data
            raise DecodeError(f"malformed snapshot at user {key}: {exc}") from exc


_USER_KEYS_FIELD = 18  # vtable offset of Snapshot.user_keys (8th field: 4 + 2 * 7)


def _key_view(buf: bytes | memoryview, root: fb.Snapshot) -> Sequence[int]:
    """The user_keys vector as a sequence of ints, read in place."""
    tab = root._tab  # noqa: SLF001 - flatbuffers exposes no public accessor for a vector's bytes
    o = number_types.UOffsetTFlags.py_type(tab.Offset(_USER_KEYS_FIELD))
    if o == 0:
        return memoryview(b"").cast("Q")
    start, count = tab.Vector(o), tab.VectorLen(o)
    if start + 8 * count > len(buf):
        raise DecodeError("user key vector runs past the end of the buffer")
    view = memoryview(buf)[start : start + 8 * count]
    if sys.byteorder == "little":  # FlatBuffers are little-endian: the bytes are native ints
        return view.cast("Q")
    return [int.from_bytes(view[i : i + 8], "little") for i in range(0, 8 * count, 8)]
