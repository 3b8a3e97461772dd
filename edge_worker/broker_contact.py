"""When the edge last heard from the broker: readiness counts the broker as reachable only while the
event producer or the delta consumer got an answer within the last few seconds, and says since when
it is not. Flags set on connect and never reset told `ready` for minutes after the broker died."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BrokerState:
    reachable: bool
    last_answer_s_ago: float | None  # None: never answered
    down_since_ms: int | None  # wall clock, when it stopped answering (None while reachable)


class BrokerContact:
    def __init__(self, fresh_s: float) -> None:
        self._fresh_s = fresh_s
        self._last_answer_s: float | None = None
        self._last_answer_wall_ms: int | None = None
        self._started_wall_ms = int(time.time() * 1000)

    def answered(self) -> None:
        self._last_answer_s = time.monotonic()
        self._last_answer_wall_ms = int(time.time() * 1000)

    def state(self) -> BrokerState:
        if self._last_answer_s is None:
            return BrokerState(False, None, self._started_wall_ms)
        ago_s = time.monotonic() - self._last_answer_s
        if ago_s <= self._fresh_s:
            return BrokerState(True, ago_s, None)
        assert self._last_answer_wall_ms is not None
        return BrokerState(False, ago_s, self._last_answer_wall_ms)
