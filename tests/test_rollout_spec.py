"""The rollout spec that the edge_fleet module hands to `pz fleet rollout`: refused precisely when wrong."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from pz.cli import main
from pz.gate import _histogram_quantile
from pz.rollout import SpecError, parse_spec
from pz.services import ServiceRecord, is_running, save_record, stop_service

GOOD: dict[str, Any] = {
    "state_dir": "/tmp/pz-fleet",
    "step": "canary",
    "waves": [[{"name": "edge-a-0", "port": 18100}]],
    "release": {"version": "v2", "rules_version": "r1", "config": {"PZ_PROFILE_CACHE_SIZE": "5"}},
    "env": {"PZ_PARTITIONS": "4"},
    "secret_env": {"PZ_SIGNING_SECRET": "MY_SECRET"},
    "gate": {"timeout_s": 5, "probes": 3},
}


def _with(path: str, value: Any) -> bytes:
    spec = orjson.loads(orjson.dumps(GOOD))
    *parents, last = path.split(".")
    target = spec
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return orjson.dumps(spec)


def test_a_good_spec_parses() -> None:
    spec = parse_spec(orjson.dumps(GOOD))
    assert spec.waves[0][0].port == 18100
    assert spec.gate.release == "v2" and spec.gate.rules_version == "r1" and spec.gate.probes == 3
    assert spec.edge_env(spec.release) == {
        "PZ_PARTITIONS": "4",
        "PZ_PROFILE_CACHE_SIZE": "5",
        "PZ_RELEASE": "v2",
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "spec: not JSON"),
        (b"[]", "spec: expected an object"),
        (_with("step", "all"), "spec.step: 'all' is neither"),
        (_with("waves", ...), "spec.waves: missing"),
        (_with("waves", [{"name": "x"}]), "spec.waves[0]: expected a list"),
        (_with("waves", [[{"name": "x", "port": 0}]]), "spec.waves[0][0].port: 0 is not a port"),
        (_with("waves", [[{"name": "x", "port": "80"}]]), "spec.waves[0][0].port: expected int, got str"),
        (
            _with("waves", [[{"name": "x", "port": 1}], [{"name": "x", "port": 2}]]),
            "spec.waves[1][0].name: edge 'x' appears twice",
        ),
        (_with("release.version", ""), "spec.release.version: empty"),
        (_with("release.config", {"PZ_X": 5}), "spec.release.config: expected an object of strings"),
        (_with("gate.timeout", 5), "spec.gate.timeout: unknown"),
        (_with("gate.probes", -1), "spec.gate.probes: expected a number ≥ 0"),
        (_with("gate.probes", True), "spec.gate.probes: expected a number ≥ 0"),
    ],
)
def test_a_bad_spec_names_the_field_and_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert str(caught.value).startswith(message)


def test_the_rollout_command_refuses_a_bad_spec_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "rollout", "--spec", _with("step", "all").decode()]) == 2
    assert "invalid spec: spec.step" in capsys.readouterr().err


def test_histogram_quantile_takes_the_bucket_holding_it() -> None:
    buckets = [(0.001, 90.0), (0.005, 99.0), (0.025, 100.0), (float("inf"), 100.0)]
    assert _histogram_quantile(buckets, 0.5) == 0.001
    assert _histogram_quantile(buckets, 0.99) == 0.005
    assert _histogram_quantile(buckets, 1.0) == 0.025
    assert _histogram_quantile([], 0.99) == 0.0


def test_a_recorded_pid_that_is_not_our_process_is_never_signalled(tmp_path: Path) -> None:
    # The PID of this test process, but another start time: as after a PID was reused.
    record = ServiceRecord(
        name="ghost",
        kind="edge",
        port=1,
        pid=os.getpid(),
        argv=["x"],
        env={},
        log=str(tmp_path / "ghost.log"),
        started_at=0.0,
        proc_start=1,
    )
    save_record(tmp_path, record)
    assert not is_running(record)
    assert stop_service(tmp_path, "ghost")  # forgotten, and this process is still here
    assert not stop_service(tmp_path, "ghost")


def test_status_and_stop_of_unknown_services(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "status", "--state-dir", str(tmp_path), "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == []
    assert main(["fleet", "stop", "nothing", "--state-dir", str(tmp_path)]) == 0
    assert "nothing: was not running" in capsys.readouterr().out


def test_a_secret_reference_that_is_not_set_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "fleet",
            "start",
            "e1",
            "--kind",
            "edge",
            "--port",
            "18999",
            "--state-dir",
            str(tmp_path),
            "--secret-env",
            "PZ_SIGNING_SECRET=PZ_TEST_SURELY_UNSET",
        ]
    )
    assert code == 1
    assert (
        "PZ_TEST_SURELY_UNSET is not set: it must hold the value of PZ_SIGNING_SECRET"
        in capsys.readouterr().err
    )
