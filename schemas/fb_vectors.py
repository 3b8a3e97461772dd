"""Writing FlatBuffers vectors of numbers in one copy, as CreateByteVector does for bytes."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

import flatbuffers


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
