from __future__ import annotations

from edge_worker.decide import DecisionSettings, decide
from schemas import ItemHistory, Profile, SnapshotContent, SnapshotReader, encode_snapshot

NOW_S = 1_000_000
SETTINGS = DecisionSettings(window_s=600, min_views=3, recs_limit=3)


def snapshot() -> SnapshotReader:
    return SnapshotReader(
        encode_snapshot(
            SnapshotContent(
                "s",
                0,
                {},
                ("top1", "top2", "w1", "top3"),
                {"watches": ("w1", "w2", "w3", "w4")},
                (),
            )
        )
    )


def viewed(item: str, times: tuple[int, ...], category: str = "watches") -> Profile:
    return Profile(1, (ItemHistory(item, category, times),))


def test_unknown_users_get_popular_items() -> None:
    result = decide(None, snapshot(), ["recs", "hero"], NOW_S, SETTINGS)
    assert result["recs"] == {"rule": "popular", "items": [{"id": "top1"}, {"id": "top2"}, {"id": "w1"}]}
    assert result["hero"]["rule"] == "default"


def test_three_views_within_ten_minutes_lead_with_similar_items() -> None:
    result = decide(
        viewed("w2", (NOW_S - 1, NOW_S - 100, NOW_S - 599)), snapshot(), ["recs"], NOW_S, SETTINGS
    )
    assert result["recs"]["rule"] == "similar_to_recent"
    assert result["recs"]["based_on"] == "w2"
    assert [i["id"] for i in result["recs"]["items"]] == [
        "w1",
        "w3",
        "w4",
    ]  # the viewed item itself is left out


def test_views_older_than_the_window_do_not_count() -> None:
    result = decide(
        viewed("w2", (NOW_S - 1, NOW_S - 100, NOW_S - 601)), snapshot(), ["recs"], NOW_S, SETTINGS
    )
    assert result["recs"]["rule"] == "popular"


def test_a_thin_category_is_topped_up_with_popular_items() -> None:
    result = decide(viewed("x", (NOW_S,) * 3, category="lamps"), snapshot(), ["recs"], NOW_S, SETTINGS)
    assert [i["id"] for i in result["recs"]["items"]] == ["top1", "top2", "w1"]


def test_item_names_are_escaped_in_fragments() -> None:
    result = decide(viewed("a<b>", (NOW_S,) * 3), snapshot(), ["hero"], NOW_S, SETTINGS)
    assert "a&lt;b&gt;" in result["hero"]["html"]
    assert "<b>a<b>" not in result["hero"]["html"]


def test_no_snapshot_yet_still_answers() -> None:
    result = decide(None, None, ["recs", "hero"], NOW_S, SETTINGS)
    assert result["recs"]["items"] == []
