"""A circuit breaker for the origin: stop hammering an origin that keeps failing.

Closed: requests go through, consecutive failures are counted. After `failure_threshold` of them
it opens: requests are answered at once with the fallback for `open_s` seconds. Then one request is
let through (half-open): success closes the breaker, failure opens it again.
"""

from __future__ import annotations

import time
from enum import Enum


class BreakerState(Enum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, open_s: float = 5.0) -> None:
        self._threshold = failure_threshold
        self._open_s = open_s
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.state = BreakerState.CLOSED

    def allow(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and now - self._opened_at >= self._open_s:
            self.state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        if self.state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True  # exactly one request probes the origin
            return True
        return False

    def retry_after_s(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        return max(1, round(self._open_s - (now - self._opened_at)))

    def succeeded(self) -> None:
        self._failures = 0
        self._trial_in_flight = False
        self.state = BreakerState.CLOSED

    def failed(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._failures += 1
        self._trial_in_flight = False
        if self.state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self.state = BreakerState.OPEN
            self._opened_at = now
