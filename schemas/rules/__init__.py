"""The rules model: a rules file (YAML) → a validated RuleSet → compiled decisions (compiler.py)."""

from __future__ import annotations

from importlib import resources

from schemas.rules.model import RuleSet, RulesInvalid, load_rules_json, validate_rules
from schemas.rules.source import Problem, RulesSyntaxError, load_yaml

MAX_RULES_BYTES = 1024 * 1024


def load_rules_text(text: str) -> RuleSet:
    """Parse and validate a rules file; RulesInvalid lists every problem, sorted by position."""
    if len(text.encode()) > MAX_RULES_BYTES:
        raise RulesInvalid([Problem((), f"larger than {MAX_RULES_BYTES // 1024} KiB")])
    try:
        data, positions, problems = load_yaml(text)
    except RulesSyntaxError as exc:
        raise RulesInvalid([exc.problem]) from None
    try:
        rules = validate_rules(data, positions)
    except RulesInvalid as exc:
        problems = problems + exc.problems
    if problems:
        raise RulesInvalid(sorted(problems, key=lambda p: (p.line, p.column)))
    return rules


def default_rules() -> RuleSet:
    """The rules used when none are configured (schemas/rules/default_rules.yaml)."""
    return load_rules_text(resources.files("schemas.rules").joinpath("default_rules.yaml").read_text())


__all__ = [
    "default_rules",
    "Problem",
    "RuleSet",
    "RulesInvalid",
    "load_rules_json",
    "load_rules_text",
    "validate_rules",
]
