"""Conditions compiled into closures: the reference semantics of the rules language.

The page decision runs generated code (codegen.py); explanations and tests run these closures, and a
property test holds the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from schemas.rules.expressions import BoolOp, Call, Compare, ListOf, Literal, Name, Node, Not
from schemas.rules.features import Facts
from schemas.rules.vocabulary import FUNCTIONS, TypeChecker

Evaluator = Callable[[Facts], Any]


def _const(value: object) -> Evaluator:
    return lambda f: value


def compile_condition(node: Node, segments: Mapping[str, Evaluator], checker: TypeChecker) -> Evaluator:
    if isinstance(node, Literal):
        return _const(node.value)
    if isinstance(node, ListOf):
        return _const(frozenset(i.value for i in node.items))
    if isinstance(node, Name):
        return _name(node.name, segments)
    if isinstance(node, Call):
        return _call(node, segments, checker)
    if isinstance(node, Not):
        operand = compile_condition(node.operand, segments, checker)
        return lambda f: not operand(f)
    if isinstance(node, BoolOp):
        parts = [compile_condition(o, segments, checker) for o in node.operands]
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
    if name == "bot_suspect":
        return lambda f: f.bot_suspect
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
    if name == "cart_value":
        return lambda f: f.cart_value()
    if name == "lifetime":
        event = str(literal("event"))
        return lambda f: f.lifetime(event)
    if name == "lifetime_revenue":
        return lambda f: f.lifetime_revenue()
    if name == "since_first_seen":
        return lambda f: f.since_first_seen()
    if name == "category_views":
        category, within = str(literal("category")), int(literal("within"))
        return lambda f: f.category_views(category, within)
    if name == "this_period":
        kind, period = str(literal("event")), str(literal("period"))
        return lambda f: f.this_period(kind, period)
    if name in ("session_views", "session_length"):
        gap = int(literal("gap") if "gap" in args else FUNCTIONS[name].params[0].default)  # type: ignore[arg-type]
        return (
            (lambda f: f.session_views(gap)) if name == "session_views" else (lambda f: f.session_length(gap))
        )
    first, second = (compile_condition(args[p.name], segments, checker) for p in FUNCTIONS[name].params)
    if name == "starts_with":
        return lambda f: str(first(f)).startswith(str(second(f)))
    return lambda f: str(second(f)) in str(first(f))  # contains


def _compare(node: Compare, segments: Mapping[str, Evaluator], checker: TypeChecker) -> Evaluator:
    left = compile_condition(node.left, segments, checker)
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
    right = compile_condition(node.right, segments, checker)
    return {
        "==": lambda f: left(f) == right(f),
        "!=": lambda f: left(f) != right(f),
        "<": lambda f: left(f) < right(f),
        "<=": lambda f: left(f) <= right(f),
        ">": lambda f: left(f) > right(f),
        ">=": lambda f: left(f) >= right(f),
    }[op]
