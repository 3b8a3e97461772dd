"""The starved-fetch detector, in both services' copies (the services share no code but schemas)."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from aggregator.fetch_wait import FetchWait as AggregatorFetchWait
from edge_worker.fetch_wait import FetchWait as EdgeFetchWait

TP = TopicPartition("pz.deltas", 0)


@pytest.mark.parametrize("kind", [AggregatorFetchWait, EdgeFetchWait])
def test_a_position_stuck_below_the_high_water_mark_through_fetches_and_time_is_starved(
    kind: type[AggregatorFetchWait],
) -> None:
    wait = kind(10, max_ms=40, after_fetches=3, after_s=2.0)
    assert not wait.starved(TP, 100, 500, now_s=0.0)  # first sight
    wait.fetches += 3
    assert not wait.starved(TP, 100, 500, now_s=1.0)  # enough fetches, not enough time
    assert wait.starved(TP, 100, 500, now_s=2.5)
    assert wait.widen() and wait.ms == 20
    assert not wait.starved(TP, 100, 500, now_s=2.6)  # widening starts the count over
    assert wait.widen() and wait.ms == 40
    assert not wait.widen() and wait.ms == 40  # at its maximum: the caller must say it is stuck


@pytest.mark.parametrize("kind", [AggregatorFetchWait, EdgeFetchWait])
def test_moving_caught_up_or_idle_partitions_are_not_starved(kind: type[AggregatorFetchWait]) -> None:
    wait = kind(10, after_fetches=1, after_s=0.0)
    assert not wait.starved(TP, 100, 500, now_s=0.0)
    wait.fetches += 5
    assert not wait.starved(TP, 101, 500, now_s=9.0)  # it moved, and little is waiting
    assert not wait.starved(TP, 500, 500, now_s=10.0)  # caught up
    assert not wait.starved(TP, 100, None, now_s=11.0)  # no fetch answered yet
    wait.fetches += 5
    assert not wait.starved(TP, 100, 500, now_s=12.0)  # first sight again after catching up


@pytest.mark.parametrize("kind", [AggregatorFetchWait, EdgeFetchWait])
def test_a_partition_that_crawls_far_behind_the_mark_is_starved_one_that_catches_up_fast_is_not(
    kind: type[AggregatorFetchWait],
) -> None:
    wait = kind(10, after_fetches=20, after_s=2.0)
    assert not wait.starved(TP, 0, 100_000, now_s=0.0)
    wait.fetches += 20
    assert wait.starved(TP, 50, 100_000, now_s=2.0)  # 50 records in 20 fetches, 99 950 waiting
    wait.widen()
    assert not wait.starved(TP, 50, 100_000, now_s=2.0)
    wait.fetches += 20
    assert not wait.starved(TP, 20_050, 100_000, now_s=4.0)  # 1 000 a fetch: catching up
