"""The rules model shared by the aggregator, the edge and `pz rules`: a validated rule set.

`validate_rules` checks everything a rule set may get wrong and reports every problem at once,
each with its path and (for files) its line and column; a rule set with any problem is refused
whole. What passes can be compiled without further checks (schemas/rules/compiler.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.rules.expressions import Call, ExpressionError, Name, Node, parse_expression, walk
from schemas.rules.source import Path, Position, Problem
from schemas.rules.vocabulary import EXCLUDES, STRATEGIES, TypeChecker, literal_arguments
from schemas.rules.vocabulary import unknown_message as _unknown

MAX_SLOTS = 50
MAX_RULES_PER_SLOT = 200
MAX_SEGMENTS = 500
MAX_FRAGMENT_BYTES = 64 * 1024
MAX_LIMIT = 50
_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEADER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_FORBIDDEN_HEADERS = {
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "upgrade",
    "cookie",
    "authorization",
    "proxy-authorization",
}
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
# Fragment fields: the item the slot recommends from, else the one the user looks at (viewed last);
# a fragment with fields applies only when there is such an item.
FRAGMENT_FIELDS = ("item", "category")

TOP_KEYS = ("version", "features", "segments", "fragments", "experiments", "slots")
SLOT_KEYS = ("default", "rules")
ACTION_KEYS = ("fragment", "recommend", "exclude", "limit", "headers")
RULE_KEYS = ("name", "when", "experiment", "variants", *ACTION_KEYS)
EXPERIMENT_KEYS = ("variants", "holdout", "exposure_sample")


@dataclass(frozen=True, slots=True)
class Recommendation:
    strategy: str
    args: Mapping[str, Any]
    source: str


@dataclass(frozen=True, slots=True)
class Action:
    fragment: str = ""  # a name in the fragments; "" keeps the placeholder's own content
    recommend: Recommendation | None = None
    exclude: tuple[str, ...] = ()
    limit: int = 8
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: Node | None  # None: always
    when_source: str
    action: Action | None  # None for an experiment rule
    experiment: str = ""
    variants: Mapping[str, Action] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Experiment:
    name: str
    variants: tuple[tuple[str, float], ...]  # (name, weight) in the order written
    holdout: float = 0.0  # percent of users kept out: they fall through to the next rule
    exposure_sample: float = 1.0  # share of exposures logged


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    rules: tuple[Rule, ...]
    default: Action


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: str
    segments: Mapping[str, Node]  # in dependency order: a segment only uses those before it
    segment_sources: Mapping[str, str]
    fragments: Mapping[str, str]
    experiments: Mapping[str, Experiment]
    slots: Mapping[str, Slot]
    document: Mapping[str, Any]  # the validated document: what snapshots carry (as JSON)
    # Named numbers over the profile and the request, usable in every condition; a feature uses the
    # vocabulary only (not segments or other features).
    features: Mapping[str, Node] = field(default_factory=dict)
    feature_sources: Mapping[str, str] = field(default_factory=dict)

    def conditions(self) -> list[Node]:
        """Every expression the rules evaluate: features, segments, and the rules' `when`s."""
        whens = [r.when for s in self.slots.values() for r in s.rules if r.when is not None]
        return [*self.features.values(), *self.segments.values(), *whens]

    def actions(self) -> list[Action]:
        """Every action a slot can take: its rules' (each variant of an experiment) and its default."""
        taken = [
            a
            for s in self.slots.values()
            for r in s.rules
            for a in ([r.action] if r.action is not None else r.variants.values())
        ]
        return [*taken, *(s.default for s in self.slots.values())]

    def to_json(self) -> bytes:
        return orjson.dumps({**self.document, "version": self.version}, option=orjson.OPT_SORT_KEYS)


class RulesInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the rules:\n" + "\n".join(map(str, problems)))
        self.problems = problems


class _Validator:
    def __init__(self, positions: Mapping[Path, Position]) -> None:
        self.positions = positions
        self.problems: list[Problem] = []

    def error(self, path: Path, message: str, offset: int | None = None, text: str = "") -> None:
        where: Path = path
        while where and where not in self.positions:
            where = where[:-1]
        pos = self.positions.get(where)
        if pos is None:
            self.problems.append(Problem(path, message))
            return
        line, column = pos.line, pos.column
        if offset is not None and where == path:
            before = text[:offset]
            if pos.block:
                line += 1 + before.count("\n")
                column = pos.column + 2 + len(before) - (before.rfind("\n") + 1)
            else:
                column += offset + (1 if pos.quoted else 0)
        self.problems.append(Problem(path, message, line, column))

    def mapping(self, value: Any, path: Path, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping of names to values")
            return {}
        for key in value:
            if key not in allowed:
                self.error((*path, key), _unknown(f"key in {what}", key, allowed))
        return value

    def name_key(self, name: Any, path: Path, what: str) -> bool:
        if not isinstance(name, str) or not _IDENT.match(name):
            self.error(
                path, f"{what} name {name!r} must be lowercase letters, digits and _ (start with a letter)"
            )
            return False
        return True

    def expression(self, text: Any, path: Path, checker: TypeChecker, condition: bool = True) -> Node | None:
        if not isinstance(text, str):
            self.error(path, "expected a condition, written as text")
            return None
        try:
            node = parse_expression(text)
            if condition:
                checker.check_condition(node)
        except ExpressionError as exc:
            self.error(path, exc.message, exc.offset, text)
            return None
        return node


def _segment_order(segments: dict[str, Node], validator: _Validator) -> list[str]:
    """Segments that use others come after them; a cycle is an error."""
    uses: dict[str, set[str]] = {name: set() for name in segments}

    for name, node in segments.items():
        uses[name] = {n.name for n in walk(node) if isinstance(n, Name) and n.name in segments}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " → ".join([*trail[trail.index(name) :], name])
            validator.error(("segments", name), f"segments refer to each other in a circle: {cycle}")
            return
        state[name] = 1
        for used in sorted(uses[name]):
            visit(used, [*trail, name])
        state[name] = 2
        order.append(name)

    for name in segments:
        visit(name, [])
    return order


def _validate_fragment(name: str, html: Any, path: Path, v: _Validator) -> None:
    if not isinstance(html, str):
        v.error(path, "a fragment is HTML text")
        return
    if len(html.encode()) > MAX_FRAGMENT_BYTES:
        v.error(path, f"longer than {MAX_FRAGMENT_BYTES // 1024} KiB")
    for match in _PLACEHOLDER.finditer(html):
        token = match.group()
        if token in ("{{", "}}"):
            continue
        field_name = match.group(1)
        if field_name is None:
            v.error(path, f"a lone {token!r}: write {token * 2} for a literal brace", match.start(), html)
        elif field_name not in FRAGMENT_FIELDS:
            v.error(path, _unknown("placeholder", field_name, FRAGMENT_FIELDS), match.start(), html)


def _action(
    data: Any,
    path: Path,
    v: _Validator,
    checker: TypeChecker,
    fragments: Mapping[str, Any],
    keys: tuple[str, ...],
) -> Action | None:
    if isinstance(data, str):  # shorthand: a fragment name
        data = {"fragment": data}
    body = v.mapping(data, path, keys, "an action")
    before = len(v.problems)
    fragment = body.get("fragment", "")
    if fragment and fragment not in fragments:
        v.error((*path, "fragment"), _unknown("fragment", str(fragment), fragments))
    recommendation = None
    if "recommend" in body:
        call = v.expression(body["recommend"], (*path, "recommend"), checker, condition=False)
        if call is not None and not isinstance(call, Call):
            v.error((*path, "recommend"), "recommend: takes a strategy call, e.g. popular()")
        elif call is not None:
            strategy = STRATEGIES.get(call.name)
            if strategy is None:
                v.error(
                    (*path, "recommend"),
                    _unknown("strategy", call.name, STRATEGIES),
                    call.offset,
                    body["recommend"],
                )
            else:
                try:
                    args = literal_arguments(call, strategy, checker)
                    recommendation = Recommendation(call.name, args, str(body["recommend"]))
                except ExpressionError as exc:
                    v.error((*path, "recommend"), exc.message, exc.offset, body["recommend"])
    exclude = body.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(e, str) for e in exclude):
        v.error((*path, "exclude"), f"exclude is a list of: {', '.join(EXCLUDES)}")
        exclude = []
    for i, item in enumerate(exclude):
        if item not in EXCLUDES:
            v.error((*path, "exclude", i), _unknown("exclusion", item, EXCLUDES))
    limit = body.get("limit", 8)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        v.error((*path, "limit"), f"limit is a whole number from 1 to {MAX_LIMIT}")
        limit = 8
    headers: list[tuple[str, str]] = []
    for name, value in v.mapping(
        body.get("headers"), (*path, "headers"), tuple(body.get("headers") or ()), "headers"
    ).items():
        if not _HEADER.match(name) or name.lower() in _FORBIDDEN_HEADERS:
            v.error((*path, "headers", name), f"{name!r} cannot be set by a rule")
        elif not isinstance(value, str) or len(value) > 256 or not value.isprintable() or not value.isascii():
            v.error(
                (*path, "headers", name), "a header value is printable ASCII text, at most 256 characters"
            )
        else:
            headers.append((name, value))
    if len(v.problems) > before:
        return None
    return Action(str(fragment), recommendation, tuple(exclude), limit, tuple(headers))


def _experiment(name: str, data: Any, path: Path, v: _Validator) -> Experiment | None:
    body = v.mapping(data, path, EXPERIMENT_KEYS, "an experiment")
    before = len(v.problems)
    variants = body.get("variants")
    weights: list[tuple[str, float]] = []
    if not isinstance(variants, dict) or not variants:
        v.error(
            (*path, "variants"),
            "variants maps each variant name to its share of traffic, e.g. {a: 50, b: 50}",
        )
    else:
        for variant, weight in variants.items():
            v.name_key(variant, (*path, "variants", variant), "variant")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
                v.error((*path, "variants", variant), "a variant's share is a number greater than 0")
            else:
                weights.append((variant, float(weight)))
    holdout = body.get("holdout", 0)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout < 100:
        v.error((*path, "holdout"), "holdout is the percent of users kept out, from 0 to below 100")
    sample = body.get("exposure_sample", 1.0)
    if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 <= sample <= 1:
        v.error((*path, "exposure_sample"), "exposure_sample is the share of exposures logged, from 0 to 1")
    if len(v.problems) > before:
        return None
    return Experiment(name, tuple(weights), float(holdout), float(sample))


def _slot(
    name: str,
    data: Any,
    path: Path,
    v: _Validator,
    checker: TypeChecker,
    fragments: Mapping[str, Any],
    experiments: Mapping[str, Experiment | None],
) -> Slot | None:
    body = v.mapping(data, path, SLOT_KEYS, "a slot")
    before = len(v.problems)
    default = _action(body.get("default") or {}, (*path, "default"), v, checker, fragments, ACTION_KEYS)
    rules_data = body.get("rules") or []
    if not isinstance(rules_data, list):
        v.error((*path, "rules"), "rules is a list, tried in order")
        rules_data = []
    if len(rules_data) > MAX_RULES_PER_SLOT:
        v.error((*path, "rules"), f"more than {MAX_RULES_PER_SLOT} rules")
    rules: list[Rule] = []
    names: set[str] = set()
    for i, rule_data in enumerate(rules_data):
        rpath = (*path, "rules", i)
        rule_body = v.mapping(rule_data, rpath, RULE_KEYS, "a rule")
        rule_name = rule_body.get("name", f"{name}#{i + 1}")
        if not isinstance(rule_name, str) or not rule_name.strip() or len(rule_name) > 200:
            v.error((*rpath, "name"), "a rule name is text, at most 200 characters")
            rule_name = f"{name}#{i + 1}"
        if rule_name in names:
            v.error((*rpath, "name"), f"another rule of slot {name!r} is called {rule_name!r}")
        names.add(rule_name)
        when_text = rule_body.get("when")
        when = v.expression(when_text, (*rpath, "when"), checker) if when_text is not None else None
        experiment_name = rule_body.get("experiment", "")
        action_keys = [k for k in ACTION_KEYS if k in rule_body]
        if experiment_name:
            if experiment_name not in experiments:
                v.error((*rpath, "experiment"), _unknown("experiment", str(experiment_name), experiments))
                continue
            if action_keys:
                v.error(
                    (*rpath, action_keys[0]),
                    "an experiment rule decides through its variants: move this into them",
                )
            experiment = experiments[experiment_name]
            variants_data = rule_body.get("variants")
            if not isinstance(variants_data, dict):
                v.error((*rpath, "variants"), "variants maps each of the experiment's variants to an action")
                continue
            variants: dict[str, Action] = {}
            declared = [n for n, _ in experiment.variants] if experiment is not None else list(variants_data)
            for variant in declared:
                if variant not in variants_data:
                    v.error(
                        (*rpath, "variants"), f"variant {variant!r} of {experiment_name!r} has no action here"
                    )
            for variant, action_data in variants_data.items():
                if variant not in declared:
                    v.error(
                        (*rpath, "variants", variant),
                        _unknown(f"variant of {experiment_name!r}", variant, declared),
                    )
                    continue
                action = _action(
                    action_data, (*rpath, "variants", variant), v, checker, fragments, ACTION_KEYS
                )
                if action is not None:
                    variants[variant] = action
            rules.append(Rule(rule_name, when, str(when_text or ""), None, str(experiment_name), variants))
        else:
            if "variants" in rule_body:
                v.error((*rpath, "variants"), "variants belong to a rule with an experiment:")
            if not action_keys:
                v.error(
                    rpath, "a rule needs something to do: fragment, recommend or headers (or an experiment)"
                )
                continue
            action = _action(
                {k: rule_body[k] for k in action_keys}, rpath, v, checker, fragments, ACTION_KEYS
            )
            if action is not None:
                rules.append(Rule(rule_name, when, str(when_text or ""), action))
    if len(v.problems) > before or default is None:
        return None
    return Slot(name, tuple(rules), default)


def validate_rules(data: Any, positions: Mapping[Path, Position] | None = None) -> RuleSet:
    """A RuleSet, or RulesInvalid listing every problem found."""
    v = _Validator(positions or {})
    top = v.mapping(data, (), TOP_KEYS, "the rules file")
    version = top.get("version")
    if version is not None and (
        not isinstance(version, str | int | float) or not _VERSION.match(str(version))
    ):
        v.error(("version",), "version is 1 to 64 letters, digits, dots, dashes or underscores")

    segments_data = v.mapping(
        top.get("segments"), ("segments",), tuple(top.get("segments") or ()), "segments"
    )
    if len(segments_data) > MAX_SEGMENTS:
        v.error(("segments",), f"more than {MAX_SEGMENTS} segments")
    features_data = v.mapping(
        top.get("features"), ("features",), tuple(top.get("features") or ()), "features"
    )
    if len(features_data) > MAX_SEGMENTS:
        v.error(("features",), f"more than {MAX_SEGMENTS} features")
    features: dict[str, Node] = {}
    plain = TypeChecker(())
    for name in features_data:
        if not v.name_key(name, ("features", name), "feature"):
            continue
        node = v.expression(features_data[name], ("features", name), plain, condition=False)
        if node is None:
            continue
        try:
            plain.check_number(node)
        except ExpressionError as exc:
            v.error(("features", name), exc.message, exc.offset, str(features_data[name]))
            continue
        features[name] = node

    segment_names = [n for n in segments_data if v.name_key(n, ("segments", n), "segment")]
    for name in segment_names:
        if name in features_data:
            v.error(("segments", name), f"{name!r} is a feature already: segments and features share names")
    checker = TypeChecker(segment_names, list(features))
    parsed: dict[str, Node] = {}
    for name in segment_names:
        node = v.expression(segments_data[name], ("segments", name), checker)
        if node is not None:
            parsed[name] = node
    order = _segment_order(parsed, v)

    fragments = v.mapping(
        top.get("fragments"), ("fragments",), tuple(top.get("fragments") or ()), "fragments"
    )
    for name, html in fragments.items():
        if v.name_key(name, ("fragments", name), "fragment"):
            _validate_fragment(name, html, ("fragments", name), v)

    experiments_data = v.mapping(
        top.get("experiments"), ("experiments",), tuple(top.get("experiments") or ()), "experiments"
    )
    experiments: dict[str, Experiment | None] = {}
    for name, body in experiments_data.items():
        if v.name_key(name, ("experiments", name), "experiment"):
            experiments[name] = _experiment(name, body, ("experiments", name), v)

    slots_data = v.mapping(top.get("slots"), ("slots",), tuple(top.get("slots") or ()), "slots")
    if not slots_data:
        v.error(("slots",), "no slots: name at least one, e.g. slots: {hero: {default: {fragment: …}}}")
    if len(slots_data) > MAX_SLOTS:
        v.error(("slots",), f"more than {MAX_SLOTS} slots")
    slots: dict[str, Slot] = {}
    for name, body in slots_data.items():
        if v.name_key(name, ("slots", name), "slot"):
            slot = _slot(name, body, ("slots", name), v, checker, fragments, experiments)
            if slot is not None:
                slots[name] = slot

    if v.problems:
        v.problems.sort(key=lambda p: (p.line, p.column))
        raise RulesInvalid(v.problems)
    document = dict(top)
    if version is None:
        digest = hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()
        version = "sha-" + digest[:12]
    return RuleSet(
        version=str(version),
        segments={name: parsed[name] for name in order},
        segment_sources={name: str(segments_data[name]) for name in order},
        fragments={k: str(h) for k, h in fragments.items()},
        experiments={k: e for k, e in experiments.items() if e is not None},
        slots=slots,
        document=document,
        features=features,
        feature_sources={name: str(features_data[name]) for name in features},
    )


def load_rules_json(raw: bytes | str) -> RuleSet:
    """Rules as carried in a snapshot (the validated document as JSON); checked again all the same."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RulesInvalid([Problem((), f"not JSON: {exc}")]) from None
    return validate_rules(data)
