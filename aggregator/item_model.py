"""Which items go together: co-occurrence within users' sessions, decayed over time.

Pure logic, like the windows: it never reads the clock, so a replay gives the same scores.

Each time an item first appears in a user's session (a run of events with no gap longer than
`session_gap_s`), it is paired with the few items the session touched just before it. A pair scores
by what the newer event was (a purchase says more than a view) and by when it happened, with forward
decay: a pair at time t adds 2^((t - epoch) / half_life), so newer evidence weighs exponentially more
without ever rewriting old scores, and rankings equal those of true decay. Items' own session counts
(decayed the same way) normalise the pairs, so that a best-seller is not everyone's neighbour.

Pairs are kept per partition (users are partitioned, items are not) and summed when the snapshot is
built; `top_similar` turns the sums into each item's K nearest items.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

from aggregator.item_history import KIND_OF_EVENT, UserHistory
from schemas.events import Event

_EPOCH_S = 1_767_225_600  # 2026-01-01: exponents stay small for centuries at any sane half-life
PAIR_SEPARATOR = " "  # never in an item id (schemas.events allows [A-Za-z0-9._:-])


@dataclass(frozen=True, slots=True)
class ItemModelSettings:
    session_gap_s: int = 1800
    neighbours: int = 2  # earlier items of the session a new item is paired with: bounds work per event
    half_life_s: int = 7 * 86_400
    top_k: int = 10
    view_weight: float = 1.0
    cart_weight: float = 3.0
    purchase_weight: float = 5.0
    # A pair whose decayed score is below this many fresh views is forgotten when the snapshot is built.
    prune_below: float = 0.05

    def weight(self, kind: str) -> float:
        if kind == "purchase":
            return self.purchase_weight
        return self.cart_weight if kind == "cart" else self.view_weight


def decayed(t_s: int, settings: ItemModelSettings) -> float:
    return math.exp2((t_s - _EPOCH_S) / settings.half_life_s)


def pair_field(a: str, b: str) -> str:
    return f"{a}{PAIR_SEPARATOR}{b}" if a < b else f"{b}{PAIR_SEPARATOR}{a}"


@dataclass(slots=True)
class CoOccurrence:
    """What one batch adds: pair scores (by `pair_field`) and item session scores."""

    pairs: dict[str, float]
    items: dict[str, float]

    @classmethod
    def empty(cls) -> CoOccurrence:
        return cls(defaultdict(float), defaultdict(float))

    def __bool__(self) -> bool:
        return bool(self.items)


def _session_before(state: UserHistory, first_s: int, gap_s: int) -> tuple[dict[str, int], int]:
    """Items of the session still open at `first_s` (item -> last time), oldest first, and its last time."""
    recent: dict[str, int] = {}
    for (_, item), kept in state.items():
        newest = kept[1][0]
        if newest <= first_s and first_s - newest <= gap_s and newest > recent.get(item, -1):
            recent[item] = newest
    ordered = dict(sorted(recent.items(), key=lambda kv: kv[1]))
    return ordered, max(ordered.values(), default=-1)


def add_user_events(
    into: CoOccurrence, state_before: UserHistory, events: Iterable[Event], settings: ItemModelSettings
) -> None:
    """Add one user's new events (any order) to `into`, given the user's state before them."""
    timed = sorted(
        (event.client_ms // 1000, kind, event.item)
        for event in events
        if event.item and (kind := KIND_OF_EVENT.get(event.type)) is not None
    )
    if not timed:
        return
    session, last_s = _session_before(state_before, timed[0][0], settings.session_gap_s)
    for t_s, kind, item in timed:
        if t_s - last_s > settings.session_gap_s:
            session = {}  # a new session
        if t_s > last_s:
            last_s = t_s
        if item in session:  # seen in this session already: only its place (most recent last) changes
            del session[item]
            session[item] = t_s
            continue
        score = settings.weight(kind) * decayed(t_s, settings)
        into.items[item] += score
        for other in islice(reversed(session), settings.neighbours):  # the most recent, without a copy
            into.pairs[pair_field(item, other)] += score
        session[item] = t_s


def top_similar(pairs: Mapping[str, float], items: Mapping[str, float], top_k: int) -> dict[str, list[str]]:
    """Each item's `top_k` neighbours, best first, by co-occurrence over the geometric mean of the
    two items' own scores (cosine over sessions); ties by name, so the result is reproducible."""
    candidates: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for field, score in pairs.items():
        a, _, b = field.partition(PAIR_SEPARATOR)
        norm = math.sqrt(items.get(a, 0.0) * items.get(b, 0.0))
        if norm <= 0.0:
            continue
        similarity = score / norm
        candidates[a].append((similarity, b))
        candidates[b].append((similarity, a))
    return {
        item: [other for _, other in heapq.nsmallest(top_k, scored, key=lambda sb: (-sb[0], sb[1]))]
        for item, scored in candidates.items()
    }


def next_items(similar: Mapping[str, Sequence[str]], session: Sequence[str], limit: int) -> list[str]:
    """What the item model would show after `session` (items in order): the last item's neighbours,
    then the earlier items', none already in the session. Used offline by `pz bench recs`."""
    seen = set(session)
    picked: list[str] = []
    for item in reversed(session):
        for other in similar.get(item, ()):
            if other not in seen:
                seen.add(other)
                picked.append(other)
                if len(picked) == limit:
                    return picked
    return picked
