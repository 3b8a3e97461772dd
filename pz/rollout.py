"""Staged rollout of a release to edge workers: wave by wave, each wave gated, rolled back on failure.

Terraform calls this once for the canary and once for the remaining waves (`pz fleet rollout`),
so that a failed canary stops the apply before any other edge is touched. Within one call, a
failed gate rolls back every edge that call changed, to the last release that passed a gate on
it, and the call fails; the fleet keeps serving on the old release.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from pz.gate import GateCriteria, GateResult, run_gate
from pz.services import is_running, load_record, log_tail, save_record, start_service, stop_service

_SERVICE_OWNED = ("PZ_EDGE_PORT", "PZ_EDGE_STATE_DIR")  # set per edge by services.start_service


class SpecError(ValueError):
    """A rollout spec that cannot be run; the message names the field and the reason."""


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    rules_version: str = ""
    config: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "rules_version": self.rules_version, "config": dict(self.config)}


@dataclass(frozen=True, slots=True)
class EdgeSlot:
    name: str
    port: int


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    state_dir: Path
    step: str  # "canary" or "waves": which part of the rollout this call performs
    waves: list[list[EdgeSlot]]
    release: Release
    env: Mapping[str, str]  # what every edge of the fleet gets, under the release's own config
    gate: GateCriteria
    secret_env: Mapping[str, str] = field(default_factory=dict)  # see services.start_service

    def edge_env(self, release: Release) -> dict[str, str]:
        return {**self.env, **release.config, "PZ_RELEASE": release.version}


def _require(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in obj:
        raise SpecError(f"{where}.{key}: missing")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SpecError(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise SpecError(f"{where}: expected an object of strings")
    return dict(value)


def parse_spec(raw: str | bytes) -> RolloutSpec:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SpecError(f"spec: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SpecError("spec: expected an object")
    step = _require(data, "step", str, "spec")
    if step not in ("canary", "waves"):
        raise SpecError(f"spec.step: {step!r} is neither 'canary' nor 'waves'")
    waves: list[list[EdgeSlot]] = []
    seen: set[str] = set()
    for i, wave in enumerate(_require(data, "waves", list, "spec")):
        if not isinstance(wave, list):
            raise SpecError(f"spec.waves[{i}]: expected a list of edges")
        slots = []
        for j, edge in enumerate(wave):
            where = f"spec.waves[{i}][{j}]"
            if not isinstance(edge, dict):
                raise SpecError(f"{where}: expected an object with name and port")
            name, port = _require(edge, "name", str, where), _require(edge, "port", int, where)
            if not 0 < port < 65536:
                raise SpecError(f"{where}.port: {port} is not a port")
            if name in seen:
                raise SpecError(f"{where}.name: edge {name!r} appears twice")
            seen.add(name)
            slots.append(EdgeSlot(name, port))
        waves.append(slots)
    release_data = _require(data, "release", dict, "spec")
    release = Release(
        version=_require(release_data, "version", str, "spec.release"),
        rules_version=str(release_data.get("rules_version") or ""),
        config=_string_map(release_data.get("config") or {}, "spec.release.config"),
    )
    if not release.version:
        raise SpecError("spec.release.version: empty")
    gate_data = data.get("gate") or {}
    if not isinstance(gate_data, dict):
        raise SpecError("spec.gate: expected an object")
    known = {f.name for f in fields(GateCriteria)} - {"release", "rules_version"}
    unknown = sorted(set(gate_data) - known)
    if unknown:
        raise SpecError(f"spec.gate.{unknown[0]}: unknown (known: {', '.join(sorted(known))})")
    for key, value in gate_data.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0 or math.isnan(value):
            raise SpecError(f"spec.gate.{key}: expected a number ≥ 0")
    gate = GateCriteria(release=release.version, rules_version=release.rules_version, **gate_data)
    return RolloutSpec(
        state_dir=Path(_require(data, "state_dir", str, "spec")),
        step=step,
        waves=waves,
        release=release,
        env=_string_map(data.get("env") or {}, "spec.env"),
        gate=gate,
        secret_env=_string_map(data.get("secret_env") or {}, "spec.secret_env"),
    )


class RolloutLog:
    """Human lines to stdout (Terraform shows them) and JSON lines to STATE_DIR/rollout.log."""

    def __init__(self, state_dir: Path, step: str, say: Callable[[str], None] = print) -> None:
        self._path = state_dir / "rollout.log"
        self._step = step
        self._say = say
        state_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, action: str, edge: str, release: str, detail: str = "", wave: int = -1) -> None:
        where = self._step if wave < 0 else f"{self._step} wave {wave}"
        self._say(f"[{where}] {edge}: {action} {release} {detail}".rstrip())
        entry = {"ts": time.time(), "step": self._step, "wave": wave, "edge": edge, "action": action}
        with self._path.open("ab") as out:
            out.write(orjson.dumps({**entry, "release": release, "detail": detail}) + b"\n")


@dataclass
class RolloutOutcome:
    passed: bool
    gates: list[GateResult] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    message: str = ""


def _deploy(spec: RolloutSpec, edge: EdgeSlot, release: Release) -> bool:
    """Run `release` on `edge`; False when the running process already has its settings.

    A release that changes only the rules version restarts nothing: rules travel inside the
    snapshot, and the gate checks that the edge serves them."""
    record = load_record(spec.state_dir, edge.name)
    env = spec.edge_env(release)
    if (
        record is not None
        and is_running(record)
        and record.port == edge.port
        and {k: v for k, v in record.env.items() if k not in _SERVICE_OWNED} == env
        and record.secret_env == dict(spec.secret_env)
    ):
        if record.release != release.as_dict():
            record.release = release.as_dict()
            save_record(spec.state_dir, record)
        return False
    start_service(
        spec.state_dir,
        edge.name,
        "edge",
        edge.port,
        spec.edge_env(release),
        release.as_dict(),
        dict(spec.secret_env),
    )
    return True


def _gate(spec: RolloutSpec, edge: EdgeSlot, criteria: GateCriteria) -> GateResult:
    def running() -> bool:
        record = load_record(spec.state_dir, edge.name)
        return record is not None and is_running(record)

    result = run_gate(f"http://127.0.0.1:{edge.port}", criteria, running)
    record = load_record(spec.state_dir, edge.name)
    if not result.passed and record is not None and not is_running(record):
        result.problems.append(
            f"its last words: {log_tail(record, 1).strip() or '(none)'} (see {record.log})"
        )
    return result


def _roll_back(spec: RolloutSpec, changed: list[EdgeSlot], log: RolloutLog) -> list[str]:
    rolled_back = []
    for edge in reversed(changed):
        record = load_record(spec.state_dir, edge.name)
        good = record.last_good if record is not None else {}
        if not good:
            stop_service(spec.state_dir, edge.name)
            log("stopped (no earlier good release)", edge.name, spec.release.version)
            continue
        release = Release(**good["release"])
        start_service(
            spec.state_dir, edge.name, "edge", edge.port, good["env"], release.as_dict(), good["secret_env"]
        )
        result = _gate(
            spec, edge, GateCriteria(release.version, release.rules_version, timeout_s=spec.gate.timeout_s)
        )
        log("rolled back to", edge.name, release.version, result.summary())
        rolled_back.append(edge.name)
    return rolled_back


def run_rollout(spec: RolloutSpec, say: Callable[[str], None] = print) -> RolloutOutcome:
    log = RolloutLog(spec.state_dir, spec.step, say)
    outcome = RolloutOutcome(passed=True)
    changed: list[EdgeSlot] = []
    version = spec.release.version
    for index, wave in enumerate(spec.waves):
        for edge in wave:
            if _deploy(spec, edge, spec.release):
                changed.append(edge)
                log("started", edge.name, version, wave=index)
            else:
                log("already on", edge.name, version, wave=index)
        failed = []
        for edge in wave:
            result = _gate(spec, edge, spec.gate)
            outcome.gates.append(result)
            log(
                "gate passed" if result.passed else "gate FAILED", edge.name, version, result.summary(), index
            )
            if not result.passed:
                failed.append(result)
        if failed:
            outcome.passed = False
            outcome.rolled_back = _roll_back(spec, changed, log)
            outcome.message = (
                f"rollout of release {version!r} stopped at the {spec.step} (wave {index}): "
                + " | ".join(r.summary() for r in failed)
                + f"; rolled back: {', '.join(outcome.rolled_back) or 'none'}"
            )
            return outcome
        for edge in wave:  # this release is now the one to return to
            record = load_record(spec.state_dir, edge.name)
            if record is not None:
                record.last_good = {
                    "release": spec.release.as_dict(),
                    "env": spec.edge_env(spec.release),
                    "secret_env": dict(spec.secret_env),
                }
                save_record(spec.state_dir, record)
    outcome.message = f"release {version!r}: {spec.step} done, {sum(map(len, spec.waves))} edges gated"
    return outcome
