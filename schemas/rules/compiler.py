"""A validated RuleSet compiled once into a Program: generated code per slot and per segment for
decisions (codegen.py), the closures of conditions.py for explanations, experiments sticky per user.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.rules.actions import CompiledAction
from schemas.rules.codegen import generate
from schemas.rules.conditions import Evaluator, compile_condition
from schemas.rules.expressions import BoolOp, Call, Compare, Name, Node, Not, source_of, walk
from schemas.rules.features import Facts
from schemas.rules.model import Experiment, RuleSet
from schemas.rules.periods import PERIOD_STARTS
from schemas.rules.recommend import Catalog, EmptyCatalog
from schemas.rules.vocabulary import CONTEXT_NAMES, TypeChecker, word_arguments

__all__ = ["Catalog", "CompiledAction", "EmptyCatalog", "Exposure", "Program", "compile_rules"]


# --- experiments --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledExperiment:
    name: str
    holdout: float
    cumulative: tuple[tuple[float, str], ...]  # (upper bound in percent, variant)
    exposure_sample: float
    salt: int

    def assign(self, user_key: int) -> str:
        """The user's variant ("" in the holdout): the same user, the same answer, every time.

        User keys are already keyed hashes; mixing in the experiment's own salt (SplitMix64's
        finaliser) makes each experiment's split independent of the others. A negative key (a
        visitor without consent) is in every holdout."""
        if user_key < 0:
            return ""
        z = (user_key ^ self.salt) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        percent = ((z ^ (z >> 31)) % 1_000_000) / 10_000
        if percent < self.holdout:
            return ""
        for bound, variant in self.cumulative:
            if percent < bound:
                return variant
        return self.cumulative[-1][1]


def _experiment(experiment: Experiment) -> CompiledExperiment:
    total = sum(w for _, w in experiment.variants)
    span = 100 - experiment.holdout
    bounds, running = [], experiment.holdout
    for variant, weight in experiment.variants:
        running += span * weight / total
        bounds.append((running, variant))
    salt = int.from_bytes(
        hashlib.blake2b(experiment.name.encode(), digest_size=8, person=b"pz-exp").digest(), "big"
    )
    return CompiledExperiment(
        experiment.name, experiment.holdout, tuple(bounds), experiment.exposure_sample, salt
    )


# --- the program --------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1
_DEFAULT: dict[str, Any] = {"rule": "default"}  # a default that shows nothing: the placeholder stays


@dataclass(frozen=True, slots=True)
class Exposure:
    experiment: str
    variant: str
    slot: str
    rule: str
    sample: float


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    when_node: Node | None
    action: CompiledAction | None
    experiment: CompiledExperiment | None = None
    variants: Mapping[str, CompiledAction] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CompiledSlot:
    name: str
    rules: tuple[CompiledRule, ...]
    default: CompiledAction


class Program:
    """A rule set ready to decide: one per rule set, shared by every request."""

    def __init__(self, rules: RuleSet, on_error: Callable[[str, str, Exception], None] | None = None) -> None:
        self.rules = rules
        self.version = rules.version
        self._on_error = on_error
        checker = TypeChecker(list(rules.segments), list(rules.features))
        # Features first (they use the vocabulary only), then segments, which may use both.
        segments: dict[str, Evaluator] = {
            name: compile_condition(node, {}, checker) for name, node in rules.features.items()
        }
        for name, node in rules.segments.items():  # in dependency order
            segments[name] = self._memoised(name, compile_condition(node, segments, checker))
        self.segments = segments  # by name: every segment and feature
        self._checker = checker
        experiments = {name: _experiment(e) for name, e in rules.experiments.items()}
        self.slots: dict[str, CompiledSlot] = {}
        for slot in rules.slots.values():
            compiled = []
            for rule in slot.rules:
                if rule.action is not None:
                    action = CompiledAction(rule.action, rules.fragments, {"rule": rule.name})
                    compiled.append(CompiledRule(rule.name, rule.when, action))
                else:
                    variants = {
                        v: CompiledAction(
                            a,
                            rules.fragments,
                            {"rule": rule.name, "experiment": rule.experiment, "variant": v},
                        )
                        for v, a in rule.variants.items()
                    }
                    compiled.append(
                        CompiledRule(rule.name, rule.when, None, experiments[rule.experiment], variants)
                    )
            default = CompiledAction(slot.default, rules.fragments, {"rule": "default"})
            self.slots[slot.name] = CompiledSlot(slot.name, tuple(compiled), default)
        self._segment_fns, self._slot_fns = generate(
            rules.segments, self._slot_specs(rules), _DEFAULT, rules.features
        )
        # Headers the rules may set: an edge strips them from what clients send, like its own.
        self.header_names = frozenset(name.lower() for a in rules.actions() for name, _ in a.headers)
        # What the edge must read from the request for these rules (and nothing more).
        used = [n for node in rules.conditions() for n in walk(node)]
        words = {
            id(arg) for n in used if isinstance(n, Call) for arg in word_arguments(n)
        }  # `hour` in a call
        self.context_names = frozenset(
            n.name for n in used if isinstance(n, Name) and n.name in CONTEXT_NAMES and id(n) not in words
        )
        if any(isinstance(n, Call) and n.name == "this_period" for n in used):
            self.context_names |= {PERIOD_STARTS}

    @staticmethod
    def _memoised(name: str, evaluate: Evaluator) -> Evaluator:
        key = ("segment", name)

        def segment(f: Facts) -> bool:  # evaluated once per page decision, whoever asks
            found = f.memo.get(key)
            if found is None:
                found = f.memo[key] = bool(evaluate(f))
            return found  # type: ignore[return-value]

        return segment

    def _slot_specs(self, rules: RuleSet) -> list[tuple[str, list[tuple[Node | None, Any, Any]], Any]]:
        specs = []
        for slot in rules.slots.values():
            compiled = self.slots[slot.name]
            slot_rules: list[tuple[Node | None, Any, Any]] = []
            for rule in compiled.rules:
                if rule.action is not None:
                    slot_rules.append((rule.when_node, rule.action, None))
                    continue
                assert rule.experiment is not None
                e = rule.experiment
                shown = {
                    v: Exposure(e.name, v, slot.name, rule.name, e.exposure_sample) for v in rule.variants
                }
                slot_rules.append((rule.when_node, None, (e, rule.variants, shown)))
            specs.append((slot.name, slot_rules, compiled.default))
        return specs

    def segments_of(self, f: Facts) -> list[str]:
        """The user's segments: the aggregator's, then those of the rules file that hold."""
        own = [name for name, holds in self._segment_fns.items() if holds(f)]
        theirs = list(f.profile.segments) if f.profile is not None else []
        return theirs + [s for s in own if s not in theirs]

    def decide(
        self,
        f: Facts,
        catalog: Catalog,
        slots: Sequence[str],
        exposures: list[Exposure] | None = None,
        deadline: float = 0.0,
    ) -> dict[str, Any]:
        """Each requested slot of these rules, decided; slots the rules do not have are left out.
        Past `deadline` (a time.perf_counter() value; 0: none) the remaining slots get their defaults."""
        decision: dict[str, Any] = {}
        for slot_name in slots:
            decide_slot = self._slot_fns.get(slot_name)
            if decide_slot is None:
                continue
            try:
                if deadline and time.perf_counter() > deadline:
                    decision[slot_name] = self.slots[slot_name].default.run(f, catalog) or _DEFAULT
                    continue
                decision[slot_name] = decide_slot(f, catalog, exposures)
            except Exception as exc:  # noqa: BLE001 - a broken rule costs its slot the default, never the page
                if self._on_error is not None:
                    self._on_error(slot_name, "", exc)
                decision[slot_name] = self.slots[slot_name].default.run(f, catalog) or _DEFAULT
        return decision

    # --- explanations ---------------------------------------------------------------------------

    def explain(self, f: Facts, catalog: Catalog, slots: Sequence[str]) -> dict[str, Any]:
        """Per slot: every rule tried, whether it matched and why, experiment assignments."""
        report: dict[str, Any] = {"rules_version": self.version, "slots": {}, "experiments": {}}
        for slot_name in slots:
            slot = self.slots.get(slot_name)
            if slot is None:
                continue
            tried = []
            chosen = None
            for rule in slot.rules:
                entry: dict[str, Any] = {"rule": rule.name}
                if rule.when_node is not None:
                    holds, why = self._explain_node(rule.when_node, f)
                    entry["when"] = source_of(rule.when_node)
                    entry["because"] = why
                    if not holds:
                        entry["matched"] = False
                        tried.append(entry)
                        continue
                if rule.experiment is not None:
                    variant = rule.experiment.assign(f.user_key)
                    report["experiments"][rule.experiment.name] = variant or "holdout"
                    entry["experiment"] = {"name": rule.experiment.name, "variant": variant or "holdout"}
                    if not variant:
                        entry.update(
                            matched=False, because=[*entry.get("because", []), "the user is in the holdout"]
                        )
                        tried.append(entry)
                        continue
                    out = rule.variants[variant].run(f, catalog)
                else:
                    assert rule.action is not None
                    out = rule.action.run(f, catalog)
                if out is None:
                    entry.update(
                        matched=False, because=[*entry.get("because", []), "its action found nothing to show"]
                    )
                    tried.append(entry)
                    continue
                entry["matched"] = True
                tried.append(entry)
                chosen = rule.name
                break
            report["slots"][slot_name] = {"tried": tried, "chosen": chosen or "default"}
        report["segments"] = self.segments_of(f)
        report["features"] = {name: self.segments[name](f) for name in self.rules.features}
        return report

    def _explain_node(self, node: Node, f: Facts) -> tuple[bool, list[str]]:
        value = bool(compile_condition(node, self.segments, self._checker)(f))
        if isinstance(node, BoolOp):
            reasons: list[str] = []
            for operand in node.operands:
                holds, why = self._explain_node(operand, f)
                reasons += why
                if (node.op == "and" and not holds) or (node.op == "or" and holds):
                    break
            return value, reasons
        if isinstance(node, Not):
            holds, why = self._explain_node(node.operand, f)
            return value, why
        if isinstance(node, Compare):
            left = compile_condition(node.left, self.segments, self._checker)(f)
            shown = sorted(left) if isinstance(left, frozenset | tuple) else left
            verdict = "holds" if value else "does not hold"
            return value, [f"{source_of(node.left)} is {shown!r}: {source_of(node)} {verdict}"]
        return value, [f"{source_of(node)} is {'true' if value else 'false'}"]


def compile_rules(rules: RuleSet, on_error: Callable[[str, str, Exception], None] | None = None) -> Program:
    return Program(rules, on_error)
