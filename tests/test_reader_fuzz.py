"""Readers fed random and mutated bytes refuse them with the package's own errors and never crash."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import (
    DeltaBatch,
    Event,
    ItemHistory,
    PartitionPosition,
    Profile,
    SchemaError,
    SigningKey,
    SnapshotContent,
    SnapshotReader,
    decode_delta,
    decode_event,
    encode_delta,
    encode_event,
    encode_snapshot,
    open_sealed,
    seal,
)

KEY = SigningKey("k", b"fuzz-secret")
USERS = [Profile(k, (ItemHistory(f"p{k}", "c", (5, 4, 3)),), ("seg",), 1) for k in range(1, 40, 3)]
SNAPSHOT = encode_snapshot(
    SnapshotContent("s", 1, {0: PartitionPosition(2, 3)}, ("p1",), {"c": ("p1",)}, USERS)
)
DELTA = encode_delta(DeltaBatch(1, 2, 3, tuple(USERS[:4]), (9,)))
EVENT = encode_event(Event("click", 7, 1, 2, "p1", "c", 1.0, "/x", "s"))
SEALED = seal(DELTA, KEY)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for position, value in edits:
        buf[position % len(buf)] = value
    return bytes(buf[:cut] if cut is not None else buf)


def read_snapshot_fully(data: bytes) -> None:
    reader = SnapshotReader(data)
    for key in (0, 1, 4, 37, 2**64 - 1):
        reader.find_user(key)


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8)
cuts = st.none() | st.integers(0, 2_000)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    for reader in (decode_event, decode_delta, read_snapshot_fully, lambda d: open_sealed(d, {"k": KEY})):
        try:
            reader(data)
        except SchemaError:
            pass


@FUZZ
@given(edits, cuts)
def test_mutated_snapshots(changes: list[tuple[int, int]], cut: int | None) -> None:
    try:
        read_snapshot_fully(mutate(SNAPSHOT, changes, cut))
    except SchemaError:
        pass


@FUZZ
@given(edits, cuts)
def test_mutated_deltas_and_events(changes: list[tuple[int, int]], cut: int | None) -> None:
    for data, reader in ((DELTA, decode_delta), (EVENT, decode_event)):
        try:
            reader(mutate(data, changes, cut))
        except SchemaError:
            pass


@FUZZ
@given(edits.filter(bool))
def test_any_change_to_a_sealed_batch_is_refused(changes: list[tuple[int, int]]) -> None:
    mutated = mutate(SEALED, changes, None)
    try:
        payload = open_sealed(mutated, {"k": KEY})
    except SchemaError:
        return
    # A change that still verifies can only be one that left the signed payload as it was.
    assert bytes(payload) == DELTA
