"""Data quality: per-type event rates against their recent normal, with spike and drop alarms.

Every `tick_s` the events applied per type become a rate, compared with a slowly moving baseline
(an exponentially weighted mean): more than `spike_factor` times it is a spike (a bot wave, a
double-firing tag), less than 1/`drop_factor` of it is a drop (a broken tag, a release that lost the
beacon). Types too quiet to judge (`min_baseline_per_s`) never alarm, nor does anything during the
first `warmup_ticks`. A sustained new level becomes the baseline within a few half-lives and the
alarm clears. A member's share of the traffic changes with its partitions, so a rebalance starts
the baselines afresh.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from aggregator import metrics

log = logging.getLogger("pz.aggregator.event_rates")


@dataclass(frozen=True, slots=True)
class RateAlarmSettings:
    tick_s: float = 10.0
    baseline_half_life_ticks: float = 30.0  # five minutes at the default tick
    warmup_ticks: int = 6
    spike_factor: float = 3.0
    drop_factor: float = 3.0
    min_baseline_per_s: float = 1.0


class RateMonitor:
    def __init__(self, settings: RateAlarmSettings, types: tuple[str, ...]) -> None:
        self._settings = settings
        self._types = types
        self._alpha = 1 - 0.5 ** (1 / settings.baseline_half_life_ticks)
        self._counts: Counter[str] = Counter()
        self._baseline: dict[str, float] = {}
        self._ticks = 0
        self.alarms: dict[str, str] = {}  # type -> "spike" | "drop", for the types alarming now

    def count(self, event_type: str, n: int = 1) -> None:
        self._counts[event_type] += n

    def reset(self) -> None:
        """Start the baselines afresh (this member's share of the traffic changed)."""
        self._baseline.clear()
        self._ticks = 0
        for event_type in list(self.alarms):
            self._set_alarm(event_type, "")

    def tick(self, elapsed_s: float) -> dict[str, float]:
        """Close one interval: rates per second by type, alarms updated. Returns the rates."""
        s = self._settings
        rates = {t: self._counts.get(t, 0) / elapsed_s for t in self._types}
        self._counts.clear()
        self._ticks += 1
        for event_type, rate in rates.items():
            metrics.EVENT_RATE.labels(event_type).set(rate)
            baseline = self._baseline.get(event_type)
            alarm = ""
            if baseline is not None and self._ticks > s.warmup_ticks and baseline >= s.min_baseline_per_s:
                if rate > baseline * s.spike_factor:
                    alarm = "spike"
                elif rate < baseline / s.drop_factor:
                    alarm = "drop"
            self._set_alarm(event_type, alarm, rate, baseline)
            self._baseline[event_type] = (
                rate if baseline is None else baseline + self._alpha * (rate - baseline)
            )
            metrics.EVENT_RATE_BASELINE.labels(event_type).set(self._baseline[event_type])
        return rates

    def _set_alarm(
        self, event_type: str, alarm: str, rate: float = 0.0, baseline: float | None = None
    ) -> None:
        was = self.alarms.get(event_type, "")
        if alarm == was:
            return
        for direction in ("spike", "drop"):
            metrics.EVENT_RATE_ALARM.labels(event_type, direction).set(1 if alarm == direction else 0)
        if alarm:
            self.alarms[event_type] = alarm
            metrics.EVENT_RATE_ALARMS.labels(event_type, alarm).inc()
            log.warning(
                "event rate alarm",
                extra={
                    "type": event_type,
                    "alarm": alarm,
                    "rate_per_s": round(rate, 2),
                    "baseline_per_s": baseline,
                },
            )
        else:
            del self.alarms[event_type]
            log.info("event rate back to normal", extra={"type": event_type, "was": was})
