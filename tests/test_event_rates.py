"""Rate alarms: a spike or a drop against the recent normal raises a metric; a new level becomes normal."""

from __future__ import annotations

from prometheus_client import REGISTRY

from aggregator.event_rates import RateAlarmSettings, RateMonitor

SETTINGS = RateAlarmSettings(tick_s=1.0, baseline_half_life_ticks=3.0, warmup_ticks=3, min_baseline_per_s=5.0)


def run(monitor: RateMonitor, per_tick: dict[str, int]) -> None:
    for event_type, n in per_tick.items():
        for _ in range(n):
            monitor.count(event_type)
    monitor.tick(1.0)


def alarm_gauge(event_type: str, direction: str) -> float | None:
    return REGISTRY.get_sample_value(
        "pz_aggregator_event_rate_alarm", {"type": event_type, "direction": direction}
    )


def test_a_drop_and_a_spike_raise_alarms_and_a_steady_rate_raises_none() -> None:
    monitor = RateMonitor(SETTINGS, ("page_view", "purchase", "click"))
    for _ in range(10):
        run(monitor, {"page_view": 100, "purchase": 10, "click": 1})
    assert monitor.alarms == {}
    run(monitor, {"page_view": 100, "purchase": 2, "click": 0})  # the purchase tag broke
    assert monitor.alarms == {"purchase": "drop"}  # clicks are too few to judge
    assert alarm_gauge("purchase", "drop") == 1.0
    run(monitor, {"page_view": 1000, "purchase": 2, "click": 0})
    assert monitor.alarms == {"purchase": "drop", "page_view": "spike"}
    assert alarm_gauge("page_view", "spike") == 1.0


def test_a_sustained_new_level_becomes_the_baseline_and_the_alarm_clears() -> None:
    monitor = RateMonitor(SETTINGS, ("page_view",))
    for _ in range(10):
        run(monitor, {"page_view": 100})
    run(monitor, {"page_view": 500})
    assert monitor.alarms == {"page_view": "spike"}
    for _ in range(20):
        run(monitor, {"page_view": 500})
    assert monitor.alarms == {}
    assert alarm_gauge("page_view", "spike") == 0.0


def test_nothing_alarms_while_warming_up_or_after_a_rebalance() -> None:
    monitor = RateMonitor(SETTINGS, ("page_view",))
    run(monitor, {"page_view": 100})
    run(monitor, {"page_view": 1000})
    assert monitor.alarms == {}
    for _ in range(10):
        run(monitor, {"page_view": 100})
    monitor.reset()  # half the partitions moved to another member
    run(monitor, {"page_view": 50})
    run(monitor, {"page_view": 50})
    assert monitor.alarms == {}
