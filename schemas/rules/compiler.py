"""Compiling a validated RuleSet into plain Python closures, once per rule set.

A condition becomes a closure over closures (no tree is walked per request); a page decision
evaluates each requested slot's rules in order over one `Facts`, whose profile features are
computed once. `explain` walks the same closures and says why each rule did or did not apply.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, NamedTuple, Protocol

from schemas.rules.codegen import generate
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

    @property
    def out_of_stock(self) -> frozenset[str]: ...


class EmptyCatalog:
    popular: Sequence[str] = ()
    popular_by_category: Mapping[str, Sequence[str]] = {}
    out_of_stock: frozenset[str] = frozenset()


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


class Picked(NamedTuple):  # a tuple: made once per recommendation, so cheap to make
    items: list[str]
    based_on: str = ""
    category: str = ""


Strategy = Callable[[Facts, Catalog, int, frozenset[str]], Picked | None]


def _fill(limit: int, exclude: frozenset[str], skip: str, *sources: Sequence[str]) -> list[str]:
    """Up to `limit` items from the sources in order, none twice, none excluded, not `skip`."""
    picked = [item for item in sources[0][: limit + 1] if item != skip and item not in exclude][:limit]
    if len(picked) == limit or len(sources) == 1 and len(sources[0]) <= limit + 1:
        return picked  # the usual case: the first list (each item once) has enough
    picked = []
    for source in sources:
        for item in source:
            if item != skip and item not in exclude and item not in picked:
                picked.append(item)
                if len(picked) == limit:
                    return picked
    return picked


class _ListCache:
    """Lists that depend only on the catalog and a key (the focus item, the exclusions): the same
    for every user who gets there, so made once per snapshot. Bounded; callers must not modify them."""

    __slots__ = ("_catalog", "_lists")
    LIMIT = 4096

    def __init__(self) -> None:
        self._catalog: object = None
        self._lists: dict[object, list[str]] = {}

    def get(self, catalog: Catalog, key: object) -> list[str] | None:
        if catalog is not self._catalog:  # a new snapshot: new popularity
            self._catalog, self._lists = catalog, {}
        return self._lists.get(key)

    def put(self, key: object, items: list[str]) -> list[str]:
        if len(self._lists) >= self.LIMIT:
            self._lists = {}
        self._lists[key] = items
        return items


def _strategy(rec: Recommendation) -> Strategy:
    args = rec.args
    if rec.strategy == "similar_to_recent":
        kind, within, min_count = str(args["event"]), int(args["within"]), int(args["min_count"])

        lists = _ListCache()

        def similar(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
            history = f.recent_item(kind, within, min_count)
            if history is None:
                return None
            key = (history.item, history.category, exclude)
            items = lists.get(catalog, key)
            if items is None:
                in_category = catalog.popular_by_category.get(history.category, ())
                items = lists.put(key, _fill(limit, exclude, history.item, in_category, catalog.popular))
            return Picked(items, history.item, history.category)

        return similar
    if rec.strategy == "popular":
        category = str(args["category"] or "")

        def popular(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
            source = catalog.popular_by_category.get(category, ()) if category else catalog.popular
            if not exclude:  # popularity lists hold each item once
                return Picked(list(source[:limit]), category=category)
            return Picked(_fill(limit, exclude, "", source), category=category)

        return popular
    if rec.strategy == "recently_viewed":
        within = int(args["within"])

        def recent(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
            since = f.now_s - within
            return Picked(
                _fill(limit, exclude, "", [h.item for h in f.items_of("view") if h.times_s[0] >= since])
            )

        return recent

    def bought_together(f: Facts, catalog: Catalog, limit: int, exclude: frozenset[str]) -> Picked | None:
        cart = f.cart_items()
        if not cart:
            return None
        in_cart = {h.item for h in cart}
        sources = [catalog.popular_by_category.get(h.category, ()) for h in cart]
        return Picked(_fill(limit, exclude | in_cart, "", *sources), cart[0].item, cart[0].category)

    return bought_together


def _excluded(f: Facts, exclude: tuple[str, ...], catalog: Catalog) -> frozenset[str]:
    items: set[str] = set()
    if "out_of_stock" in exclude and catalog.out_of_stock:
        if len(exclude) == 1:
            return catalog.out_of_stock  # the snapshot's own set: nothing to build
        items.update(catalog.out_of_stock)
    if "purchased" in exclude and f.has("purchase"):
        items.update([h.item for h in f.items_of("purchase")])
    if "in_cart" in exclude:
        items.update([h.item for h in f.cart_items()])
    if "viewed" in exclude:
        items.update([h.item for h in f.items_of("view")])
    return frozenset(items) if items else _NONE


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


class CompiledAction:
    """An action bound to the rule (and experiment variant) it belongs to. A fragment with no fields
    and no recommendation decides the same for everyone: its answer is built once and shared, so
    callers treat decisions as read-only, except for the item dicts they own."""

    __slots__ = ("base", "static", "parts", "strategy", "exclude", "limit", "fragment")

    def __init__(self, action: Action, fragments: Mapping[str, str], base: dict[str, Any]) -> None:
        parts = _template(fragments.get(action.fragment, ""))
        has_fields = any(name for _, name in parts)
        self.fragment = action.fragment
        # With fields: a format string (literal braces doubled), filled with escaped values.
        self.parts = (
            "".join(
                text.replace("{", "{{").replace("}", "}}") + (f"{{{name}}}" if name else "")
                for text, name in parts
            )
            if has_fields
            else None
        )
        self.strategy = _strategy(action.recommend) if action.recommend is not None else None
        self.exclude = action.exclude
        self.limit = action.limit
        self.base = dict(base)
        if action.fragment:
            self.base["fragment"] = action.fragment
            if not has_fields:
                self.base["html"] = "".join(text for text, _ in parts)
        if action.headers:
            self.base["headers"] = dict(action.headers)
        self.static = self.base if self.strategy is None and self.parts is None else None

    def run(self, f: Facts, catalog: Catalog) -> dict[str, Any] | None:
        """The slot's decision, or None when the action cannot apply (no items, no focus item)."""
        if self.static is not None:
            return self.static
        out = dict(self.base)
        picked = None
        if self.strategy is not None:
            picked = self.strategy(
                f, catalog, self.limit, _excluded(f, self.exclude, catalog) if self.exclude else _NONE
            )
            if picked is None or not picked.items:
                return None
            out["items"] = [{"id": i} for i in picked.items]
            if picked.based_on:
                out["based_on"] = picked.based_on
            if picked.category:
                out["category"] = picked.category
        if self.parts is not None:
            if picked is None or not picked.based_on:
                focus = f.focus_item()
                if focus is None:
                    return None
                picked = Picked([], focus.item, focus.category)
            out["html"] = self.parts.format(
                item=_escaped(picked.based_on), category=_escaped(picked.category)
            )
        return out


_NONE: frozenset[str] = frozenset()
_ESCAPED: dict[str, str] = {}


def _escaped(text: str) -> str:
    """html.escape, remembered: item ids and categories repeat on every page."""
    found = _ESCAPED.get(text)
    if found is None:
        if len(_ESCAPED) >= 65_536:
            _ESCAPED.clear()
        found = _ESCAPED[text] = escape(text)
    return found


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
        finaliser) makes each experiment's split independent of the others."""
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
                    action = CompiledAction(rule.action, rules.fragments, {"rule": rule.name})
                    compiled.append(CompiledRule(rule.name, when, rule.when, action))
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
                        CompiledRule(rule.name, when, rule.when, None, experiments[rule.experiment], variants)
                    )
            default = CompiledAction(slot.default, rules.fragments, {"rule": "default"})
            self.slots[slot.name] = CompiledSlot(slot.name, tuple(compiled), default)
        self._segment_fns, self._slot_fns = generate(rules.segments, self._slot_specs(rules), _DEFAULT)
        # Headers the rules may set: an edge strips them from what clients send, like its own.
        actions = [
            a
            for s in rules.slots.values()
            for r in s.rules
            for a in ([r.action] if r.action is not None else r.variants.values())
        ] + [s.default for s in rules.slots.values()]
        self.header_names = frozenset(name.lower() for a in actions for name, _ in a.headers)
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
