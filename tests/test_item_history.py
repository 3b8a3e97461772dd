from __future__ import annotations

from aggregator.item_history import (
    UserHistory,
    WindowSettings,
    add_events,
    dump_state,
    expire,
    load_state,
    to_profile,
)
from schemas.events import Event
from schemas.profile_packing import pack_profiles
from schemas.profiles import Lifetime

SETTINGS = WindowSettings(
    window_s=600, max_times_per_item=4, max_items_per_user=2, cart_window_s=1000, purchase_window_s=5000
)


def view(item: str, t_s: int, category: str = "c") -> Event:
    return Event("page_view", 1, t_s * 1000, t_s * 1000, item=item, category=category)


def cart(item: str, t_s: int) -> Event:
    return Event("add_to_cart", 1, t_s * 1000, t_s * 1000, item=item, category="c")


def test_views_are_counted_per_item_newest_first_including_late_ones() -> None:
    state = UserHistory()
    add_events(state, [view("a", 100), view("a", 300), view("a", 200)], SETTINGS)
    assert state[("view", "a")] == ("c", [300, 200, 100])


def test_the_window_slides_on_the_watermark_not_the_clock() -> None:
    state = UserHistory()
    add_events(state, [view("a", 100), view("a", 650), view("b", 10)], SETTINGS)
    expire(state, watermark_s=700, settings=SETTINGS)
    assert state == {("view", "a"): ("c", [650, 100])}
    expire(state, watermark_s=701, settings=SETTINGS)
    assert state == {("view", "a"): ("c", [650])}


def test_each_kind_keeps_its_own_horizon() -> None:
    state = UserHistory()
    add_events(
        state,
        [view("a", 100), cart("a", 100), Event("purchase", 1, 100_000, 100_000, item="a")],
        SETTINGS,
    )
    expire(state, watermark_s=1000, settings=SETTINGS)
    assert set(state) == {("cart", "a"), ("purchase", "a")}  # the view is older than 600 s
    expire(state, watermark_s=1101, settings=SETTINGS)
    assert set(state) == {("purchase", "a")}
    expire(state, watermark_s=5101, settings=SETTINGS)
    assert state == {}


def test_state_is_bounded_per_item_and_per_user() -> None:
    state = UserHistory()
    add_events(state, [view("a", t) for t in range(10)], SETTINGS)
    assert state[("view", "a")][1] == [9, 8, 7, 6]
    add_events(state, [view("b", 20), view("c", 30), cart("z", 1)], SETTINGS)
    expire(state, watermark_s=30, settings=SETTINGS)
    # the least recently viewed item went first; the cart has its own cap
    assert set(state) == {("view", "b"), ("view", "c"), ("cart", "z")}


def test_clicks_are_not_kept() -> None:
    state = UserHistory()
    add_events(state, [Event("click", 1, 1000, 1000, item="a")], SETTINGS)
    assert state == {}


def test_state_survives_serialisation_and_becomes_a_profile() -> None:
    state = UserHistory()
    add_events(state, [view("a", 5), view("b", 9, "shoes"), cart("a", 7)], SETTINGS)
    restored = load_state(dump_state(state))
    assert restored == state
    profile = to_profile(42, restored, 123)
    assert [(h.event, h.item) for h in profile.items] == [("view", "b"), ("cart", "a"), ("view", "a")]
    assert profile.items[0].category == "shoes"


def test_state_written_before_event_kinds_still_loads() -> None:
    assert load_state(b'{"a": ["c", [5, 3]]}') == {("view", "a"): ("c", [5, 3])}


def test_the_newest_events_value_is_kept_and_travels_in_the_profile() -> None:
    def priced(t_s: int, value: float) -> Event:
        return Event("add_to_cart", 1, t_s * 1000, t_s * 1000, item="a", category="c", value=value)

    state = UserHistory()
    add_events(state, [priced(100, 20.0), priced(200, 25.0), priced(150, 99.0)], SETTINGS)  # 150 is late
    assert state[("cart", "a")] == ("c", [200, 150, 100], 25.0)
    add_events(state, [view("b", 210)], SETTINGS)
    assert state[("view", "b")] == ("c", [210])  # no value: none kept
    restored = load_state(dump_state(state))
    assert restored == state
    assert load_state(b'[["cart", "a", "c", [5]]]') == {("cart", "a"): ("c", [5])}  # written before values
    profile = to_profile(1, restored, 0)
    assert {(h.item, h.value) for h in profile.items} == {("a", 25.0), ("b", 0.0)}
    expire(state, watermark_s=1140, settings=SETTINGS)  # the cart horizon is 1000 s: 100 goes
    assert state[("cart", "a")] == ("c", [200, 150], 25.0)


def purchase(item: str, t_s: int, value: float) -> Event:
    return Event("purchase", 1, t_s * 1000, t_s * 1000, item=item, category="c", value=value)


def test_lifetime_totals_count_every_event_and_outlive_the_windows() -> None:
    state = UserHistory()
    add_events(state, [view("a", 500), view("b", 100), cart("a", 510)], SETTINGS)
    add_events(
        state,
        [Event("click", 1, 90_000, 90_000), purchase("a", 520, 19.99), purchase("b", 530, 5.0)],
        SETTINGS,
    )
    assert state.lifetime == Lifetime(90, 530, views=2, carts=1, purchases=2, revenue_cents=2499)
    expire(state, watermark_s=10**6, settings=SETTINGS)  # every window has passed
    assert not state and not state.forgotten  # the user is kept for the totals
    assert to_profile(9, state, 0).lifetime == state.lifetime
    restored = load_state(dump_state(state))
    assert restored == state and restored.lifetime == state.lifetime
    assert UserHistory().forgotten and load_state(None).forgotten


def test_revenue_that_no_profile_could_carry_saturates_instead_of_failing_the_batch() -> None:
    state = UserHistory()
    state.lifetime = Lifetime(1, 1, purchases=7, revenue_cents=2**53 - 100)
    add_events(state, [purchase("a", 1, 1e9), purchase("b", 2, 1e9)], SETTINGS)  # VALUE_MAX each
    assert state.lifetime is not None
    assert state.lifetime.purchases == 9 and state.lifetime.revenue_cents == 2**53 - 1
    pack_profiles([to_profile(1, state, 0)], 0)  # packs
