"""FlatBuffers vectors written in one copy and read in place (the Python runtime does both an element
at a time, which is what makes big buffers slow)."""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Sequence
from typing import Any, Literal

import flatbuffers
from flatbuffers import number_types

from schemas.errors import DecodeError


def numbers_vector(builder: flatbuffers.Builder, typecode: str, values: Sequence[int]) -> int:
    """A vector of fixed-width numbers, written in one copy (as CreateByteVector does for bytes):
    placing a million numbers one call at a time is what made building slow."""
    packed = array(typecode, values)
    if sys.byteorder != "little":
        packed.byteswap()  # FlatBuffers are little-endian on every host
    data = packed.tobytes()
    builder.StartVector(packed.itemsize, len(packed), packed.itemsize)
    builder.head = builder.head - len(data)
    builder.Bytes[builder.head : builder.head + len(data)] = data
    builder.vectorNumElems = len(packed)
    return int(builder.EndVector())


def strings_vector(builder: flatbuffers.Builder, values: Sequence[str]) -> int:
    offsets = [builder.CreateString(v) for v in values]
    builder.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        builder.PrependUOffsetTRelative(off)
    return int(builder.EndVector())


def read_numbers(
    buf: bytes | memoryview, tab: Any, field: int, typecode: Literal["B", "H", "I", "Q"]
) -> Sequence[int]:
    """A vector of fixed-width numbers as a sequence, read in place."""
    o = number_types.UOffsetTFlags.py_type(tab.Offset(field))
    view = memoryview(buf)
    if o == 0:
        return view[0:0].cast(typecode) if typecode != "B" else view[0:0]
    start, count = tab.Vector(o), tab.VectorLen(o)
    width = struct.calcsize(typecode)
    if start + width * count > len(buf):
        raise DecodeError("a vector runs past the end of the buffer")
    part = view[start : start + width * count]
    if typecode == "B":
        return part
    if sys.byteorder == "little":  # FlatBuffers are little-endian: the bytes are native numbers
        return part.cast(typecode)
    return [int.from_bytes(part[i : i + width], "little") for i in range(0, width * count, width)]
