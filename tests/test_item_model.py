"""The item model: pairs within sessions, decay, normalisation, and the snapshot's similar-items table."""

from __future__ import annotations

from pathlib import Path

import orjson

from aggregator.item_history import UserHistory, WindowSettings, add_events
from aggregator.item_model import (
    CoOccurrence,
    ItemModelSettings,
    add_user_events,
    next_items,
    pair_field,
    top_similar,
)
from benchmarks.recs import run_recs
from schemas.events import Event
from schemas.snapshot_codec import PartitionPosition, SnapshotContent, SnapshotReader, encode_snapshot

SETTINGS = ItemModelSettings(session_gap_s=1800, neighbours=2, half_life_s=86_400)
T0 = 1_800_000_000


def event(item: str, t_s: int, kind: str = "page_view") -> Event:
    return Event(kind, 1, t_s * 1000, t_s * 1000, item=item, category="c")


def model(*events: Event, state: UserHistory | None = None) -> CoOccurrence:
    together = CoOccurrence.empty()
    add_user_events(together, state or UserHistory(), events, SETTINGS)
    return together


def test_items_of_one_session_pair_up_and_a_long_gap_starts_another() -> None:
    together = model(event("a", T0), event("b", T0 + 60), event("c", T0 + 5000))
    assert set(together.pairs) == {pair_field("a", "b")}  # c came 82 minutes later: a new session
    assert set(together.items) == {"a", "b", "c"}


def test_a_revisited_item_pairs_once_and_each_item_pairs_with_its_closest_neighbours_only() -> None:
    together = model(*(event(i, T0 + n) for n, i in enumerate(["a", "b", "a", "c", "d"])))
    # c pairs with a and b (a was seen again after b, so both are its two nearest); d with c and a
    assert set(together.pairs) == {
        pair_field(*p) for p in [("a", "b"), ("c", "a"), ("c", "b"), ("d", "c"), ("d", "a")]
    }


def test_events_in_any_order_give_the_same_pairs() -> None:
    events = [event("a", T0), event("b", T0 + 10), event("c", T0 + 20)]
    assert model(*events).pairs == model(*reversed(events)).pairs


def test_a_session_goes_on_from_the_stored_state_across_batches() -> None:
    state = UserHistory()
    add_events(state, [event("a", T0)], WindowSettings())
    assert set(model(event("b", T0 + 600), state=state).pairs) == {pair_field("a", "b")}
    assert not model(event("b", T0 + 4000), state=state).pairs  # that session had ended


def test_purchases_weigh_more_and_newer_evidence_more_than_older() -> None:
    viewed = model(event("a", T0), event("b", T0 + 1)).pairs[pair_field("a", "b")]
    bought = model(event("a", T0), event("b", T0 + 1, "purchase")).pairs[pair_field("a", "b")]
    assert bought == 5 * viewed
    a_day_later = model(event("a", T0 + 86_400), event("b", T0 + 86_401)).pairs[pair_field("a", "b")]
    assert a_day_later == 2 * viewed  # one half-life


def test_similarity_is_normalised_so_that_a_best_seller_is_not_everyones_neighbour() -> None:
    pairs = {pair_field("shoe", "sock"): 4.0, pair_field("shoe", "bestseller"): 5.0}
    items = {"shoe": 10.0, "sock": 4.0, "bestseller": 1000.0}
    similar = top_similar(pairs, items, top_k=10)
    assert similar["shoe"] == ["sock", "bestseller"]
    assert similar["sock"] == ["shoe"] and similar["bestseller"] == ["shoe"]
    assert top_similar(pairs, items, top_k=1)["shoe"] == ["sock"]


def test_next_items_start_from_the_last_item_and_skip_the_session() -> None:
    similar = {"b": ["a", "x", "y"], "a": ["z", "x", "w"]}
    assert next_items(similar, ["a", "b"], 3) == ["x", "y", "z"]


def test_the_snapshot_carries_the_similar_items_and_edges_look_them_up_in_place() -> None:
    similar = {f"p{i:03d}": [f"p{(i + k) % 200:03d}" for k in (1, 2, 3)] for i in range(0, 200, 2)}
    content = SnapshotContent("s", T0 * 1000, {0: PartitionPosition(0, -1)}, (), {}, (), similar=similar)
    reader = SnapshotReader(encode_snapshot(content))
    for item, neighbours in similar.items():
        assert reader.similar_items(item) == tuple(neighbours)
    assert reader.similar_items("p001") == () and reader.similar_items("zzz") == ()
    empty = SnapshotReader(encode_snapshot(SnapshotContent("e", T0 * 1000, {}, (), {}, ())))
    assert empty.similar_items("p000") == ()


def test_on_the_generated_clickstream_the_item_model_beats_both_popularity_baselines(tmp_path: Path) -> None:
    assert run_recs(quick=True, json_path=tmp_path / "recs.json") == 0
    metrics = orjson.loads((tmp_path / "recs.json").read_bytes())["metrics"]
    assert metrics["item_model_hit_rate_at_10"] > metrics["category_popularity_hit_rate_at_10"]
    assert metrics["category_popularity_hit_rate_at_10"] > metrics["popularity_hit_rate_at_10"]
    assert metrics["item_model_ndcg_at_10"] > metrics["category_popularity_ndcg_at_10"]
