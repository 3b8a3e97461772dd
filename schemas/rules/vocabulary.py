"""What a rule may refer to: request context, profile features, segments, and recommendation
strategies, each with its type, and the checker that types a condition before anything runs it.

Types: bool, number (durations are numbers of seconds), string, event (the bare words `view`,
`cart`, `purchase`), list (a literal list), segments (the user's set of segment names).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass

from schemas.rules.expressions import BoolOp, Call, Compare, ExpressionError, ListOf, Literal, Name, Node, Not
from schemas.rules.periods import PERIODS

EVENTS = ("view", "cart", "purchase")

# Request context: what the edge knows about this request, beside the profile.
CONTEXT_NAMES: dict[str, str] = {
    "country": "string",  # ISO 3166 alpha-2 from the CDN's header (PZ_COUNTRY_HEADER), "" if unknown
    "device": "string",  # "mobile" | "desktop", from Sec-CH-UA-Mobile, else the User-Agent
    "path": "string",  # of the page being decided for
    "referrer": "string",  # host of the Referer, "" if none
    "utm_source": "string",
    "utm_medium": "string",
    "utm_campaign": "string",
    "hour": "number",  # 0-23, local time of the site (PZ_SITE_TIMEZONE)
    "weekday": "string",  # "mon" … "sun", same clock
    "new_visitor": "bool",  # nothing known about this user yet
    "bot_suspect": "bool",  # the aggregator saw an inhuman event rate (a segment it sets)
    "segments": "segments",
}


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str
    default: object = None  # None: required
    positional: bool = False


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    returns: str
    params: tuple[Param, ...]
    doc: str


def _fn(name: str, returns: str, doc: str, *params: Param) -> Function:
    return Function(name, returns, params, doc)


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        _fn("views", "number", "page views of any item within the duration", Param("within", "duration")),
        _fn(
            "item_views",
            "number",
            "views of the most viewed single item within the duration",
            Param("within", "duration"),
        ),
        _fn(
            "category_views",
            "number",
            "page views of items in the category within the duration",
            Param("category", "category", positional=True),
            Param("within", "duration"),
        ),
        _fn("carts", "number", "add-to-cart events within the duration", Param("within", "duration")),
        _fn("purchases", "number", "purchases within the duration", Param("within", "duration")),
        _fn(
            "since_last",
            "number",
            "seconds since the user's last event of that kind (10 years if never)",
            Param("event", "event", positional=True),
        ),
        _fn("in_cart", "number", "items added to the cart since the last purchase"),
        _fn(
            "cart_value",
            "number",
            "the value of the items added to the cart since the last purchase (each item's newest "
            "add-to-cart value, as the page sent it)",
        ),
        _fn(
            "this_period",
            "number",
            "events of that kind since the current hour, day or week began, in the site's time zone "
            "(a tumbling window; weeks begin on Monday)",
            Param("event", "event", positional=True),
            Param("period", "period", positional=True),
        ),
        _fn(
            "session_views",
            "number",
            "page views in the user's current session (events no further apart than the gap; 0 once "
            "the gap has passed since the last one)",
            Param("gap", "duration", 1800),
        ),
        _fn(
            "session_length",
            "number",
            "seconds from the first event of the user's current session to now (0 if none is open)",
            Param("gap", "duration", 1800),
        ),
        _fn(
            "lifetime",
            "number",
            "events of that kind since the user was first seen (lifetime totals: the aggregator keeps a "
            "user until PZ_USER_TTL_S passes without an event of theirs)",
            Param("event", "event", positional=True),
        ),
        _fn("lifetime_revenue", "number", "the sum of the user's purchases' values since first seen"),
        _fn("since_first_seen", "number", "seconds since the user's first event (0 if nothing is known)"),
        _fn(
            "starts_with",
            "bool",
            "the text starts with the prefix",
            Param("text", "string", positional=True),
            Param("prefix", "string", positional=True),
        ),
        _fn(
            "contains",
            "bool",
            "the text contains the part",
            Param("text", "string", positional=True),
            Param("part", "string", positional=True),
        ),
    )
}

# Recommendation strategies: the `recommend:` of an action.
STRATEGIES: dict[str, Function] = {
    f.name: f
    for f in (
        _fn(
            "similar_to_recent",
            "items",
            "items like the one the user interacted with most recently, at least min_count times "
            "within the duration: the item model's nearest items, then its category's most popular",
            Param("event", "event", "view"),
            Param("within", "duration", 600),
            Param("min_count", "number", 1),
        ),
        _fn(
            "popular",
            "items",
            "the most popular items, overall or in one category",
            Param("category", "string", ""),
        ),
        _fn(
            "recently_viewed",
            "items",
            "the items the user viewed, newest first",
            Param("within", "duration", 86_400),
        ),
        _fn(
            "bought_together",
            "items",
            "items that sessions paired with the ones in the cart (the item model), then the best "
            "sellers of their categories",
        ),
    )
}

EXCLUDES = ("purchased", "in_cart", "viewed", "out_of_stock")


def bound_arguments(call: Call) -> dict[str, Node]:
    """A checked call's arguments by parameter name, positional or not (defaults not filled)."""
    params = [p.name for p in FUNCTIONS[call.name].params]
    return {**dict(zip(params, call.args, strict=False)), **dict(call.kwargs)}


def word_arguments(call: Call) -> list[Node]:
    """The arguments of a call that are bare words (an event kind, a period), not names to look up."""
    if call.name not in FUNCTIONS:
        return []
    bound = bound_arguments(call)
    return [
        bound[p.name]
        for p in FUNCTIONS[call.name].params
        if p.type in ("event", "period") and p.name in bound
    ]


def unknown_message(kind: str, name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(sorted(known))})"
    return f"unknown {kind} {name!r}{hint}"


class TypeChecker:
    """Types a parsed condition against the vocabulary and the rules file's own segments and features."""

    def __init__(self, segments: Collection[str], features: Collection[str] = ()) -> None:
        self.segments = segments
        self.features = features

    def check_number(self, node: Node) -> None:
        kind = self.type_of(node)
        if kind != "number":
            raise ExpressionError(f"a feature must be a number, this is a {kind}", node.offset)

    def check_condition(self, node: Node) -> None:
        kind = self.type_of(node)
        if kind != "bool":
            raise ExpressionError(f"a condition must be true or false, this is a {kind}", node.offset)

    def type_of(self, node: Node) -> str:
        if isinstance(node, Literal):
            if isinstance(node.value, bool):
                return "bool"
            return "string" if isinstance(node.value, str) else "number"
        if isinstance(node, ListOf):
            return "list"
        if isinstance(node, Name):
            return self._name(node)
        if isinstance(node, Call):
            function = FUNCTIONS.get(node.name)
            if function is None:
                raise ExpressionError(unknown_message("function", node.name, FUNCTIONS), node.offset)
            self.check_arguments(node, function)
            return function.returns
        if isinstance(node, Not):
            self._expect_bool(node.operand, "not")
            return "bool"
        if isinstance(node, BoolOp):
            for operand in node.operands:
                self._expect_bool(operand, node.op)
            return "bool"
        return self._compare(node)

    def _name(self, node: Name) -> str:
        if node.name in CONTEXT_NAMES:
            return CONTEXT_NAMES[node.name]
        if node.name in self.segments:
            return "bool"
        if node.name in self.features:
            return "number"
        if node.name in EVENTS:
            raise ExpressionError(f"{node.name!r} names an event kind: use it as an argument", node.offset)
        if node.name in PERIODS:
            raise ExpressionError(f"{node.name!r} names a period: use it as an argument", node.offset)
        raise ExpressionError(
            unknown_message("name", node.name, [*CONTEXT_NAMES, *self.segments, *self.features]), node.offset
        )

    def _expect_bool(self, node: Node, op: str) -> None:
        kind = self.type_of(node)
        if kind != "bool":
            raise ExpressionError(f"{op!r} needs true/false on each side, found a {kind}", node.offset)

    def _compare(self, node: Compare) -> str:
        left = self.type_of(node.left)
        if node.op in ("in", "not in"):
            if isinstance(node.right, Name) and node.right.name == "segments":
                if left != "string":
                    raise ExpressionError(
                        "only a segment name (a string) can be in segments", node.left.offset
                    )
                if isinstance(node.left, Literal) and node.left.value not in self.segments:
                    raise ExpressionError(
                        unknown_message("segment", str(node.left.value), self.segments), node.left.offset
                    )
                return "bool"
            if not isinstance(node.right, ListOf):
                raise ExpressionError(
                    f"{node.op!r} needs a [list] or segments on its right", node.right.offset
                )
            for item in node.right.items:
                if self.type_of(item) != left:
                    raise ExpressionError(f"this list item is not a {left} like the left side", item.offset)
            return "bool"
        right = self.type_of(node.right)
        if left != right or left in ("list", "segments"):
            raise ExpressionError(f"cannot compare a {left} with a {right}", node.offset)
        if node.op not in ("==", "!=") and left != "number":
            raise ExpressionError(f"{node.op!r} compares numbers only, not {left}s", node.offset)
        return "bool"

    def check_arguments(self, call: Call, function: Function) -> dict[str, Node]:
        """Match the call's arguments to the function's parameters; every problem is an error."""
        bound: dict[str, Node] = {}
        positional = [p for p in function.params if p.positional]
        if len(call.args) > len(positional):
            where = call.args[len(positional)].offset
            raise ExpressionError(
                f"{function.name}() takes {len(positional)} positional argument(s), got {len(call.args)}",
                where,
            )
        for param, arg in zip(positional, call.args, strict=False):
            bound[param.name] = arg
        params = {p.name: p for p in function.params}
        for key, value in call.kwargs:
            if key not in params:
                raise ExpressionError(
                    unknown_message(f"argument of {function.name}()", key, params), value.offset
                )
            if key in bound:
                raise ExpressionError(f"argument {key!r} given twice", value.offset)
            bound[key] = value
        for param in function.params:
            if param.name not in bound:
                if param.default is None:
                    raise ExpressionError(f"{function.name}() needs {param.name}=", call.offset)
                continue
            self._check_argument(function, param, bound[param.name])
        return bound

    def _check_argument(self, function: Function, param: Param, value: Node) -> None:
        where = f"{function.name}({param.name}=…)"
        if param.type == "duration":
            if not (isinstance(value, Literal) and value.is_duration):
                raise ExpressionError(f"{where} needs a duration such as 90s, 10m, 2h or 1d", value.offset)
            return
        if param.type == "event":
            if not (isinstance(value, Name) and value.name in EVENTS):
                raise ExpressionError(f"{where} is one of {', '.join(EVENTS)}", value.offset)
            return
        if param.type == "category":
            if not (isinstance(value, Literal) and isinstance(value.value, str) and value.value):
                raise ExpressionError(
                    f'{where} needs a category name in quotes, such as "shoes"', value.offset
                )
            return
        if param.type == "period":
            if not (isinstance(value, Name) and value.name in PERIODS):
                raise ExpressionError(f"{where} is one of {', '.join(PERIODS)}", value.offset)
            return
        if param.type == "number":
            if not (
                isinstance(value, Literal)
                and isinstance(value.value, int | float)
                and not isinstance(value.value, bool)
            ):
                raise ExpressionError(f"{where} needs a number", value.offset)
            return
        kind = self.type_of(value)
        if kind != param.type:
            raise ExpressionError(f"{where} needs a {param.type}, found a {kind}", value.offset)


def literal_arguments(call: Call, function: Function, checker: TypeChecker) -> dict[str, object]:
    """A strategy call's arguments as plain values (strategies take literals only), defaults filled."""
    bound = checker.check_arguments(call, function)
    values: dict[str, object] = {}
    for param in function.params:
        node = bound.get(param.name)
        if node is None:
            values[param.name] = param.default
        elif isinstance(node, Name):
            values[param.name] = node.name
        elif isinstance(node, Literal):
            values[param.name] = node.value
        else:
            raise ExpressionError(f"{function.name}({param.name}=…) takes a plain value", node.offset)
    return values
