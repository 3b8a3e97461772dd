"""What a decision knows about one request: the profile, the request context and the clock, with
profile features computed on first use and remembered for the rest of the page decision."""

from __future__ import annotations

from collections.abc import Mapping

from schemas.profiles import ItemHistory, Profile

NEVER_S = 10 * 365 * 86_400  # since_last() of something that never happened


class Facts:
    """One page decision's inputs. Features are memoised: every slot asks, the profile is read once."""

    __slots__ = ("profile", "context", "now_s", "user_key", "memo", "_items")

    def __init__(
        self, profile: Profile | None, context: Mapping[str, object], now_s: int, user_key: int
    ) -> None:
        self.profile = profile
        self.context = context
        self.now_s = now_s
        self.user_key = user_key
        self.memo: dict[object, object] = {}
        self._items: tuple[ItemHistory, ...] = profile.items if profile is not None else ()

    def count(self, kind: str, within_s: int) -> int:
        key = ("count", kind, within_s)
        found = self.memo.get(key)
        if found is None:
            since = self.now_s - within_s
            found = sum(h.count_since(since) for h in self._items if h.event == kind)
            self.memo[key] = found
        return found  # type: ignore[return-value]

    def item_views(self, within_s: int) -> int:
        key = ("item_views", within_s)
        found = self.memo.get(key)
        if found is None:
            since = self.now_s - within_s
            found = max((h.count_since(since) for h in self._items if h.event == "view"), default=0)
            self.memo[key] = found
        return found  # type: ignore[return-value]

    def last_time(self, kind: str) -> int | None:
        key = ("last", kind)
        if key not in self.memo:
            self.memo[key] = max(
                (h.times_s[0] for h in self._items if h.event == kind and h.times_s), default=None
            )
        return self.memo[key]  # type: ignore[return-value]

    def since_last(self, kind: str) -> int:
        last = self.last_time(kind)
        return NEVER_S if last is None else max(0, self.now_s - last)

    def cart_items(self) -> tuple[ItemHistory, ...]:
        """Items added to the cart after the last purchase (checkout buys the whole cart), newest first."""
        found = self.memo.get("cart_items")
        if found is None:
            bought = self.last_time("purchase") or -1
            found = tuple(h for h in self._items if h.event == "cart" and h.times_s and h.times_s[0] > bought)
            self.memo["cart_items"] = found
        return found  # type: ignore[return-value]

    def items_of(self, kind: str) -> tuple[ItemHistory, ...]:
        """Histories of one kind, most recent first (profiles list them newest first)."""
        key = ("items", kind)
        found = self.memo.get(key)
        if found is None:
            found = tuple(h for h in self._items if h.event == kind)
            self.memo[key] = found
        return found  # type: ignore[return-value]

    @property
    def new_visitor(self) -> bool:
        return not self._items
