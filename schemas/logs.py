"""Structured JSON logs, one object per line, the same shape in every pz process."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import orjson

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged as a field.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class RepeatLimit(logging.Filter):
    """One line per logger and message per interval: a client library that fails to reach a dead
    broker logs the same line ten times a second. The first passes; the repeats within `interval_s`
    are held back and counted, and the next one to pass says how many (`repeated`)."""

    def __init__(self, interval_s: float = 10.0, now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._now = now
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self._now()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        if held := self._held.pop(key, 0):
            record.repeated = held
        return True


# Libraries whose connection errors repeat many times a second while a dependency is down; and
# uvicorn's "Exception in ASGI application", which an origin breaking off every response would repeat.
_CHATTY = ("aiokafka", "redis", "uvicorn.error")


def configure_json_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    for name in _CHATTY:
        logging.getLogger(name).addFilter(RepeatLimit())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
