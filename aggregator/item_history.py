"""Sliding event-time windows of what each user did with each item: viewed, added to cart, bought.

Pure logic: it never reads the clock. Times come from the events, and expiry is judged against the
partition's watermark (the newest event time seen), so replaying the same events gives the same
state whatever the wall clock says. Each kind of event keeps its own horizon: views matter for
minutes, carts for a day, purchases for weeks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from schemas.events import Event
from schemas.profiles import EVENT_KINDS, ItemHistory, Lifetime, Profile

KIND_OF_EVENT = {"page_view": "view", "add_to_cart": "cart", "purchase": "purchase"}
_REVENUE_LIMIT_CENTS = 2**53 - 1  # what a packed profile carries


@dataclass(frozen=True, slots=True)
class WindowSettings:
    window_s: int = 600  # views
    max_times_per_item: int = 16  # caps the state per item; counts above it saturate
    max_items_per_user: int = 32  # per kind; least recently used items are dropped first
    cart_window_s: int = 86_400
    purchase_window_s: int = 30 * 86_400

    def horizon_s(self, kind: str) -> int:
        if kind == "view":
            return self.window_s
        return self.cart_window_s if kind == "cart" else self.purchase_window_s


# What is kept of one (kind, item): its category, event times in seconds (newest first), and the
# value of the newest event that carried one (a price in the cart; absent when none did).
Kept = tuple[str, list[int]] | tuple[str, list[int], float]


class UserHistory(dict[tuple[str, str], Kept]):
    """Per-user state: (kind, item) -> what is kept in the windows; and `lifetime`, the user's totals
    since first seen, which outlive the windows (None before the first event). The user is kept, and
    so are the totals, until PZ_USER_TTL_S passes without an event."""

    # A class default, not __init__ or __slots__: made for every user in every batch, this way it is
    # made by dict's own constructor (0.27 against 0.41 us with a Python __init__).
    lifetime: Lifetime | None = None

    @property
    def forgotten(self) -> bool:
        """Nothing left to keep: the user's state is deleted."""
        return self.lifetime is None and not self


def add_events(state: UserHistory, events: Iterable[Event], settings: WindowSettings) -> None:
    events = list(events)
    if events:
        state.lifetime = count_lifetime(state.lifetime, events)
    for event in events:
        kind = KIND_OF_EVENT.get(event.type)
        if kind is None or not event.item:
            continue
        t_s = event.client_ms // 1000
        kept = state.get((kind, event.item))
        category, times = (kept[0], kept[1]) if kept is not None else (event.category, [])
        value = kept[2] if kept is not None and len(kept) > 2 else None
        if event.value and (not times or t_s >= times[0]):
            value = event.value  # the newest event's value wins (a price can change)
        times.append(t_s)
        times.sort(reverse=True)  # late events land in place; lists are short (capped)
        del times[settings.max_times_per_item :]
        category = event.category or category
        state[(kind, event.item)] = (category, times) if value is None else (category, times, value)


def count_lifetime(lifetime: Lifetime | None, events: list[Event]) -> Lifetime:
    """The totals with `events` (one user's, any order) counted in."""
    if lifetime is None:
        first_s = last_s = events[0].client_ms // 1000
        views = carts = purchases = revenue_cents = 0
    else:
        first_s, last_s, views, carts, purchases, revenue_cents = lifetime
    for event in events:  # one pass: this runs for every user in every batch
        t_s = event.client_ms // 1000
        if t_s < first_s:
            first_s = t_s
        elif t_s > last_s:
            last_s = t_s
        kind = event.type
        if kind == "page_view":
            views += 1
        elif kind == "add_to_cart":
            carts += 1
        elif kind == "purchase":
            purchases += 1
            revenue_cents += round(event.value * 100)  # 0 .. VALUE_MAX: intake sends others to the DLQ
    # Saturates instead of failing to pack (a crash loop): ~90 000 billion in any currency.
    return Lifetime(first_s, last_s, views, carts, purchases, min(revenue_cents, _REVENUE_LIMIT_CENTS))


def expire(state: UserHistory, watermark_s: int, settings: WindowSettings) -> None:
    oldest = {kind: watermark_s - settings.horizon_s(kind) for kind in EVENT_KINDS}
    for key, kept in list(state.items()):
        times = kept[1]
        cutoff = oldest[key[0]]
        if not times:
            del state[key]
        elif times[-1] >= cutoff:
            continue  # the usual case: nothing of this item has expired (times are newest first)
        elif times[0] < cutoff:
            del state[key]
        else:
            state[key] = (kept[0], [t for t in times if t >= cutoff], *kept[2:])
    if len(state) <= settings.max_items_per_user:
        return  # no kind can be over its cap
    for kind in EVENT_KINDS:
        keys = [key for key in state if key[0] == kind]
        if len(keys) > settings.max_items_per_user:
            newest_first = sorted(keys, key=lambda k: state[k][1][0], reverse=True)
            for key in newest_first[settings.max_items_per_user :]:
                del state[key]


def to_profile(key: int, state: UserHistory, updated_ms: int, segments: tuple[str, ...] = ()) -> Profile:
    ordered = sorted(state.items(), key=lambda kv: kv[1][1][0], reverse=True)
    items = tuple(
        ItemHistory(item, kept[0], tuple(kept[1]), kind, kept[2] if len(kept) > 2 else 0.0)
        for (kind, item), kept in ordered
    )
    return Profile(key, items, segments, updated_ms, state.lifetime)


def dump_state(state: UserHistory) -> bytes:
    rows: list[list[object]] = [[kind, item, *kept] for (kind, item), kept in state.items()]
    if state.lifetime is not None:
        rows.insert(0, list(state.lifetime))
    return orjson.dumps(rows)


def load_state(raw: bytes | None) -> UserHistory:
    if not raw:
        return UserHistory()
    parsed = orjson.loads(raw)
    if isinstance(parsed, dict):  # before carts and purchases were kept: views only, by item
        return UserHistory(
            {("view", item): (str(pair[0]), [int(t) for t in pair[1]]) for item, pair in parsed.items()}
        )
    state = UserHistory()
    rows = iter(parsed)
    if parsed and parsed[0] and isinstance(parsed[0][0], int):  # the lifetime totals, first if present
        state.lifetime = Lifetime(*next(rows))
    # [kind, item, category, times] and, when an event carried one, its value: as dump_state wrote
    # them, so orjson's strings and integers are taken as they come (this runs per user per batch)
    for row in rows:
        state[(row[0], row[1])] = (row[2], row[3], float(row[4])) if len(row) > 4 else (row[2], row[3])
    return state
