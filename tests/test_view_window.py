from __future__ import annotations

from aggregator.view_window import WindowSettings, add_views, dump_state, expire, load_state, to_profile
from schemas.events import Event

SETTINGS = WindowSettings(window_s=600, max_times_per_item=4, max_items_per_user=2)


def view(item: str, t_s: int, category: str = "c") -> Event:
    return Event("page_view", 1, t_s * 1000, t_s * 1000, item=item, category=category)


def test_views_are_counted_per_item_newest_first_including_late_ones() -> None:
    state: dict[str, tuple[str, list[int]]] = {}
    add_views(state, [view("a", 100), view("a", 300), view("a", 200)], SETTINGS)
    assert state["a"] == ("c", [300, 200, 100])


def test_the_window_slides_on_the_watermark_not_the_clock() -> None:
    state: dict[str, tuple[str, list[int]]] = {}
    add_views(state, [view("a", 100), view("a", 650), view("b", 10)], SETTINGS)
    expire(state, watermark_s=700, settings=SETTINGS)
    assert state == {"a": ("c", [650, 100])}
    expire(state, watermark_s=701, settings=SETTINGS)
    assert state == {"a": ("c", [650])}


def test_state_is_bounded_per_item_and_per_user() -> None:
    state: dict[str, tuple[str, list[int]]] = {}
    add_views(state, [view("a", t) for t in range(10)], SETTINGS)
    assert state["a"][1] == [9, 8, 7, 6]
    add_views(state, [view("b", 20), view("c", 30)], SETTINGS)
    expire(state, watermark_s=30, settings=SETTINGS)
    assert set(state) == {"b", "c"}  # the least recently viewed item went first


def test_other_event_types_do_not_count_as_views() -> None:
    state: dict[str, tuple[str, list[int]]] = {}
    add_views(state, [Event("click", 1, 1000, 1000, item="a")], SETTINGS)
    assert state == {}


def test_state_survives_serialisation_and_becomes_a_profile() -> None:
    state: dict[str, tuple[str, list[int]]] = {}
    add_views(state, [view("a", 5), view("b", 9, "shoes")], SETTINGS)
    restored = load_state(dump_state(state))
    assert restored == state
    profile = to_profile(42, restored, 123)
    assert [h.item for h in profile.items] == ["b", "a"]
    assert profile.items[0].category == "shoes"
