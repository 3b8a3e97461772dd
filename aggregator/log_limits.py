"""One log line per dependency per interval while it is down, with how many were held back."""

from __future__ import annotations

import logging
import time
from typing import Any


class RateLimitedLog:
    def __init__(self, log: logging.Logger, interval_s: float = 10.0) -> None:
        self._log = log
        self._interval_s = interval_s
        self._last_s: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, message: str, **extra: Any) -> None:
        self.emit(logging.WARNING, key, message, **extra)

    def error(self, key: str, message: str, **extra: Any) -> None:
        self.emit(logging.ERROR, key, message, **extra)

    def emit(self, level: int, key: str, message: str, **extra: Any) -> None:
        now_s = time.monotonic()
        if now_s - self._last_s.get(key, -self._interval_s) < self._interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return
        self._last_s[key] = now_s
        held = self._held.pop(key, 0)
        self._log.log(level, message, extra={**extra, "repeated": held, "interval_s": self._interval_s})
