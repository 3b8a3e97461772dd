"""Sliding event-time window of item views per user.

Pure logic: it never reads the clock. Times come from the events, and expiry is judged against the
partition's watermark (the newest event time seen), so replaying the same events gives the same
state whatever the wall clock says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from schemas.events import Event
from schemas.profiles import ItemHistory, Profile


@dataclass(frozen=True, slots=True)
class WindowSettings:
    window_s: int = 600
    max_times_per_item: int = 16  # caps the state per item; counts above it saturate
    max_items_per_user: int = 32  # least recently viewed items are dropped first


# Per-user state: item -> (category, event times in seconds, newest first)
UserViews = dict[str, tuple[str, list[int]]]


def add_views(state: UserViews, events: Iterable[Event], settings: WindowSettings) -> None:
    for event in events:
        if event.type != "page_view" or not event.item:
            continue
        t_s = event.client_ms // 1000
        category, times = state.get(event.item, (event.category, []))
        times.append(t_s)
        times.sort(reverse=True)  # late events land in place; lists are short (capped)
        del times[settings.max_times_per_item :]
        state[event.item] = (event.category or category, times)


def expire(state: UserViews, watermark_s: int, settings: WindowSettings) -> None:
    horizon = watermark_s - settings.window_s
    for item in list(state):
        category, times = state[item]
        kept = [t for t in times if t >= horizon]
        if kept:
            state[item] = (category, kept)
        else:
            del state[item]
    if len(state) > settings.max_items_per_user:
        newest_first = sorted(state, key=lambda i: state[i][1][0], reverse=True)
        for item in newest_first[settings.max_items_per_user :]:
            del state[item]


def to_profile(key: int, state: UserViews, updated_ms: int) -> Profile:
    ordered = sorted(state.items(), key=lambda kv: kv[1][1][0], reverse=True)
    items = tuple(ItemHistory(item=i, category=c, times_s=tuple(t)) for i, (c, t) in ordered)
    return Profile(key=key, items=items, updated_ms=updated_ms)


def dump_state(state: UserViews) -> bytes:
    return orjson.dumps({item: [category, times] for item, (category, times) in state.items()})


def load_state(raw: bytes | None) -> UserViews:
    if not raw:
        return {}
    parsed = orjson.loads(raw)
    return {item: (str(pair[0]), [int(t) for t in pair[1]]) for item, pair in parsed.items()}
