"""The page decision: which fragment and which items each requested slot shows.

This is the walking skeleton's one rule, from the product brief: someone who viewed a product at
least `min_views` times within `window_s` sees items similar to it (same category, most popular
first); everyone else sees the most popular items. The rules language replaces it later.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from schemas.profiles import ItemHistory, Profile
from schemas.snapshot_codec import SnapshotReader

SLOTS = ("hero", "recs")


@dataclass(frozen=True, slots=True)
class DecisionSettings:
    window_s: int = 600
    min_views: int = 3
    recs_limit: int = 8


def _focus_item(profile: Profile | None, now_s: int, settings: DecisionSettings) -> ItemHistory | None:
    """The most recently viewed item seen at least min_views times within the window."""
    if profile is None:
        return None
    since_s = now_s - settings.window_s
    best: ItemHistory | None = None
    for history in profile.items:
        if (
            history.event == "view"
            and history.count_since(since_s) >= settings.min_views
            and (best is None or history.times_s[0] > best.times_s[0])
        ):
            best = history
    return best


def _pick(candidates: Sequence[str], exclude: str, limit: int, fallback: Sequence[str] = ()) -> list[str]:
    picked: list[str] = []
    for source in (candidates, fallback):
        for item in source:
            if item != exclude and item not in picked:
                picked.append(item)
                if len(picked) == limit:
                    return picked
    return picked


def decide(
    profile: Profile | None,
    snapshot: SnapshotReader | None,
    slots: Sequence[str],
    now_s: int,
    settings: DecisionSettings,
) -> dict[str, Any]:
    focus = _focus_item(profile, now_s, settings)
    popular: Sequence[str] = snapshot.popular if snapshot is not None else ()
    decision: dict[str, Any] = {}
    for slot in slots:
        if slot == "recs":
            if focus is not None:
                by_category = snapshot.popular_by_category.get(focus.category, ()) if snapshot else ()
                # the category's most popular first, then the overall ones so the strip is never short
                items = _pick(by_category, focus.item, settings.recs_limit, popular)
                decision[slot] = {
                    "rule": "similar_to_recent",
                    "based_on": focus.item,
                    "category": focus.category,
                    "items": [{"id": i} for i in items],
                }
            else:
                items = _pick(popular, "", settings.recs_limit)
                decision[slot] = {"rule": "popular", "items": [{"id": i} for i in items]}
        elif slot == "hero":
            if focus is not None:
                fragment = (
                    f'<p class="pz-hero">Still thinking about <b>{html.escape(focus.item)}</b>? '
                    f"Here is more like it.</p>"
                )
                decision[slot] = {"rule": "similar_to_recent", "html": fragment}
            else:
                decision[slot] = {
                    "rule": "default",
                    "html": '<p class="pz-hero">Welcome! Have a look around.</p>',
                }
    return decision
