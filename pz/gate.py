"""The health gate between rollout waves: is this edge fit to take traffic on the new release?

An edge passes when, within the timeout, it is ready, reports the expected release and rules
version, serves a snapshot no older than allowed, answers probe decisions without errors, and its
decision latency (the edge's own histogram, and the probes' round trips) is within bounds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True, slots=True)
class GateCriteria:
    release: str
    rules_version: str = ""  # empty: any
    max_snapshot_age_s: float = 300.0
    probes: int = 40
    max_error_rate: float = 0.0  # share of probe decisions, and of the edge's own 5xx answers
    max_decision_p99_ms: float = 25.0  # in-process, from the edge's histogram
    max_probe_p99_ms: float = 250.0  # the probes' round trips on the gate's own network path
    timeout_s: float = 60.0


@dataclass
class GateResult:
    url: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    waited_s: float = 0.0

    def summary(self) -> str:
        figures = ", ".join(f"{k}={v:g}" for k, v in sorted(self.figures.items()))
        if self.passed:
            return f"gate passed for {self.url} after {self.waited_s:.1f} s ({figures})"
        return f"gate FAILED for {self.url} after {self.waited_s:.1f} s: " + "; ".join(self.problems)


def _readiness_problems(client: httpx.Client, url: str, criteria: GateCriteria) -> list[str]:
    try:
        response = client.get(f"{url}/readyz")
    except httpx.HTTPError as exc:
        return [f"no answer from {url}/readyz ({type(exc).__name__})"]
    try:
        body = response.json()
    except ValueError:
        return [f"/readyz answered {response.status_code} without JSON"]
    problems = []
    if response.status_code != 200 or not body.get("ready"):
        failing = [name for name, ok in (body.get("checks") or {}).items() if not ok]
        problems.append(f"not ready (failing checks: {', '.join(failing) or 'unknown'})")
    if body.get("release") != criteria.release:
        problems.append(f"runs release {body.get('release')!r}, expected {criteria.release!r}")
    sync = body.get("sync") or {}
    if criteria.rules_version and sync.get("rules_version") != criteria.rules_version:
        problems.append(f"serves rules {sync.get('rules_version')!r}, expected {criteria.rules_version!r}")
    age = sync.get("snapshot_age_s")
    if age is None:
        problems.append("serves no snapshot")
    elif age > criteria.max_snapshot_age_s:
        problems.append(f"snapshot is {age:.0f} s old (at most {criteria.max_snapshot_age_s:g} s)")
    return problems


def _probe(client: httpx.Client, url: str, criteria: GateCriteria) -> tuple[list[str], dict[str, float]]:
    """Whole-page decisions for new visitors and for one returning visitor (its cookie kept)."""
    latencies: list[float] = []
    errors = 0
    returning = httpx.Cookies()
    for i in range(criteria.probes):
        cookies = returning if i % 2 else None
        started = time.perf_counter()
        try:
            response = client.get(
                f"{url}/pz/decide",
                params={"slots": "hero,recs", "probe": uuid.uuid4().hex[:8]},
                cookies=cookies,
            )
            ok = response.status_code == 200 and "slots" in response.json()
            if i == 0:
                returning.update(response.cookies)
        except (httpx.HTTPError, ValueError):
            ok = False
        latencies.append((time.perf_counter() - started) * 1000)
        errors += not ok
    latencies.sort()
    figures = {
        "probe_error_rate": errors / max(1, criteria.probes),
        "probe_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
    }
    problems = []
    if figures["probe_error_rate"] > criteria.max_error_rate:
        problems.append(
            f"{errors} of {criteria.probes} probe decisions failed (at most {criteria.max_error_rate:.1%})"
        )
    if figures["probe_p99_ms"] > criteria.max_probe_p99_ms:
        problems.append(f"probe p99 {figures['probe_p99_ms']} ms (at most {criteria.max_probe_p99_ms:g} ms)")
    return problems, figures


_HEALTH_ROUTES = ("/readyz", "/healthz", "/metrics")


def _histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Upper bound of the bucket holding quantile q (cumulative Prometheus buckets, sorted)."""
    total = buckets[-1][1] if buckets else 0.0
    for bound, count in buckets:
        if total and count >= q * total:
            return bound
    return 0.0


def _metric_problems(
    client: httpx.Client, url: str, criteria: GateCriteria
) -> tuple[list[str], dict[str, float]]:
    try:
        text = client.get(f"{url}/metrics").text
    except httpx.HTTPError as exc:
        return [f"no answer from {url}/metrics ({type(exc).__name__})"], {}
    requests = server_errors = 0.0
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # Not-ready answers while it starts are the gate's own polling, not errors users saw.
            if sample.name == "pz_edge_requests_total" and sample.labels.get("route") not in _HEALTH_ROUTES:
                requests += sample.value
                server_errors += sample.value if sample.labels.get("status", "").startswith("5") else 0
            elif sample.name == "pz_edge_decision_seconds_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    figures = {
        "server_error_rate": round(server_errors / requests, 4) if requests else 0.0,
        "decision_p99_ms": _histogram_quantile(buckets, 0.99) * 1000,
    }
    problems = []
    if figures["server_error_rate"] > criteria.max_error_rate:
        problems.append(
            f"{figures['server_error_rate']:.2%} of answers were 5xx (at most {criteria.max_error_rate:.1%})"
        )
    if figures["decision_p99_ms"] > criteria.max_decision_p99_ms:
        problems.append(
            f"decision p99 ≤ {figures['decision_p99_ms']:g} ms (at most {criteria.max_decision_p99_ms:g} ms)"
        )
    return problems, figures


def run_gate(url: str, criteria: GateCriteria, still_running: Callable[[], bool] | None = None) -> GateResult:
    """Check until every criterion holds or the timeout passes; give up at once if the edge exits."""
    started = time.monotonic()
    result = GateResult(url, passed=False)
    with httpx.Client(timeout=2.0) as client:
        while True:
            if still_running is not None and not still_running():
                result.problems = ["the edge process exited"]
                break
            problems = _readiness_problems(client, url, criteria)
            if not problems:
                probe_problems, probe_figures = _probe(client, url, criteria)
                metric_problems, metric_figures = _metric_problems(client, url, criteria)
                problems = probe_problems + metric_problems
                result.figures = {**probe_figures, **metric_figures}
            result.problems = problems
            if not problems:
                result.passed = True
                break
            if time.monotonic() - started > criteria.timeout_s:
                break
            time.sleep(0.25)
    result.waited_s = time.monotonic() - started
    return result
