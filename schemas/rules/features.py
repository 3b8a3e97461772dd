"""What a decision knows about one request: the profile, the request context and the clock.

A profile's event times are indexed once (per kind, sorted), and the index is kept with the
profile, so that a cached profile is indexed once for all its requests; every windowed count is
then a binary search.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping

from schemas.profiles import EVENT_KINDS, ItemHistory, Lifetime, Profile
from schemas.rules.periods import PERIOD_STARTS, period_starts

NEVER_S = 10 * 365 * 86_400  # since_last() of something that never happened
BOT_SUSPECT = "bot_suspect"  # the segment the aggregator sets on users with an inhuman event rate


class ProfileIndex:
    __slots__ = ("times", "last", "by_kind", "ascending", "focus", "cart", "_every")

    def __init__(self, items: tuple[ItemHistory, ...]) -> None:
        by_kind: dict[str, list[ItemHistory]] = {}
        times: dict[str, list[int]] = {}
        for history in items:
            if history.times_s:
                by_kind.setdefault(history.event, []).append(history)
                times.setdefault(history.event, []).extend(history.times_s)
        for flat in times.values():
            flat.sort()
        self.times = times  # kind -> every event time, ascending
        self.last = {kind: flat[-1] for kind, flat in times.items()}
        self.by_kind = {kind: tuple(h) for kind, h in by_kind.items()}  # newest first, as in the profile
        # kind -> per item (in by_kind's order), its times ascending: counts by binary search
        self.ascending = {kind: [tuple(reversed(h.times_s)) for h in hs] for kind, hs in by_kind.items()}
        views = self.by_kind.get("view", ())
        # The item the user looks at: viewed last, and of those viewed in that second, viewed most.
        self.focus = max(views, key=lambda h: (h.times_s[0], len(h.times_s))) if views else None
        # Added to the cart after the last purchase (checkout buys the whole cart), newest first.
        bought = self.last.get("purchase", -1)
        self.cart = tuple(h for h in self.by_kind.get("cart", ()) if h.times_s[0] > bought)
        self._every: list[int] | None = None

    def all_times(self) -> list[int]:
        """Every event time of any kind, ascending; made on first use (sessions need it)."""
        if self._every is None:
            self._every = sorted(t for flat in self.times.values() for t in flat)
        return self._every


_NO_ITEMS = ProfileIndex(())


def index_of(profile: Profile | None) -> ProfileIndex:
    if profile is None:
        return _NO_ITEMS
    index = profile.index
    if index is None:
        index = ProfileIndex(profile.items)
        object.__setattr__(profile, "index", index)  # a cache beside the frozen data
    return index  # type: ignore[return-value]


class Facts:
    """One page decision's inputs, and what was worked out from them so far."""

    __slots__ = ("profile", "context", "now_s", "user_key", "memo", "_index")

    def __init__(
        self, profile: Profile | None, context: Mapping[str, object], now_s: int, user_key: int
    ) -> None:
        self.profile = profile
        self.context = context
        self.now_s = now_s
        self.user_key = user_key
        self.memo: dict[object, object] = {}
        self._index = index_of(profile)

    def count(self, kind: str, within_s: int) -> int:
        flat = self._index.times.get(kind)
        return len(flat) - bisect_left(flat, self.now_s - within_s) if flat else 0

    def session_start(self, gap_s: int) -> int | None:
        """When the user's current session began (a run of events, any kind, no further apart than
        the gap, the last within the gap of now); None when no session is open."""
        key = ("session", gap_s)
        if key in self.memo:
            return self.memo[key]  # type: ignore[return-value]
        every = self._index.all_times()
        start: int | None = None
        if every and self.now_s - every[-1] <= gap_s:
            i = len(every) - 1
            while i > 0 and every[i] - every[i - 1] <= gap_s:
                i -= 1
            start = every[i]
        self.memo[key] = start
        return start

    def cart_value(self) -> float:
        return sum(h.value for h in self.cart_items())

    def category_views(self, category: str, within_s: int) -> int:
        since = self.now_s - within_s
        return sum(
            h.count_since(since) for h in self._index.by_kind.get("view", ()) if h.category == category
        )

    def this_period(self, kind: str, period: str) -> int:
        starts = self.context.get(PERIOD_STARTS)
        if not isinstance(starts, dict):
            starts = self.memo.get(PERIOD_STARTS)
            if starts is None:
                starts = self.memo[PERIOD_STARTS] = period_starts(self.now_s)  # no site clock given: UTC
        return self.count(kind, self.now_s - starts[period])  # type: ignore[index]

    def session_views(self, gap_s: int) -> int:
        start = self.session_start(gap_s)
        return 0 if start is None else self.count("view", self.now_s - start)

    def session_length(self, gap_s: int) -> int:
        start = self.session_start(gap_s)
        return 0 if start is None else self.now_s - start

    def item_views(self, within_s: int) -> int:
        found = self.memo.get(within_s)  # several slots ask the same: remembered for the page
        if found is None:
            since = self.now_s - within_s
            found = 0
            for times in self._index.ascending.get("view", ()):
                n = len(times) - bisect_left(times, since)
                if n > found:
                    found = n
            self.memo[within_s] = found
        return found  # type: ignore[return-value]

    def _totals(self) -> Lifetime | None:
        return self.profile.lifetime if self.profile is not None else None

    def lifetime(self, kind: str) -> int:
        """Events of that kind since the user was first seen: the lifetime totals, 0 without them."""
        totals = self._totals()
        if totals is None:
            return 0
        return totals.views if kind == "view" else totals.carts if kind == "cart" else totals.purchases

    def lifetime_revenue(self) -> float:
        totals = self._totals()
        return 0.0 if totals is None else totals.revenue_cents / 100

    def since_first_seen(self) -> int:
        totals = self._totals()
        return 0 if totals is None else max(0, self.now_s - totals.first_seen_s)

    def since_last(self, kind: str) -> int:
        last = self._index.last.get(kind)
        return NEVER_S if last is None else max(0, self.now_s - last)

    def recent_item(self, kind: str, within_s: int, min_count: int) -> ItemHistory | None:
        """The most recent item of that kind with at least min_count events within the window."""
        key = (kind, within_s, min_count)
        if key in self.memo:
            return self.memo[key]  # type: ignore[return-value]
        since = self.now_s - within_s
        index = self._index
        found = None
        for history, times in zip(index.by_kind.get(kind, ()), index.ascending.get(kind, ()), strict=True):
            if len(times) - bisect_left(times, since) >= min_count:
                found = history
                break
        self.memo[key] = found
        return found

    def focus_item(self) -> ItemHistory | None:
        """The item the user is looking at (the fields of a fragment that recommends nothing)."""
        return self._index.focus

    def has(self, kind: str) -> bool:
        return kind in self._index.by_kind

    def cart_items(self) -> tuple[ItemHistory, ...]:
        """Items added to the cart after the last purchase (checkout buys the whole cart), newest first."""
        return self._index.cart

    def items_of(self, kind: str) -> tuple[ItemHistory, ...]:
        """Histories of one kind, most recent first (profiles list them newest first)."""
        return self._index.by_kind.get(kind, ())

    @property
    def new_visitor(self) -> bool:
        """Nothing known about this user: no event in the windows, no lifetime totals."""
        return not self._index.times and self._totals() is None

    @property
    def bot_suspect(self) -> bool:
        return self.profile is not None and BOT_SUSPECT in self.profile.segments


__all__ = ["BOT_SUSPECT", "EVENT_KINDS", "Facts", "NEVER_S", "ProfileIndex", "index_of"]
