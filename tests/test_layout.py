"""The architecture as DESIGN.md draws it: the services never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import schemas

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "edge_worker": {"aggregator", "pz", "benchmarks"},
    "aggregator": {"edge_worker", "pz", "benchmarks"},
    "schemas": {"edge_worker", "aggregator", "pz", "benchmarks", "aiokafka", "redis", "starlette", "httpx"},
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_boundaries(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if imported_roots(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_public_names_of_schemas_are_sorted_and_exist() -> None:
    assert schemas.__all__ == sorted(schemas.__all__)
    for name in schemas.__all__:
        assert hasattr(schemas, name)
