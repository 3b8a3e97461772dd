"""Logs while a dependency is down: the same line is not repeated many times a second."""

from __future__ import annotations

import logging

from schemas.logs import RepeatLimit


def test_a_line_repeated_many_times_a_second_is_logged_once_per_interval_with_a_count() -> None:
    clock = [0.0]
    limit = RepeatLimit(10.0, now=lambda: clock[0])
    record = logging.makeLogRecord(
        {"name": "aiokafka", "msg": "Unable connect to node with id %s", "args": (1,)}
    )
    passed = []
    for tick in range(100):  # ten a second for ten seconds, then one more
        clock[0] = tick / 10
        passed.append(limit.filter(record))
    assert passed.count(True) == 1
    clock[0] = 10.5
    later = logging.makeLogRecord(
        {"name": "aiokafka", "msg": "Unable connect to node with id %s", "args": (1,)}
    )
    assert limit.filter(later) and later.repeated == 99  # type: ignore[attr-defined]
    other = logging.makeLogRecord({"name": "aiokafka", "msg": "another message"})
    assert limit.filter(other)  # a different line is not held back
