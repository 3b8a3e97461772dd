"""User profiles as the edge decides on them, and their FlatBuffers form (shared by snapshot and delta)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# What a user did with an item; index = the code in snapshots and deltas.
EVENT_KINDS = ("view", "cart", "purchase")


class ItemHistory(NamedTuple):  # a tuple: a cold profile makes eight of them, 2.5x cheaper than a dataclass
    item: str
    category: str
    times_s: tuple[int, ...]  # newest first
    event: str = "view"  # one of EVENT_KINDS
    value: float = 0.0  # of the newest such event that carried one (a price): 0 when none did

    def count_since(self, since_s: int) -> int:
        n = 0
        for t in self.times_s:
            if t < since_s:
                break
            n += 1
        return n


class Lifetime(NamedTuple):
    """A user's totals since first seen. They outlive the windows: the aggregator keeps them as long
    as it keeps the user (PZ_USER_TTL_S after the user's last event)."""

    first_seen_s: int  # event time of the first event applied
    last_seen_s: int  # and of the newest
    views: int = 0  # page views
    carts: int = 0  # add-to-cart events
    purchases: int = 0
    revenue_cents: int = 0  # the sum of the purchases' values


@dataclass(frozen=True, slots=True)
class Profile:
    key: int
    items: tuple[ItemHistory, ...] = ()
    segments: tuple[str, ...] = ()
    updated_ms: int = 0
    lifetime: Lifetime | None = None
    # Derived once by the rules (schemas/rules/features.py) and kept with a cached profile.
    index: object = field(default=None, compare=False, repr=False)
