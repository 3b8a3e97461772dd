"""Delta batches: per-partition, sequence-numbered upserts and deletes of user profiles (PZDL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import flatbuffers
from flatbuffers import util

from schemas._generated import pz_generated as fb
from schemas.errors import DecodeError
from schemas.fb_vectors import numbers_vector, read_numbers, strings_vector
from schemas.profile_packing import ProfileUnpacker, pack_profiles
from schemas.profiles import Profile

DELTA_IDENTIFIER = b"PZDL"
# 2: item histories carry their event kind; 3: profiles packed as in snapshots (the FlatBuffers
# builder spent ~45 % of the aggregator's time writing one table per profile); 4: item values;
# 5: lifetime totals.
DELTA_FORMAT_VERSION = 5
# vtable offsets of DeltaBatch's number vectors (4 + 2 * field index)
_DELETES, _USER_KEYS, _USER_ENDS, _USER_DATA = 14, 16, 18, 20


@dataclass(frozen=True, slots=True)
class DeltaBatch:
    partition: int
    seq: int
    created_ms: int
    upserts: Sequence[Profile]
    deletes: Sequence[int] = ()


def encode_delta(batch: DeltaBatch) -> bytes:
    packed = pack_profiles(batch.upserts, batch.created_ms // 1000)
    builder = flatbuffers.Builder(
        256 + len(packed.data) + 12 * len(packed.ends) + 16 * len(packed.item_index)
    )
    user_data = builder.CreateByteVector(bytes(packed.data))
    user_ends = numbers_vector(builder, "I", packed.ends)
    user_keys = numbers_vector(builder, "Q", [p.key for p in batch.upserts])
    deletes = numbers_vector(builder, "Q", batch.deletes)
    item_names = strings_vector(builder, list(packed.item_index))
    categories = strings_vector(builder, packed.item_categories)
    segment_names = strings_vector(builder, list(packed.segment_index))
    fb.DeltaBatchStart(builder)
    fb.DeltaBatchAddFormatVersion(builder, DELTA_FORMAT_VERSION)
    fb.DeltaBatchAddPartition(builder, batch.partition)
    fb.DeltaBatchAddSeq(builder, batch.seq)
    fb.DeltaBatchAddCreatedMs(builder, batch.created_ms)
    fb.DeltaBatchAddDeletes(builder, deletes)
    fb.DeltaBatchAddUserKeys(builder, user_keys)
    fb.DeltaBatchAddUserEnds(builder, user_ends)
    fb.DeltaBatchAddUserData(builder, user_data)
    fb.DeltaBatchAddItemNames(builder, item_names)
    fb.DeltaBatchAddItemCategories(builder, categories)
    fb.DeltaBatchAddSegmentNames(builder, segment_names)
    builder.Finish(fb.DeltaBatchEnd(builder), file_identifier=DELTA_IDENTIFIER)
    return bytes(builder.Output())


def decode_delta(buf: bytes | memoryview) -> DeltaBatch:
    if len(buf) < 8 or not util.BufferHasIdentifier(buf, 0, DELTA_IDENTIFIER):
        raise DecodeError("not a pz delta batch (file identifier PZDL missing)")
    try:
        root = fb.DeltaBatch.GetRootAs(buf, 0)
        if root.FormatVersion() != DELTA_FORMAT_VERSION:
            raise DecodeError(f"unsupported delta format version {root.FormatVersion()}")
        tab = root._tab  # noqa: SLF001 - flatbuffers exposes no public accessor for a vector's bytes
        keys = read_numbers(buf, tab, _USER_KEYS, "Q")
        ends = read_numbers(buf, tab, _USER_ENDS, "I")
        data = read_numbers(buf, tab, _USER_DATA, "B")
        if len(ends) != len(keys) or (ends and ends[-1] > len(data)):
            raise DecodeError(f"{len(ends)} profile ends for {len(keys)} users, or past the profile data")
        names: list[str | None] = [root.ItemNames(i).decode() for i in range(root.ItemNamesLength())]
        categories: list[str | None] = [
            root.ItemCategories(i).decode() for i in range(root.ItemCategoriesLength())
        ]
        if len(categories) != len(names):
            raise DecodeError(f"{len(categories)} item categories for {len(names)} items")
        segments = [root.SegmentNames(i).decode() for i in range(root.SegmentNamesLength())]
        created_ms = root.CreatedMs()
        unpacker = ProfileUnpacker(created_ms // 1000, names, categories, _all_loaded, segments)
        upserts = []
        start = 0
        for key, end in zip(keys, ends, strict=True):
            if end < start:
                raise DecodeError(f"profile of user {key} has a negative length")
            upserts.append(unpacker.unpack(key, data, start, end))
            start = end
        return DeltaBatch(
            partition=root.Partition(),
            seq=root.Seq(),
            created_ms=created_ms,
            upserts=tuple(upserts),
            deletes=tuple(read_numbers(buf, tab, _DELETES, "Q")),
        )
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"malformed delta batch: {exc}") from exc


def delta_position(buf: bytes | memoryview) -> tuple[int, int]:
    """(partition, seq) of a delta batch, read without decoding its profiles."""
    if len(buf) < 8 or not util.BufferHasIdentifier(buf, 0, DELTA_IDENTIFIER):
        raise DecodeError("not a pz delta batch (file identifier PZDL missing)")
    try:
        root = fb.DeltaBatch.GetRootAs(buf, 0)
        return int(root.Partition()), int(root.Seq())
    except Exception as exc:  # flatbuffers raises struct, index and type errors on bad data
        raise DecodeError(f"malformed delta batch: {exc}") from exc


def frame_batches(batches: list[bytes]) -> bytes:
    """The HTTP delta stream: each sealed batch preceded by its length (4 bytes, big-endian)."""
    return b"".join(len(b).to_bytes(4, "big") + b for b in batches)


def unframe_batches(body: bytes) -> list[bytes]:
    batches = []
    position = 0
    while position < len(body):
        if position + 4 > len(body):
            raise DecodeError("delta stream ends inside a length prefix")
        length = int.from_bytes(body[position : position + 4], "big")
        position += 4
        if position + length > len(body):
            raise DecodeError("delta stream ends inside a batch")
        batches.append(body[position : position + length])
        position += length
    return batches


def _all_loaded(index: int) -> None:
    raise AssertionError("a delta batch's item lists are decoded whole")  # names are never None here
