"""Per-user anomaly flags, derived from the user's windows and shipped in the profile's segments.

`bot_suspect`: more events within `burst_window_s` of the user's newest event than a person makes
(pages opened faster than they can be read). Judged on event times, so a replay flags the same
users. The windows cap what they keep per user (items per kind, times per item), so the threshold
must stay below those caps to be reachable; the defaults are.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.item_history import UserHistory
from schemas.rules.features import BOT_SUSPECT


@dataclass(frozen=True, slots=True)
class AnomalySettings:
    burst_window_s: int = 60
    burst_events: int = 30


def user_flags(state: UserHistory, settings: AnomalySettings) -> tuple[str, ...]:
    newest = max((kept[1][0] for kept in state.values()), default=None)
    if newest is None:
        return ()
    since = newest - settings.burst_window_s
    recent = 0
    for kept in state.values():
        for t in kept[1]:  # newest first
            if t < since:
                break
            recent += 1
    return (BOT_SUSPECT,) if recent >= settings.burst_events else ()
