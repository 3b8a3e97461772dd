"""How far back the rules look, per kind of event: what the aggregator must keep for them.

The windows a rules file declares (`views(within=2h)`, `session_views(gap=30m)`,
`recently_viewed(within=1d)` …) decide the aggregator's horizons, so that a rule is never answered
from a history shorter than its window. Sessions need every kind of event, back to the session's
start; a session is followed back at most `SESSION_HORIZON_S`.
"""

from __future__ import annotations

from collections.abc import Iterator

from schemas.rules.expressions import Call, Literal, Name, Node, walk
from schemas.rules.model import Action, RuleSet
from schemas.rules.vocabulary import EVENTS, FUNCTIONS, STRATEGIES

SESSION_HORIZON_S = 6 * 3600
_COUNTS = {"views": "view", "carts": "cart", "purchases": "purchase", "item_views": "view"}


def _literal(call: Call, name: str, defaults: dict[str, object]) -> object:
    for key, value in call.kwargs:
        if key == name and isinstance(value, Literal | Name):
            return value.value if isinstance(value, Literal) else value.name
    return defaults.get(name)


def _conditions(rules: RuleSet) -> Iterator[Node]:
    yield from rules.segments.values()
    for slot in rules.slots.values():
        for rule in slot.rules:
            if rule.when is not None:
                yield rule.when


def _actions(rules: RuleSet) -> Iterator[Action]:
    for slot in rules.slots.values():
        yield slot.default
        for rule in slot.rules:
            if rule.action is not None:
                yield rule.action
            yield from rule.variants.values()


def horizons(rules: RuleSet) -> dict[str, int]:
    """Seconds of history each event kind needs for these rules (kinds the rules never look at: 0)."""
    needed = dict.fromkeys(EVENTS, 0)
    for condition in _conditions(rules):
        for node in walk(condition):
            if not isinstance(node, Call) or node.name not in FUNCTIONS:
                continue
            defaults = {p.name: p.default for p in FUNCTIONS[node.name].params}
            if node.name in _COUNTS:
                kind = _COUNTS[node.name]
                needed[kind] = max(needed[kind], int(_literal(node, "within", defaults)))  # type: ignore[call-overload]
            elif node.name in ("session_views", "session_length"):
                for kind in EVENTS:
                    needed[kind] = max(needed[kind], SESSION_HORIZON_S)
    for action in _actions(rules):
        rec = action.recommend
        if rec is None or rec.strategy not in STRATEGIES or "within" not in rec.args:
            continue
        kind = str(rec.args.get("event", "view"))
        needed[kind] = max(needed[kind], int(rec.args["within"]))
    return needed
