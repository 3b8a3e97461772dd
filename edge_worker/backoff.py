"""Reconnect delays: exponential, capped, with jitter so that a fleet does not retry in step."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first_s: float = 0.05, max_s: float = 2.0) -> None:
        self._first_s = first_s
        self._max_s = max_s
        self._next_s = first_s

    def next_delay_s(self) -> float:
        delay = self._next_s * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not a secret
        self._next_s = min(self._next_s * 2, self._max_s)
        return delay

    def reset(self) -> None:
        self._next_s = self._first_s
