"""Delta batches: per-partition, sequence-numbered upserts and deletes of user profiles (PZDL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import flatbuffers
from flatbuffers import util

from schemas._generated import pz_generated as fb
from schemas.errors import DecodeError
from schemas.profiles import Profile, read_profile, write_profile

DELTA_IDENTIFIER = b"PZDL"
DELTA_FORMAT_VERSION = 2  # 2: item histories carry their event kind


@dataclass(frozen=True, slots=True)
class DeltaBatch:
    partition: int
    seq: int
    created_ms: int
    upserts: Sequence[Profile]
    deletes: Sequence[int] = ()


def encode_delta(batch: DeltaBatch) -> bytes:
    builder = flatbuffers.Builder(256 + 64 * len(batch.upserts))
    offsets = [write_profile(builder, p) for p in batch.upserts]
    fb.DeltaBatchStartUpsertsVector(builder, len(offsets))
    for off in reversed(offsets):
        builder.PrependUOffsetTRelative(off)
    upserts = builder.EndVector()
    fb.DeltaBatchStartDeletesVector(builder, len(batch.deletes))
    for key in reversed(batch.deletes):
        builder.PrependUint64(key)
    deletes = builder.EndVector()
    fb.DeltaBatchStart(builder)
    fb.DeltaBatchAddFormatVersion(builder, DELTA_FORMAT_VERSION)
    fb.DeltaBatchAddPartition(builder, batch.partition)
    fb.DeltaBatchAddSeq(builder, batch.seq)
    fb.DeltaBatchAddCreatedMs(builder, batch.created_ms)
    fb.DeltaBatchAddUpserts(builder, upserts)
    fb.DeltaBatchAddDeletes(builder, deletes)
    builder.Finish(fb.DeltaBatchEnd(builder), file_identifier=DELTA_IDENTIFIER)
    return bytes(builder.Output())


def decode_delta(buf: bytes | memoryview) -> DeltaBatch:
    if len(buf) < 8 or not util.BufferHasIdentifier(buf, 0, DELTA_IDENTIFIER):
        raise DecodeError("not a pz delta batch (file identifier PZDL missing)")
    try:
        root = fb.DeltaBatch.GetRootAs(buf, 0)
        if root.FormatVersion() != DELTA_FORMAT_VERSION:
            raise DecodeError(f"unsupported delta format version {root.FormatVersion()}")
        return DeltaBatch(
            partition=root.Partition(),
            seq=root.Seq(),
            created_ms=root.CreatedMs(),
            upserts=tuple(read_profile(root.Upserts(i)) for i in range(root.UpsertsLength())),
            deletes=tuple(root.Deletes(i) for i in range(root.DeletesLength())),
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
