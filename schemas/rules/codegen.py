"""Generated Python for the hot path: each slot's rules become one plain function, each segment a
memoised one, so a page decision runs straight-line code with no tree and no closure per node.

Only names we make up (seg3, C0, A1_2 …) and `repr()` of validated literals reach the source text;
rule names, fragment HTML and the like stay in the namespace as objects. The closures of
`conditions.py` give the same answers (the explanations use them; a test holds the two together).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from schemas.rules.expressions import BoolOp, Call, Compare, ListOf, Literal, Name, Node, Not
from schemas.rules.vocabulary import FUNCTIONS, bound_arguments

_COUNTED = {"views": "view", "carts": "cart", "purchases": "purchase"}


class _Source:
    def __init__(self, segment_index: Mapping[str, int], features: Mapping[str, Node]) -> None:
        self.segment_index = segment_index
        self.features = features  # inlined where used: a feature is an expression with a name
        self.namespace: dict[str, Any] = {}
        self.lines: list[str] = []

    def constant(self, prefix: str, value: object) -> str:
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def expr(self, node: Node) -> str:
        if isinstance(node, Literal):
            if isinstance(node.value, str | bool | int | float):
                return repr(node.value)
            raise TypeError(f"unexpected literal {node.value!r}")
        if isinstance(node, ListOf):
            return self.constant("C", frozenset(i.value for i in node.items))
        if isinstance(node, Name):
            if node.name in self.segment_index:
                return f"seg{self.segment_index[node.name]}(f)"
            if node.name in self.features:
                return f"({self.expr(self.features[node.name])})"
            if node.name in ("new_visitor", "bot_suspect"):
                return f"f.{node.name}"
            return f"ctx.get({node.name!r}, '')"
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Not):
            return f"(not {self.expr(node.operand)})"
        if isinstance(node, BoolOp):
            return "(" + f" {node.op} ".join(self.expr(o) for o in node.operands) + ")"
        return self._compare(node)

    def _call(self, node: Call) -> str:
        kwargs = dict(node.kwargs)
        if node.name in _COUNTED or node.name == "item_views":
            within = kwargs["within"]
            assert isinstance(within, Literal)
            if node.name == "item_views":
                return f"f.item_views({int(within.value)})"  # type: ignore[call-overload]
            return f"f.count({_COUNTED[node.name]!r}, {int(within.value)})"  # type: ignore[call-overload]
        if node.name == "since_last":
            event = node.args[0] if node.args else kwargs["event"]
            assert isinstance(event, Name)
            return f"f.since_last({event.name!r})"
        if node.name == "in_cart":
            return "len(f.cart_items())"
        if node.name == "cart_value":
            return "f.cart_value()"
        if node.name == "lifetime":
            event = node.args[0] if node.args else kwargs["event"]
            assert isinstance(event, Name)
            return f"f.lifetime({event.name!r})"
        if node.name in ("lifetime_revenue", "since_first_seen"):
            return f"f.{node.name}()"
        if node.name == "category_views":
            bound = bound_arguments(node)
            category, within = bound["category"], bound["within"]
            assert isinstance(category, Literal) and isinstance(within, Literal)
            return f"f.category_views({str(category.value)!r}, {int(within.value)})"  # type: ignore[call-overload]
        if node.name == "this_period":
            bound = bound_arguments(node)
            event, period = bound["event"], bound["period"]
            assert isinstance(event, Name) and isinstance(period, Name)
            return f"f.this_period({event.name!r}, {period.name!r})"
        if node.name in ("session_views", "session_length"):
            gap = kwargs.get("gap")
            seconds = gap.value if isinstance(gap, Literal) else FUNCTIONS[node.name].params[0].default
            seconds = int(seconds)  # type: ignore[call-overload]
            return f"f.{node.name}({seconds})"
        bound = bound_arguments(node)
        first, second = (self.expr(bound[p.name]) for p in FUNCTIONS[node.name].params)
        if node.name == "starts_with":
            return f"str({first}).startswith(str({second}))"
        return f"(str({second}) in str({first}))"  # contains

    def _compare(self, node: Compare) -> str:
        left = self.expr(node.left)
        if isinstance(node.right, Name) and node.right.name == "segments":
            own = "None"
            if isinstance(node.left, Literal) and node.left.value in self.segment_index:
                own = f"seg{self.segment_index[str(node.left.value)]}"
            test = f"_member(f, {own}, {left})"
            return test if node.op == "in" else f"(not {test})"
        return f"({left} {node.op} {self.expr(node.right)})"


def _member(f: Any, own: Callable[[Any], bool] | None, wanted: object) -> bool:
    """A segment of the rules file holds, or the aggregator put it on the profile."""
    if own is not None and own(f):
        return True
    return f.profile is not None and wanted in f.profile.segments


def generate(
    segments: Mapping[str, Node],
    slots: Sequence[tuple[str, Sequence[tuple[Node | None, Any, Any]], Any]],
    default_answer: dict[str, Any],
    features: Mapping[str, Node],
) -> tuple[dict[str, Callable[[Any], bool]], dict[str, Callable[..., dict[str, Any]]]]:
    """Segment functions by name, and slot functions by name.

    `slots`: (slot name, rules, default action); a rule is (condition or None, action, experiment)
    where an experiment rule has action None and experiment = (compiled experiment, variant actions,
    exposures by variant)."""
    index = {name: i for i, name in enumerate(segments)}
    src = _Source(index, features)
    src.namespace.update(_member=_member, _DEFAULT=default_answer)
    lines = src.lines
    for name, node in segments.items():
        i = index[name]
        key = src.constant("K", ("segment", name))  # the memo key the closures use too
        lines += [
            f"def seg{i}(f):",
            "    memo = f.memo",
            f"    found = memo.get({key})",
            "    if found is None:",
            "        ctx = f.context",
            f"        found = memo[{key}] = bool({src.expr(node)})",
            "    return found",
        ]
    for j, (_, rules, default) in enumerate(slots):
        lines += [f"def slot{j}(f, catalog, exposures):", "    ctx = f.context"]
        for when, action, experiment in rules:
            if action is not None and action.static is not None:  # the same answer for everyone
                body = [f"return {src.constant('S', action.static)}"]
            elif action is not None:
                act = src.constant("A", action)
                body = [f"out = {act}.run(f, catalog)", "if out is not None:", "    return out"]
            else:
                compiled, variants, exposures = experiment
                exp, var, shown = (
                    src.constant("E", compiled),
                    src.constant("V", variants),
                    src.constant("X", exposures),
                )
                body = [
                    f"variant = {exp}.assign(f.user_key)",
                    "if variant:",
                    f"    out = {var}[variant].run(f, catalog)",
                    "    if out is not None:",
                    "        if exposures is not None:",
                    f"            exposures.append({shown}[variant])",
                    "        return out",
                ]
            if when is not None:
                lines.append(f"    if {src.expr(when)}:")
                lines += [f"        {line}" for line in body]
            else:
                lines += [f"    {line}" for line in body]
        if default.static is not None:
            lines.append(f"    return {src.constant('S', default.static)}")
        else:
            lines.append(f"    return {src.constant('D', default)}.run(f, catalog) or _DEFAULT")
    code = compile("\n".join(lines) + "\n", "<pz rules>", "exec")
    exec(code, src.namespace)  # noqa: S102 - our own generated source: see the module docstring
    segment_fns = {name: src.namespace[f"seg{index[name]}"] for name in segments}
    slot_fns = {slot: src.namespace[f"slot{j}"] for j, (slot, _, _) in enumerate(slots)}
    return segment_fns, slot_fns
