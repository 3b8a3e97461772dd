"""`pz rules lint FILE…` and `pz rules test FILE --profile P.json --context C.json`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from schemas.profiles import EVENT_KINDS, ItemHistory, Lifetime, Profile
from schemas.rules import RuleSet, RulesInvalid, load_rules_text
from schemas.rules.compiler import compile_rules
from schemas.rules.features import Facts


class InputError(ValueError):
    """A profile, context or catalog file that cannot be used; the message says which field."""


def add_rules(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = sub.add_parser(
        "rules",
        help="check and try out rules files",
        description="Check rules files (every problem, with line and column) and try them on a profile.",
    )
    tools = rules.add_subparsers(dest="tool", required=True)
    lint = tools.add_parser("lint", help="report every problem in the files; exit 1 if there is any")
    lint.add_argument("files", type=Path, nargs="+")
    test = tools.add_parser("test", help="decide a page for a profile and a request, with the explanation")
    test.add_argument("file", type=Path)
    test.add_argument(
        "--profile",
        type=Path,
        help='JSON: {"items": [{"item", "category", "event": view|cart|purchase, "ages_s": [5, 60]}], '
        '"segments": [...]}; none: a new visitor',
    )
    test.add_argument(
        "--context", type=Path, help='JSON: {"country": "DE", "device": "mobile", "path": "/", "hour": 9, …}'
    )
    test.add_argument(
        "--catalog",
        type=Path,
        help='JSON: {"popular": [...], "popular_by_category": {...}, "similar": {item: [...]}}',
    )
    test.add_argument("--slots", help="comma-separated (default: every slot of the rules)")
    test.add_argument("--user-key", type=int, default=1, help="the user key (experiments hash it)")


def _load(path: Path) -> RuleSet:
    return load_rules_text(path.read_text())


def run_lint(files: list[Path]) -> int:
    failed = 0
    for path in files:
        try:
            rules = _load(path)
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
            failed += 1
            continue
        except RulesInvalid as exc:
            for problem in exc.problems:
                print(f"{path}:{problem}", file=sys.stderr)
            failed += 1
            continue
        count = sum(len(slot.rules) for slot in rules.slots.values())
        print(
            f"{path}: ok, version {rules.version}: {count} rules over {len(rules.slots)} slots, "
            f"{len(rules.features)} features, {len(rules.segments)} segments, "
            f"{len(rules.experiments)} experiments"
        )
    return 1 if failed else 0


def _json_object(path: Path | None, what: str) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{what} {path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} {path}: expected a JSON object")
    return data


def profile_from_json(data: dict[str, Any], key: int, now_s: int) -> Profile | None:
    if not data:
        return None
    items = []
    for i, entry in enumerate(data.get("items", [])):
        where = f"profile items[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("item"), str):
            raise InputError(f"{where}: needs an item (text)")
        event = entry.get("event", "view")
        if event not in EVENT_KINDS:
            raise InputError(f"{where}.event: one of {', '.join(EVENT_KINDS)}")
        ages = entry.get("ages_s", [0])
        if not isinstance(ages, list) or not all(isinstance(a, int) and a >= 0 for a in ages):
            raise InputError(f"{where}.ages_s: a list of seconds ago (whole numbers ≥ 0)")
        times = tuple(sorted((now_s - a for a in ages), reverse=True))
        items.append(ItemHistory(entry["item"], str(entry.get("category", "")), times, event))
    items.sort(key=lambda h: h.times_s[0] if h.times_s else 0, reverse=True)
    segments = data.get("segments", [])
    if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
        raise InputError("profile segments: a list of names")
    return Profile(key, tuple(items), tuple(segments), now_s * 1000, _lifetime_from_json(data, now_s))


def _lifetime_from_json(data: dict[str, Any], now_s: int) -> Lifetime | None:
    """{"first_seen_days_ago": 40, "views": 25, "carts": 4, "purchases": 3, "revenue": 120.5}"""
    totals = data.get("lifetime")
    if totals is None:
        return None
    if not isinstance(totals, dict):
        raise InputError("profile lifetime: an object of totals")
    unknown = set(totals) - {"first_seen_days_ago", "views", "carts", "purchases", "revenue"}
    if unknown:
        raise InputError(f"profile lifetime: unknown {', '.join(sorted(unknown))}")
    numbers = {}
    for name in ("first_seen_days_ago", "views", "carts", "purchases", "revenue"):
        value = totals.get(name, 0)
        whole = name in ("views", "carts", "purchases")
        if (
            isinstance(value, bool)
            or not isinstance(value, int if whole else int | float)
            or not 0 <= value < 2**53
        ):
            raise InputError(
                f"profile lifetime.{name}: {'a whole number' if whole else 'a number'}, 0 or more"
            )
        numbers[name] = value
    first_seen_s = now_s - round(numbers["first_seen_days_ago"] * 86_400)
    return Lifetime(
        first_seen_s,
        now_s,
        int(numbers["views"]),
        int(numbers["carts"]),
        int(numbers["purchases"]),
        round(numbers["revenue"] * 100),
    )


class _Catalog:
    def __init__(self, data: dict[str, Any]) -> None:
        self.popular = [str(i) for i in data.get("popular", [])]
        self.popular_by_category = {
            str(c): [str(i) for i in v] for c, v in data.get("popular_by_category", {}).items()
        }
        self.out_of_stock = frozenset(str(i) for i in data.get("out_of_stock", []))
        similar = data.get("similar", {})
        if not isinstance(similar, dict):
            raise InputError('catalog: "similar" must map items to lists of items')
        self._similar = {str(item): [str(i) for i in items] for item, items in similar.items()}

    def similar_items(self, item: str) -> list[str]:
        return self._similar.get(item, [])


def run_test(args: argparse.Namespace) -> int:
    try:
        rules = _load(args.file)
    except RulesInvalid as exc:
        for problem in exc.problems:
            print(f"{args.file}:{problem}", file=sys.stderr)
        return 1
    now_s = int(time.time())
    try:
        profile = profile_from_json(_json_object(args.profile, "profile"), args.user_key, now_s)
        context = _json_object(args.context, "context")
        catalog = _Catalog(_json_object(args.catalog, "catalog"))
    except InputError as exc:
        print(f"pz rules test: {exc}", file=sys.stderr)
        return 2
    program = compile_rules(rules)
    slots = [s for s in (args.slots or ",".join(program.slots)).split(",") if s]
    unknown = [s for s in slots if s not in program.slots]
    if unknown:
        print(
            f"pz rules test: no slot {unknown[0]!r} in {args.file} (slots: {', '.join(program.slots)})",
            file=sys.stderr,
        )
        return 2
    decision = program.decide(Facts(profile, context, now_s, args.user_key), catalog, slots)
    explanation = program.explain(Facts(profile, context, now_s, args.user_key), catalog, slots)
    print(orjson.dumps({"decision": decision, "explain": explanation}, option=orjson.OPT_INDENT_2).decode())
    return 0


def run_rules(args: argparse.Namespace) -> int:
    if args.tool == "lint":
        return run_lint(args.files)
    return run_test(args)
