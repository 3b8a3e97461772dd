"""How far back the rules look, per kind of event: what the aggregator must keep for them.

The windows a rules file declares (`views(within=2h)`, `session_views(gap=30m)`,
`recently_viewed(within=1d)` …) decide the aggregator's horizons, so that a rule is never answered
from a history shorter than its window. Sessions need every kind of event, back to the session's
start; a session is followed back at most `SESSION_HORIZON_S`.
"""

from __future__ import annotations

from schemas.rules.expressions import Call, Literal, Name, walk
from schemas.rules.model import RuleSet
from schemas.rules.periods import PERIOD_SECONDS
from schemas.rules.vocabulary import EVENTS, FUNCTIONS, STRATEGIES, bound_arguments

SESSION_HORIZON_S = 6 * 3600
_COUNTS = {
    "views": "view",
    "carts": "cart",
    "purchases": "purchase",
    "item_views": "view",
    "category_views": "view",
}


def _literal(call: Call, name: str) -> object:
    """A literal argument's value (a duration, an event or period word), or the parameter's default."""
    value = bound_arguments(call).get(name)
    if isinstance(value, Literal):
        return value.value
    if isinstance(value, Name):
        return value.name
    return next(p.default for p in FUNCTIONS[call.name].params if p.name == name)


def horizons(rules: RuleSet) -> dict[str, int]:
    """Seconds of history each event kind needs for these rules (kinds the rules never look at: 0)."""
    needed = dict.fromkeys(EVENTS, 0)
    for condition in rules.conditions():
        for node in walk(condition):
            if not isinstance(node, Call) or node.name not in FUNCTIONS:
                continue
            if node.name in _COUNTS:
                kind = _COUNTS[node.name]
                needed[kind] = max(needed[kind], int(_literal(node, "within")))  # type: ignore[call-overload]
            elif node.name == "this_period":
                kind, period = str(_literal(node, "event")), str(_literal(node, "period"))
                needed[kind] = max(needed[kind], PERIOD_SECONDS[period])
            elif node.name in ("session_views", "session_length"):
                for kind in EVENTS:
                    needed[kind] = max(needed[kind], SESSION_HORIZON_S)
    for action in rules.actions():
        rec = action.recommend
        if rec is None or rec.strategy not in STRATEGIES or "within" not in rec.args:
            continue
        kind = str(rec.args.get("event", "view"))
        needed[kind] = max(needed[kind], int(rec.args["within"]))
    return needed
