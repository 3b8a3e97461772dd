"""Recommendation strategies and exclusions, and the catalog they draw on (a snapshot)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol

from schemas.rules.features import Facts
from schemas.rules.model import Recommendation


class Catalog(Protocol):
    """What recommendations draw on besides the profile (a snapshot provides it)."""

    @property
    def popular(self) -> Sequence[str]: ...

    @property
    def popular_by_category(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def out_of_stock(self) -> frozenset[str]: ...

    def similar_items(self, item: str) -> Sequence[str]:
        """The item model's nearest items to `item`, best first; empty when it knows none."""


class EmptyCatalog:
    popular: Sequence[str] = ()
    popular_by_category: Mapping[str, Sequence[str]] = {}
    out_of_stock: frozenset[str] = frozenset()

    def similar_items(self, item: str) -> Sequence[str]:
        return ()


class Picked(NamedTuple):  # a tuple: made once per recommendation, so cheap to make
    items: list[str]
    based_on: str = ""
    category: str = ""


Strategy = Callable[[Facts, Catalog, int, frozenset[str]], Picked | None]


def fill(limit: int, exclude: frozenset[str], skip: str, *sources: Sequence[str]) -> list[str]:
    """Up to `limit` items from the sources in order, none twice, none excluded, not `skip`."""
    picked = [item for item in sources[0][: limit + 1] if item != skip and item not in exclude][:limit]
    if len(picked) == limit or len(sources) == 1 and len(sources[0]) <= limit + 1:
        return picked  # the usual case: the first list (each item once) has enough
    picked = []
    for source in sources:
        for item in source:
            if item != skip and item not in exclude and item not in picked:
                picked.append(item)
                if len(picked) == limit:
                    return picked
    return picked


class _ListCache:
    """Lists that depend only on the catalog and a key (the focus item, the exclusions): the same
    for every user who gets there, so made once per snapshot. Bounded; callers must not modify them."""

    __slots__ = ("_catalog", "_lists")
    LIMIT = 4096

    def __init__(self) -> None:
        self._catalog: object = None
        self._lists: dict[object, list[str]] = {}

    def get(self, catalog: Catalog, key: object) -> list[str] | None:
        if catalog is not self._catalog:  # a new snapshot: new popularity
            self._catalog, self._lists = catalog, {}
        return self._lists.get(key)

    def put(self, key: object, items: list[str]) -> list[str]:
        if len(self._lists) >= self.LIMIT:
            self._lists = {}
        self._lists[key] = items
        return items


def strategy_for(rec: Recommendation) -> Strategy:
    args = rec.args
    if rec.strategy == "similar_to_recent":
        kind, within, min_count = str(args["event"]), int(args["within"]), int(args["min_count"])

        lists = _ListCache()

        def similar(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
            history = f.recent_item(kind, within, min_count)
            if history is None:
                return None
            key = (history.item, history.category, exclude)
            items = lists.get(catalog, key)
            if items is None:  # the item model's neighbours; popularity fills what they leave
                in_category = catalog.popular_by_category.get(history.category, ())
                similar = catalog.similar_items(history.item)
                items = lists.put(
                    key, fill(limit, exclude, history.item, similar, in_category, catalog.popular)
                )
            return Picked(items, history.item, history.category)

        return similar
    if rec.strategy == "popular":
        category = str(args["category"] or "")

        def popular(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
            source = catalog.popular_by_category.get(category, ()) if category else catalog.popular
            if not exclude:  # popularity lists hold each item once
                return Picked(list(source[:limit]), category=category)
            return Picked(fill(limit, exclude, "", source), category=category)

        return popular
    if rec.strategy == "recently_viewed":
        within = int(args["within"])

        def recent(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
            since = f.now_s - within
            return Picked(
                fill(limit, exclude, "", [h.item for h in f.items_of("view") if h.times_s[0] >= since])
            )

        return recent

    def bought_together(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
        cart = f.cart_items()
        if not cart:
            return None
        in_cart = {h.item for h in cart}
        sources = [catalog.similar_items(h.item) for h in cart]  # what sessions paired with the cart
        sources += [catalog.popular_by_category.get(h.category, ()) for h in cart]
        return Picked(fill(limit, exclude | in_cart, "", *sources), cart[0].item, cart[0].category)

    return bought_together


def excluded(f: Facts, exclude: tuple[str, ...], catalog: Catalog) -> frozenset[str]:
    items: set[str] = set()
    if "out_of_stock" in exclude and catalog.out_of_stock:
        if len(exclude) == 1:
            return catalog.out_of_stock  # the snapshot's own set: nothing to build
        items.update(catalog.out_of_stock)
    if "purchased" in exclude and f.has("purchase"):
        items.update([h.item for h in f.items_of("purchase")])
    if "in_cart" in exclude:
        items.update([h.item for h in f.cart_items()])
    if "viewed" in exclude:
        items.update([h.item for h in f.items_of("view")])
    return frozenset(items) if items else NOTHING


NOTHING: frozenset[str] = frozenset()
