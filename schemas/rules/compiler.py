"""Compiling a validated RuleSet into plain Python closures, once per rule set.

A condition becomes a closure over closures (no tree is walked per request); a page decision
evaluates each requested slot's rules in order over one `Facts`, whose profile features are
computed once. `explain` walks the same closures and says why each rule did or did not apply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, Protocol

from schemas.rules.expressions import BoolOp, Call, Compare, ListOf, Literal, Name, Node, Not, source_of, walk
from schemas.rules.features import Facts
from schemas.rules.model import Action, Experiment, Recommendation, RuleSet
from schemas.rules.vocabulary import CONTEXT_NAMES, FUNCTIONS, TypeChecker

Evaluator = Callable[[Facts], Any]


class Catalog(Protocol):
    """What recommendations draw on besides the profile (a snapshot provides it)."""

    @property
    def popular(self) -> Sequence[str]: ...

    @property
    def popular_by_category(self) -> Mapping[str, Sequence[str]]: ...


class EmptyCatalog:
    popular: Sequence[str] = ()
    popular_by_category: Mapping[str, Sequence[str]] = {}


# --- conditions ---------------------------------------------------------------------------------


def _const(value: object) -> Evaluator:
    return lambda f: value


def _compile(node: Node, segments: Mapping[str, Evaluator], checker: TypeChecker) -> Evaluator:
    if isinstance(node, Literal):
        return _const(node.value)
    if isinstance(node, ListOf):
        return _const(frozenset(i.value for i in node.items))
    if isinstance(node, Name):
        return _name(node.name, segments)
    if isinstance(node, Call):
        return _call(node, segments, checker)
    if isinstance(node, Not):
        operand = _compile(node.operand, segments, checker)
        return lambda f: not operand(f)
    if isinstance(node, BoolOp):
        parts = [_compile(o, segments, checker) for o in node.operands]
        if len(parts) == 2:
            a, b = parts
            return (lambda f: a(f) and b(f)) if node.op == "and" else (lambda f: a(f) or b(f))
        if node.op == "and":
            return lambda f: all(p(f) for p in parts)
        return lambda f: any(p(f) for p in parts)
    return _compare(node, segments, checker)


def _name(name: str, segments: Mapping[str, Evaluator]) -> Evaluator:
    if name in segments:
        return segments[name]
    if name == "new_visitor":
        return lambda f: f.new_visitor
    if name == "segments":
        return lambda f: f.profile.segments if f.profile is not None else ()
    return lambda f: f.context.get(name, "")


def _call(node: Call, segments: Mapping[str, Evaluator], checker: TypeChecker) -> Evaluator:
    args = checker.check_arguments(node, FUNCTIONS[node.name])

    def literal(key: str) -> Any:
        value = args[key]
        return value.name if isinstance(value, Name) else value.value  # type: ignore[union-attr]

    name = node.name
    if name in ("views", "carts", "purchases"):
        kind = {"views": "view", "carts": "cart", "purchases": "purchase"}[name]
        within = int(literal("within"))
        return lambda f: f.count(kind, within)
    if name == "item_views":
        within = int(literal("within"))
        return lambda f: f.item_views(within)
    if name == "since_last":
        event = str(literal("event"))
        return lambda f: f.since_last(event)
    if name == "in_cart":
        return lambda f: len(f.cart_items())
    first, second = (_compile(args[p.name], segments, checker) for p in FUNCTIONS[name].params)
    if name == "starts_with":
        return lambda f: str(first(f)).startswith(str(second(f)))
    return lambda f: str(second(f)) in str(first(f))  # contains


def _compare(node: Compare, segments: Mapping[str, Evaluator], checker: TypeChecker) -> Evaluator:
    left = _compile(node.left, segments, checker)
    op = node.op
    if op in ("in", "not in") and isinstance(node.right, Name) and node.right.name == "segments":
        # A segment of the rules file holds, or the aggregator put it on the profile.
        name = node.left.value if isinstance(node.left, Literal) else None
        own = segments.get(str(name)) if name is not None else None

        def member(f: Facts) -> bool:
            wanted = left(f)
            if own is not None and own(f):
                return True
            return f.profile is not None and wanted in f.profile.segments

        return member if op == "in" else (lambda f: not member(f))
    if isinstance(node.right, Literal | ListOf):  # the usual case: a constant on the right
        value: Any = (
            node.right.value
            if isinstance(node.right, Literal)
            else frozenset(i.value for i in node.right.items)
        )
        return {
            "==": lambda f: left(f) == value,
            "!=": lambda f: left(f) != value,
            "<": lambda f: left(f) < value,
            "<=": lambda f: left(f) <= value,
            ">": lambda f: left(f) > value,
            ">=": lambda f: left(f) >= value,
            "in": lambda f: left(f) in value,
            "not in": lambda f: left(f) not in value,
        }[op]
    right = _compile(node.right, segments, checker)
    return {
        "==": lambda f: left(f) == right(f),
        "!=": lambda f: left(f) != right(f),
        "<": lambda f: left(f) < right(f),
        "<=": lambda f: left(f) <= right(f),
        ">": lambda f: left(f) > right(f),
        ">=": lambda f: left(f) >= right(f),
    }[op]


# --- recommendations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Picked:
    items: list[str]
    based_on: str = ""
    category: str = ""


Strategy = Callable[[Facts, Catalog, int, frozenset[str]], Picked | None]


def _fill(limit: int, exclude: frozenset[str] | set[str], *sources: Sequence[str]) -> list[str]:
    picked: list[str] = []
    seen = set(exclude)
    for source in sources:
        for item in source:
            if item not in seen:
                seen.add(item)
                picked.append(item)
                if len(picked) == limit:
                    return picked
    return picked


def _strategy(rec: Recommendation) -> Strategy:
    args = rec.args
    if rec.strategy == "similar_to_recent":
        kind, within, min_count = str(args["event"]), int(args["within"]), int(args["min_count"])

        def similar(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
            since = f.now_s - within
            for history in f.items_of(kind):
                if history.count_since(since) >= min_count:
                    in_category = catalog.popular_by_category.get(history.category, ())
                    items = _fill(limit, exclude | {history.item}, in_category, catalog.popular)
                    return Picked(items, history.item, history.category)
            return None

        return similar
    if rec.strategy == "popular":
        category = str(args["category"] or "")

        def popular(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
            source = catalog.popular_by_category.get(category, ()) if category else catalog.popular
            return Picked(_fill(limit, exclude, source), category=category)

        return popular
    if rec.strategy == "recently_viewed":
        within = int(args["within"])

        def recent(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
            since = f.now_s - within
            return Picked(
                _fill(limit, exclude, [h.item for h in f.items_of("view") if h.times_s[0] >= since])
            )

        return recent

    def bought_together(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
        cart = f.cart_items()
        if not cart:
            return None
        in_cart = {h.item for h in cart}
        sources = [catalog.popular_by_category.get(h.category, ()) for h in cart]
        return Picked(_fill(limit, exclude | in_cart, *sources), cart[0].item, cart[0].category)

    return bought_together


def _excluded(f: Facts, exclude: tuple[str, ...]) -> frozenset[str]:
    if not exclude:
        return frozenset()
    items: set[str] = set()
    if "purchased" in exclude:
        items.update(h.item for h in f.items_of("purchase"))
    if "in_cart" in exclude:
        items.update(h.item for h in f.cart_items())
    if "viewed" in exclude:
        items.update(h.item for h in f.items_of("view"))
    return frozenset(items)


# --- actions ------------------------------------------------------------------------------------


def _template(html: str) -> list[tuple[str, str]]:
    """[(literal text, field after it or "")]: `{{`/`}}` are literal braces."""
    parts: list[tuple[str, str]] = []
    text = ""
    i = 0
    while i < len(html):
        two = html[i : i + 2]
        if two in ("{{", "}}"):
            text += two[0]
            i += 2
        elif html[i] == "{":
            end = html.index("}", i)
            parts.append((text, html[i + 1 : end]))
            text = ""
            i = end + 1
        else:
            text += html[i]
            i += 1
    parts.append((text, ""))
    return parts


@dataclass(frozen=True, slots=True)
class CompiledAction:
    fragment: str
    parts: list[tuple[str, str]] | None  # the fragment's template; None when it has no fields
    html: str  # the fragment when it has no fields
    strategy: Strategy | None
    exclude: tuple[str, ...]
    limit: int
    headers: dict[str, str]

    def run(self, f: Facts, catalog: Catalog, rule: str) -> dict[str, Any] | None:
        """The slot's decision, or None when the action cannot apply (no items, no focus item)."""
        out: dict[str, Any] = {"rule": rule}
        picked = None
        if self.strategy is not None:
            picked = self.strategy(f, catalog, self.limit, _excluded(f, self.exclude))
            if picked is None or not picked.items:
                return None
            out["items"] = [{"id": i} for i in picked.items]
            if picked.based_on:
                out["based_on"] = picked.based_on
            if picked.category:
                out["category"] = picked.category
        if self.fragment:
            out["fragment"] = self.fragment
            if self.parts is None:
                out["html"] = self.html
            else:
                if picked is None or not picked.based_on:
                    views = f.items_of("view")
                    if not views:
                        return None
                    picked = Picked([], views[0].item, views[0].category)
                fields = {"item": picked.based_on, "category": picked.category}
                out["html"] = "".join(text + escape(fields.get(name, "")) for text, name in self.parts)
        if self.headers:
            out["headers"] = self.headers
        return out


def _action(action: Action, fragments: Mapping[str, str]) -> CompiledAction:
    html = fragments.get(action.fragment, "")
    parts = _template(html)
    has_fields = any(name for _, name in parts)
    return CompiledAction(
        fragment=action.fragment,
        parts=parts if has_fields else None,
        html="".join(text for text, _ in parts),
        strategy=_strategy(action.recommend) if action.recommend is not None else None,
        exclude=action.exclude,
        limit=action.limit,
        headers=dict(action.headers),
    )


# --- experiments --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledExperiment:
    name: str
    holdout: float
    cumulative: tuple[tuple[float, str], ...]  # (upper bound in percent, variant)
    exposure_sample: float

    def assign(self, user_key: int) -> str:
        """The user's variant ("" in the holdout): the same user, the same answer, every time."""
        digest = hashlib.blake2b(
            user_key.to_bytes(8, "big"), digest_size=8, person=b"pz-exp", key=self.name.encode()[:64]
        )
        percent = int.from_bytes(digest.digest(), "big") % 1_000_000 / 10_000
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
    return CompiledExperiment(experiment.name, experiment.holdout, tuple(bounds), experiment.exposure_sample)


# --- the program --------------------------------------------------------------------------------


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
    when: Evaluator | None
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
        checker = TypeChecker(list(rules.segments))
        segments: dict[str, Evaluator] = {}
        for name, node in rules.segments.items():  # in dependency order
            segments[name] = self._memoised(name, _compile(node, segments, checker))
        self.segments = segments
        self._checker = checker
        experiments = {name: _experiment(e) for name, e in rules.experiments.items()}
        self.slots: dict[str, CompiledSlot] = {}
        for slot in rules.slots.values():
            compiled = []
            for rule in slot.rules:
                when = _compile(rule.when, segments, checker) if rule.when is not None else None
                if rule.action is not None:
                    compiled.append(
                        CompiledRule(rule.name, when, rule.when, _action(rule.action, rules.fragments))
                    )
                else:
                    variants = {v: _action(a, rules.fragments) for v, a in rule.variants.items()}
                    compiled.append(
                        CompiledRule(rule.name, when, rule.when, None, experiments[rule.experiment], variants)
                    )
            self.slots[slot.name] = CompiledSlot(
                slot.name, tuple(compiled), _action(slot.default, rules.fragments)
            )
        # What the edge must read from the request for these rules (and nothing more).
        self.context_names = frozenset(
            n.name
            for node in [
                *rules.segments.values(),
                *(r.when for s in rules.slots.values() for r in s.rules if r.when),
            ]
            for n in _names(node)
            if n.name in CONTEXT_NAMES
        )

    @staticmethod
    def _memoised(name: str, evaluate: Evaluator) -> Evaluator:
        key = ("segment", name)

        def segment(f: Facts) -> bool:
            found = f.memo.get(key)
            if found is None:
                found = f.memo[key] = bool(evaluate(f))
            return found  # type: ignore[return-value]

        return segment

    def segments_of(self, f: Facts) -> list[str]:
        """The user's segments: the aggregator's, then those of the rules file that hold."""
        own = [name for name, holds in self.segments.items() if holds(f)]
        theirs = list(f.profile.segments) if f.profile is not None else []
        return theirs + [s for s in own if s not in theirs]

    def decide(
        self, f: Facts, catalog: Catalog, slots: Sequence[str], exposures: list[Exposure] | None = None
    ) -> dict[str, Any]:
        decision: dict[str, Any] = {}
        for slot_name in slots:
            slot = self.slots.get(slot_name)
            if slot is None:
                continue
            try:
                decision[slot_name] = self._decide_slot(slot, f, catalog, exposures)
            except Exception as exc:  # noqa: BLE001 - a broken rule costs its slot the default, never the page
                if self._on_error is not None:
                    self._on_error(slot_name, "", exc)
                decision[slot_name] = slot.default.run(f, catalog, "default") or {"rule": "default"}
        return decision

    def _decide_slot(
        self, slot: CompiledSlot, f: Facts, catalog: Catalog, exposures: list[Exposure] | None
    ) -> dict[str, Any]:
        for rule in slot.rules:
            if rule.when is not None and not rule.when(f):
                continue
            if rule.action is not None:
                out = rule.action.run(f, catalog, rule.name)
            else:
                assert rule.experiment is not None
                variant = rule.experiment.assign(f.user_key)
                if not variant:
                    continue  # held out: the next rule decides
                out = rule.variants[variant].run(f, catalog, rule.name)
                if out is not None:
                    out["experiment"], out["variant"] = rule.experiment.name, variant
                    if exposures is not None:
                        exposures.append(
                            Exposure(
                                rule.experiment.name,
                                variant,
                                slot.name,
                                rule.name,
                                rule.experiment.exposure_sample,
                            )
                        )
            if out is not None:
                return out
        return slot.default.run(f, catalog, "default") or {"rule": "default"}

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
                    out = rule.variants[variant].run(f, catalog, rule.name)
                else:
                    assert rule.action is not None
                    out = rule.action.run(f, catalog, rule.name)
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
        return report

    def _explain_node(self, node: Node, f: Facts) -> tuple[bool, list[str]]:
        value = bool(_compile(node, self.segments, self._checker)(f))
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
            left = _compile(node.left, self.segments, self._checker)(f)
            shown = sorted(left) if isinstance(left, frozenset | tuple) else left
            verdict = "holds" if value else "does not hold"
            return value, [f"{source_of(node.left)} is {shown!r}: {source_of(node)} {verdict}"]
        return value, [f"{source_of(node)} is {'true' if value else 'false'}"]


def _names(node: Node | None) -> list[Name]:
    return [n for n in walk(node) if isinstance(n, Name)] if node is not None else []


def compile_rules(rules: RuleSet, on_error: Callable[[str, str, Exception], None] | None = None) -> Program:
    return Program(rules, on_error)
