from __future__ import annotations

from edge_worker.identity import CookieSigner
from edge_worker.profile_store import DeltaOutcome, ProfileStore
from schemas import (
    DeltaBatch,
    ItemHistory,
    PartitionPosition,
    Profile,
    SnapshotContent,
    SnapshotReader,
    encode_snapshot,
)


def test_a_signed_cookie_identifies_the_same_user_again() -> None:
    signer = CookieSigner(b"secret")
    first = signer.identify(None)
    assert first.is_new
    again = signer.identify(signer.cookie_value(first.raw_id))
    assert not again.is_new and again.key == first.key and again.raw_id == first.raw_id


def test_a_forged_or_foreign_cookie_is_replaced_by_a_new_identity() -> None:
    signer = CookieSigner(b"secret")
    value = signer.cookie_value("alice")
    for forged in (
        value[:-1] + ("A" if value[-1] != "A" else "B"),
        "alice",
        "alice.",
        CookieSigner(b"x").cookie_value("alice"),
    ):
        identity = signer.identify(forged)
        assert identity.is_new and identity.raw_id != "alice"


def test_user_keys_depend_on_the_secret() -> None:
    assert (
        CookieSigner(b"a").identify(CookieSigner(b"a").cookie_value("u")).key
        != CookieSigner(b"b").identify(CookieSigner(b"b").cookie_value("u")).key
    )


def p(key: int, item: str) -> Profile:
    return Profile(key, (ItemHistory(item, "c", (1,)),))


def test_deltas_overlay_the_snapshot_and_duplicates_are_dropped() -> None:
    store = ProfileStore(cache_size=10)
    store.install_snapshot(
        SnapshotReader(
            encode_snapshot(
                SnapshotContent("s", 0, {0: PartitionPosition(5, 10)}, (), {}, (p(1, "old"), p(2, "keep")))
            )
        )
    )
    assert store.get(1) == p(1, "old")
    assert store.apply_delta(DeltaBatch(0, 5, 0, (p(1, "stale"),))) is DeltaOutcome.DUPLICATE
    assert store.get(1) == p(1, "old")
    assert store.apply_delta(DeltaBatch(0, 6, 0, (p(1, "new"),), (2,))) is DeltaOutcome.APPLIED
    assert store.get(1) == p(1, "new")  # the cached snapshot profile was invalidated
    assert store.get(2) is None  # deleted
    assert store.apply_delta(DeltaBatch(0, 9, 0, (p(3, "x"),))) is DeltaOutcome.GAP
    assert store.get(3) == p(3, "x")


def test_a_new_snapshot_keeps_overlay_entries_newer_than_itself() -> None:
    store = ProfileStore(cache_size=10)
    store.apply_delta(DeltaBatch(0, 1, 0, (p(1, "a"),)))
    store.apply_delta(DeltaBatch(0, 2, 0, (p(2, "b"),)))
    store.install_snapshot(
        SnapshotReader(
            encode_snapshot(SnapshotContent("s", 0, {0: PartitionPosition(1, 0)}, (), {}, (p(1, "a"),)))
        )
    )
    assert store.get(1) == p(1, "a")
    assert store.get(2) == p(2, "b")
    assert store.applied_seq == {0: 2}


def test_cookie_flags_are_configuration() -> None:
    from edge_worker.config import EdgeConfig
    from schemas.settings import ConfigError

    assert EdgeConfig.from_env({}).cookie_secure == "auto" and EdgeConfig.from_env({}).cookie_httponly
    config = EdgeConfig.from_env({"PZ_COOKIE_SECURE": "always", "PZ_COOKIE_HTTPONLY": "false"})
    assert config.cookie_secure == "always" and not config.cookie_httponly
    import pytest

    with pytest.raises(ConfigError, match="PZ_COOKIE_SECURE"):
        EdgeConfig.from_env({"PZ_COOKIE_SECURE": "sometimes"})
