"""The rules language: parsing, validation with positions, compiled semantics, experiments,
explanations; every example file lints clean and decides."""

from __future__ import annotations

import collections
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.profiles import ItemHistory, Lifetime, Profile
from schemas.rules import RulesInvalid, load_rules_json, load_rules_text
from schemas.rules.compiler import EmptyCatalog, Exposure, compile_rules
from schemas.rules.expressions import ExpressionError, parse_expression, source_of
from schemas.rules.features import Facts

ROOT = Path(__file__).resolve().parent.parent
DEMO_RULES = ROOT / "pz" / "demo_shop" / "rules.yaml"
EXAMPLES = [DEMO_RULES, *sorted((ROOT / "rules" / "examples").glob("*.yaml"))]
NOW = 1_800_000_000


class Catalog:
    popular = ("p9", "p8", "p7", "p1")
    popular_by_category = {"shoes": ("p1", "p3", "p4"), "hats": ("p2", "p5")}
    out_of_stock = frozenset({"p6"})

    @staticmethod
    def similar_items(item: str) -> tuple[str, ...]:
        return {"p1": ("p5", "p4")}.get(item, ())


def problems_of(text: str) -> list[str]:
    with pytest.raises(RulesInvalid) as caught:
        load_rules_text(text)
    return [str(p) for p in caught.value.problems]


def rules(body: str) -> Any:
    return compile_rules(load_rules_text(body))


def facts(*items: ItemHistory, context: Mapping[str, object] | None = None, key: int = 7) -> Facts:
    profile = Profile(key, items) if items else None
    return Facts(profile, context or {}, NOW, key)


def views(item: str, *ages_s: int, category: str = "shoes") -> ItemHistory:
    return ItemHistory(item, category, tuple(NOW - a for a in ages_s))


# --- the examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_lints_clean_and_decides_every_slot(path: Path) -> None:
    program = compile_rules(load_rules_text(path.read_text()))
    decision = program.decide(facts(views("p1", 5, 50, 90)), Catalog, list(program.slots))
    assert set(decision) == set(program.slots)
    assert all("rule" in d for d in decision.values())


def test_the_examples_exist() -> None:
    assert len(EXAMPLES) >= 4


def test_the_briefs_rule_reads_in_at_most_five_lines() -> None:
    text = DEMO_RULES.read_text()
    start = text.index("- name: viewed a product 3 times in 10 minutes")
    rule = text[start:].split("\n      - ", 1)[0].strip().splitlines()
    assert len(rule) <= 5, rule


# --- the language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("", 0, "empty condition"),
        ("views(within=10m) >=", 20, "expected a value"),
        ("country == 'DE' and", 19, "expected a value"),
        ("a < b < c", 6, "chained comparisons"),
        ("country == 'DE", 11, "unexpected character"),
        ("f(a=1, a=2)", 7, "given twice"),
        ("f(a=1, 2)", 7, "positional argument after a named one"),
        ("[1, x]", 4, "lists hold numbers or strings"),
        ("(" * 40 + "true" + ")" * 40, 32, "nested more than"),
        ("device == 'mobile' )", 19, "unexpected ')'"),
    ],
)
def test_syntax_errors_point_at_the_offending_column(text: str, offset: int, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert message in caught.value.message
    assert caught.value.offset == offset


def test_durations_are_seconds_and_print_back() -> None:
    node = parse_expression("since_last(cart) >= 30m and views(within=1d) < 2")
    assert source_of(node) == "since_last(cart) >= 30m and views(within=1d) < 2"


def test_every_problem_is_reported_at_once_with_line_and_column() -> None:
    found = problems_of(
        "slots:\n"
        "  hero:\n"
        "    default: {fragment: missing}\n"
        "    rules:\n"
        "      - when: devise == 'mobile'\n"
        "        fragment: missing_too\n"
        "      - when: views(within=10) >= 3\n"
        "        recommend: popular()\n"
    )
    assert found == [
        "3:25: slots/hero/default/fragment: unknown fragment 'missing' (known: )",
        "5:15: slots/hero/rules/0/when: unknown name 'devise'; did you mean 'device'?",
        "6:19: slots/hero/rules/0/fragment: unknown fragment 'missing_too' (known: )",
        "7:28: slots/hero/rules/1/when: views(within=…) needs a duration such as 90s, 10m, 2h or 1d",
    ]


@pytest.mark.parametrize(
    ("rules_text", "expected"),
    [
        ("slots: {}", "no slots"),
        ("slots: {hero: {}}\nslots: {recs: {}}", "'slots' is given twice"),
        ("version: 1 2\nslots: {a: {}}", "version is 1 to 64"),
        ("segments: {a: b, b: a}\nslots: {s: {}}", "in a circle: a → b → a"),
        ("segments: {a: views(within=1m)}\nslots: {s: {}}", "must be true or false, this is a number"),
        ("slots: {s: {rules: [{when: 'hour in segments', headers: {A: b}}]}}", "only a segment name"),
        ("slots: {s: {rules: [{when: '\"vip\" in segments', headers: {A: b}}]}}", "unknown segment 'vip'"),
        ("slots: {s: {rules: [{when: 'country > \"DE\"', headers: {A: b}}]}}", "compares numbers only"),
        ("slots: {s: {rules: [{when: 'since_last(hat) > 1', headers: {A: b}}]}}", "is one of view, cart"),
        ("slots: {s: {rules: [{when: 'view', headers: {A: b}}]}}", "names an event kind"),
        ("slots: {s: {rules: [{experiment: nope, variants: {}}]}}", "unknown experiment 'nope'"),
        (
            "experiments: {e: {variants: {a: 1, b: 1}}}\n"
            "slots: {s: {rules: [{experiment: e, variants: {a: {}}}]}}",
            "variant 'b' of 'e' has no action here",
        ),
        (
            "experiments: {e: {variants: {a: 1}, holdout: 100}}\nslots: {s: {}}",
            "holdout is the percent",
        ),
        ("fragments: {f: 'a { b'}\nslots: {s: {}}", "a lone '{'"),
        ("slots: {s: {rules: [{headers: {X-A: 'é'}}]}}", "printable ASCII"),
        ("slots: [1, 2]", "slots must be a mapping"),
        ("slots: {s: {rules: [{fragment: f, name: a}, {fragment: f, name: a}]}}", "is called 'a'"),
        ("a: [", "not valid YAML"),
        ("slots: &s {s: {rules: [*s]}}", "anchors and aliases are not allowed"),
        ("slots: !!python/object:os.system {}", "not a plain value"),
    ],
)
def test_invalid_rules_are_refused_with_a_plain_reason(rules_text: str, expected: str) -> None:
    assert any(expected in p for p in problems_of(rules_text)), problems_of(rules_text)


# --- semantics ------------------------------------------------------------------------------

BRIEF = """
fragments:
  hero_similar: '<p>More like <b>{item}</b> in {category}</p>'
  hero_welcome: '<p>Welcome</p>'
segments:
  cart_abandoner: in_cart() > 0 and since_last(cart) >= 30m
slots:
  recs:
    default: {recommend: popular(), limit: 3}
    rules:
      - when: item_views(within=10m) >= 3
        recommend: similar_to_recent(event=view, within=10m, min_count=3)
  hero:
    default: {fragment: hero_welcome}
    rules:
      - when: item_views(within=10m) >= 3
        fragment: hero_similar
  banner:
    rules:
      - when: cart_abandoner and country in ["DE", "AT", "CH"]
        headers: {X-Promo: dach}
"""


def test_three_views_in_ten_minutes_lead_with_similar_items() -> None:
    program = rules(BRIEF)
    two = program.decide(facts(views("p1", 5, 50)), Catalog, ["recs", "hero"])
    assert two["recs"] == {"rule": "default", "items": [{"id": "p9"}, {"id": "p8"}, {"id": "p7"}]}
    assert two["hero"]["html"] == "<p>Welcome</p>"
    three = program.decide(facts(views("p1", 5, 50, 90)), Catalog, ["recs", "hero"])
    assert three["recs"]["based_on"] == "p1"
    # the item model's neighbours of p1 first, then its category, then overall popularity
    assert [i["id"] for i in three["recs"]["items"]] == ["p5", "p4", "p3", "p9", "p8", "p7"]
    assert three["hero"]["html"] == "<p>More like <b>p1</b> in shoes</p>"
    stale = program.decide(facts(views("p1", 5, 50, 601)), Catalog, ["recs"])  # one view left the window
    assert stale["recs"]["rule"] == "default"


def test_fragment_fields_are_escaped() -> None:
    program = rules(BRIEF)
    hostile = ItemHistory('<script>"x"</script>', "a&b", (NOW - 1, NOW - 2, NOW - 3))
    html = program.decide(facts(hostile), Catalog, ["hero"])["hero"]["html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "a&amp;b" in html


def test_cart_abandoner_needs_the_time_to_pass_and_no_purchase_since() -> None:
    program = rules(BRIEF)
    de = {"country": "DE"}
    cart = ItemHistory("p2", "hats", (NOW - 40 * 60,), "cart")
    assert program.decide(facts(cart, context=de), Catalog, ["banner"])["banner"]["headers"] == {
        "X-Promo": "dach"
    }
    fresh = ItemHistory("p2", "hats", (NOW - 10 * 60,), "cart")
    assert program.decide(facts(fresh, context=de), Catalog, ["banner"])["banner"] == {"rule": "default"}
    bought = ItemHistory("p2", "hats", (NOW - 20 * 60,), "purchase")
    assert program.decide(facts(cart, bought, context=de), Catalog, ["banner"])["banner"] == {
        "rule": "default"
    }
    us = {"country": "US"}
    assert program.decide(facts(cart, context=us), Catalog, ["banner"])["banner"] == {"rule": "default"}


def test_a_rule_that_raises_costs_its_slot_the_default_and_nothing_else() -> None:
    errors: list[tuple[str, Exception]] = []
    program = compile_rules(load_rules_text(BRIEF), lambda slot, rule, exc: errors.append((slot, exc)))
    broken = Facts(Profile(1, (views("p1", 1, 2, 3),)), {}, "not a number", 1)  # type: ignore[arg-type]
    decision = program.decide(broken, Catalog, ["recs", "banner"])
    assert decision["recs"]["rule"] == "default" and decision["banner"] == {"rule": "default"}
    assert [slot for slot, _ in errors] == ["recs"]


EXPERIMENT = """
fragments: {a: '<p>A</p>', b: '<p>B</p>', fallback: '<p>F</p>'}
experiments:
  hero_test: {variants: {control: 50, bold: 50}, holdout: 10, exposure_sample: 0.5}
slots:
  hero:
    default: {fragment: fallback}
    rules:
      - experiment: hero_test
        variants: {control: a, bold: b}
"""


def test_experiments_split_as_declared_stick_per_user_and_log_exposures() -> None:
    program = rules(EXPERIMENT)
    seen: collections.Counter[str] = collections.Counter()
    for key in range(20_000):
        exposures: list[Exposure] = []
        chosen = program.decide(facts(key=key), EmptyCatalog(), ["hero"], exposures)["hero"]
        again = program.decide(facts(key=key), EmptyCatalog(), ["hero"])["hero"]
        assert chosen == again
        seen[chosen.get("variant", "holdout")] += 1
        if "variant" in chosen:
            assert exposures == [Exposure("hero_test", chosen["variant"], "hero", "hero#1", 0.5)]
        else:
            assert chosen["html"] == "<p>F</p>" and exposures == []
    assert abs(seen["holdout"] / 20_000 - 0.10) < 0.01
    assert abs(seen["control"] / 20_000 - 0.45) < 0.015
    assert abs(seen["bold"] / 20_000 - 0.45) < 0.015


def test_explanations_say_which_rules_were_tried_and_why() -> None:
    program = rules(BRIEF)
    report = program.explain(
        facts(views("p1", 5, 50), context={"country": "DE"}), Catalog, ["recs", "banner"]
    )
    recs = report["slots"]["recs"]
    assert recs["chosen"] == "default"
    assert recs["tried"][0]["matched"] is False
    assert recs["tried"][0]["because"] == [
        "item_views(within=10m) is 2: item_views(within=10m) >= 3 does not hold"
    ]
    assert report["slots"]["banner"]["tried"][0]["because"] == ["cart_abandoner is false"]
    assert report["rules_version"].startswith("sha-")


def test_rules_survive_the_trip_through_a_snapshot_as_json() -> None:
    original = load_rules_text(BRIEF)
    again = load_rules_json(original.to_json())
    assert again.version == original.version
    assert again.to_json() == original.to_json()


def test_the_version_is_the_declared_one_or_a_content_hash() -> None:
    assert load_rules_text("version: r7\nslots: {s: {}}").version == "r7"
    one, two = load_rules_text("slots: {s: {}}"), load_rules_text("slots: {t: {}}")
    assert one.version != two.version and one.version.startswith("sha-")


def test_only_the_context_the_rules_use_is_asked_for() -> None:
    assert rules(BRIEF).context_names == {"country"}


# --- fuzzing --------------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "views(within=10m)",
        "item_views(",
        "since_last(cart)",
        "in_cart()",
        "country",
        "device",
        "and",
        "or",
        "not",
        "in",
        "==",
        ">=",
        "<",
        "(",
        ")",
        "[",
        "]",
        ",",
        '"DE"',
        "'x'",
        "3",
        "10m",
        "true",
        "segments",
        "cart_abandoner",
        "=",
        "within",
        "@",
        "\\",
        '"',
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, max_size=14).map(" ".join))
def test_conditions_never_crash_the_parser_or_checker(text: str) -> None:
    document = (
        "segments: {cart_abandoner: 'true'}\nslots:\n  s:\n    rules:\n"
        f"      - when: {text!r}\n        headers: {{A: b}}"
    )
    try:
        program = rules(document)
    except RulesInvalid as exc:
        assert all(p.line > 0 for p in exc.problems)
        return
    program.decide(facts(views("p1", 1)), Catalog, ["s"])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_as_a_rules_file_is_refused_or_accepted_never_a_crash(text: str) -> None:
    try:
        load_rules_text(text)
    except RulesInvalid as exc:
        assert exc.problems


# --- the published JSON Schema ----------------------------------------------------------------

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "rules" / "rules.schema.json"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_json_schema_accepts_every_example(path: Path) -> None:
    import jsonschema
    import orjson
    import yaml

    jsonschema.validate(yaml.safe_load(path.read_text()), orjson.loads(SCHEMA.read_bytes()))


def test_the_json_schema_knows_exactly_the_keys_the_model_knows() -> None:
    import orjson

    from schemas.rules.model import ACTION_KEYS, EXPERIMENT_KEYS, RULE_KEYS, SLOT_KEYS, TOP_KEYS

    schema = orjson.loads(SCHEMA.read_bytes())
    defs = schema["$defs"]
    assert set(schema["properties"]) == set(TOP_KEYS)
    assert set(defs["rule"]["properties"]) == set(RULE_KEYS)
    assert set(defs["action"]["oneOf"][1]["properties"]) == set(ACTION_KEYS)
    slot = schema["properties"]["slots"]["additionalProperties"]
    assert set(slot["properties"]) == set(SLOT_KEYS)
    experiment = schema["properties"]["experiments"]["additionalProperties"]
    assert set(experiment["properties"]) == set(EXPERIMENT_KEYS)
    from schemas.rules.vocabulary import EXCLUDES

    assert defs["rule"]["properties"]["exclude"]["items"]["enum"] == list(EXCLUDES)
    assert defs["action"]["oneOf"][1]["properties"]["exclude"]["items"]["enum"] == list(EXCLUDES)


# --- the generated code and the explanations agree ----------------------------------------------

FASHION = ROOT / "rules" / "examples" / "fashion_store.yaml"
KINDS = st.sampled_from(["view", "cart", "purchase"])
HISTORIES = st.builds(
    lambda item, kind, ages: ItemHistory(
        f"p{item}", f"c{item % 3}", tuple(NOW - a for a in sorted(ages)), kind
    ),
    st.integers(0, 6),
    KINDS,
    st.lists(st.integers(0, 100_000), min_size=1, max_size=4),
)
CONTEXTS = st.fixed_dictionaries(
    {
        "country": st.sampled_from(["DE", "US", "CH", ""]),
        "device": st.sampled_from(["mobile", "desktop"]),
        "path": st.sampled_from(["/", "/sale/x", "/category/shoes"]),
        "utm_campaign": st.sampled_from(["", "sale"]),
        "utm_medium": st.sampled_from(["", "social"]),
        "hour": st.integers(0, 23),
        "weekday": st.sampled_from(["mon", "sat"]),
    }
)


@settings(max_examples=300, deadline=None)
@given(st.lists(HISTORIES, max_size=8), CONTEXTS, st.integers(0, 2**64 - 1))
def test_generated_decisions_match_the_explained_ones(
    items: list[ItemHistory], context: dict[str, object], key: int
) -> None:
    program = compile_rules(load_rules_text(FASHION.read_text()))
    profile = Profile(key, tuple(items)) if items else None
    decision = program.decide(Facts(profile, context, NOW, key), Catalog, list(program.slots))
    report = program.explain(Facts(profile, context, NOW, key), Catalog, list(program.slots))
    for slot, chosen in decision.items():
        assert report["slots"][slot]["chosen"] == chosen["rule"], (slot, report["slots"][slot])


def test_slots_left_when_the_budget_runs_out_get_their_defaults() -> None:
    program = rules(BRIEF)
    watched = facts(views("p1", 5, 50, 90))
    on_time = program.decide(watched, Catalog, ["hero", "recs"], deadline=time.perf_counter() + 60)
    assert on_time["hero"]["html"] == "<p>More like <b>p1</b> in shoes</p>"
    late = program.decide(watched, Catalog, ["hero", "recs"], deadline=time.perf_counter() - 1)
    assert late["hero"] == {"rule": "default", "fragment": "hero_welcome", "html": "<p>Welcome</p>"}
    assert late["recs"]["rule"] == "default" and [i["id"] for i in late["recs"]["items"]] == [
        "p9",
        "p8",
        "p7",
    ]


# --- rules updates on their own channel -----------------------------------------------------------


def test_the_newest_published_rules_win_whichever_way_they_arrive() -> None:
    from edge_worker.rules_state import RulesState
    from schemas.rules.channel import seal_rules
    from schemas.settings import DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET
    from schemas.signing import SigningKey
    from schemas.snapshot_codec import SnapshotContent, SnapshotReader, encode_snapshot

    key = SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode())
    state = RulesState({key.key_id: key})
    assert state.program.version == "builtin-1"
    v2 = load_rules_text("version: v2\nslots: {hero: {}}")
    state.apply_update(seal_rules(v2, 2_000, key))
    assert state.program.version == "v2"
    v1 = load_rules_text("version: v1\nslots: {hero: {}}")
    older = SnapshotReader(encode_snapshot(SnapshotContent("s", 1_000, {}, (), {}, (), "v1", v1.to_json())))
    state.install(older)  # built before v2 was published: ignored
    assert state.program.version == "v2"
    state.apply_update(seal_rules(v1, 1_500, key))  # a late copy of older rules: ignored
    assert state.program.version == "v2"
    forged = SigningKey(DEV_SIGNING_KEY_ID, b"not the secret")
    state.apply_update(seal_rules(v1, 9_000, forged))  # does not verify: refused
    assert state.program.version == "v2"
    newer = SnapshotReader(encode_snapshot(SnapshotContent("s", 3_000, {}, (), {}, (), "v1", v1.to_json())))
    state.install(newer)
    assert state.program.version == "v1"


def test_sold_out_items_are_left_out_when_the_rule_says_so() -> None:
    program = rules(
        "slots:\n"
        "  recs:\n"
        "    default: {recommend: popular(), limit: 3, exclude: [out_of_stock]}\n"
        "  all:\n"
        "    default: {recommend: popular(), limit: 3}\n"
    )

    class Stocked(Catalog):
        popular = ("p9", "p6", "p8", "p7")

    decision = program.decide(facts(), Stocked, ["recs", "all"])
    assert [i["id"] for i in decision["recs"]["items"]] == ["p9", "p8", "p7"]
    assert [i["id"] for i in decision["all"]["items"]] == ["p9", "p6", "p8"]


def test_session_windows_count_the_current_run_of_events_and_close_after_the_gap() -> None:
    program = rules(
        """
version: sessions-1
slots:
  banner:
    rules:
      - when: session_views() >= 3 and session_length(gap=30m) >= 120
        headers: {X-Pz-Session: engaged}
      - when: session_views(gap=5m) >= 1
        headers: {X-Pz-Session: started}
    default:
      headers: {X-Pz-Session: none}
"""
    )

    def banner(*items: ItemHistory) -> str:
        return str(program.decide(facts(*items), Catalog, ["banner"])["banner"]["headers"]["X-Pz-Session"])

    # views 10 s, 100 s and 200 s ago, one 3 h ago (a session of its own)
    assert banner(views("p1", 10, 200), views("p2", 100, 3 * 3600)) == "engaged"
    assert banner(views("p1", 10, 60), views("p2", 3 * 3600)) == "started"  # 2 views: not yet engaged
    assert banner(views("p1", 3600, 3700, 3800)) == "none"  # the session ended an hour ago
    # with a 5-minute gap, views 10 min apart are separate sessions
    f = facts(views("p1", 10, 600, 1200))
    assert (f.session_views(300), f.session_views(1800), f.session_length(1800)) == (1, 3, 1200)


def test_tumbling_windows_count_since_the_period_began_on_the_sites_clock() -> None:
    program = rules(
        """
version: periods-1
segments:
  bought_today: this_period(purchase, day) >= 1
slots:
  banner:
    rules:
      - when: bought_today
        headers: {X-Pz-Today: bought}
      - when: this_period(event=view, period=hour) >= 2
        headers: {X-Pz-Today: browsing}
    default:
      headers: {X-Pz-Today: none}
"""
    )
    assert program.context_names == frozenset({"period_starts"})
    midnight = NOW - 5 * 3600  # the site's day began five hours ago
    context = {"period_starts": {"hour": NOW - 1800, "day": midnight, "week": midnight - 86_400}}
    bought = ItemHistory("p1", "shoes", (NOW - 4 * 3600,), "purchase")  # after midnight
    yesterday = ItemHistory("p1", "shoes", (NOW - 6 * 3600,), "purchase")

    def banner(*items: ItemHistory) -> str:
        decided = program.decide(facts(*items, context=context), Catalog, ["banner"])
        return str(decided["banner"]["headers"]["X-Pz-Today"])

    assert banner(bought) == "bought"
    assert banner(yesterday, views("p2", 60, 600)) == "browsing"  # both views in this half hour
    assert banner(yesterday, views("p2", 60, 2400)) == "none"  # one was in the previous hour
    problems = problems_of(BRIEF.replace("item_views(within=10m) >= 3", "day >= 1"))
    assert problems and all("'day' names a period: use it as an argument" in p for p in problems)


def test_category_views_count_one_categorys_views_within_the_window() -> None:
    program = rules(
        """
version: categories-1
segments:
  shoe_fan: category_views("shoes", within=1h) >= 3
slots:
  banner:
    rules:
      - when: shoe_fan
        fragment: shoes
    default:
      fragment: other
fragments:
  shoes: <p>shoes</p>
  other: <p>other</p>
"""
    )

    def banner(*items: ItemHistory) -> str:
        return str(program.decide(facts(*items), Catalog, ["banner"])["banner"]["html"])

    assert banner(views("p1", 10, 20), views("p2", 30)) == "<p>shoes</p>"
    assert banner(views("p1", 10, 20), views("p2", 30, category="hats")) == "<p>other</p>"
    assert banner(views("p1", 10, 20), views("p2", 4000)) == "<p>other</p>"  # outside the hour
    problems = problems_of(
        BRIEF.replace("item_views(within=10m) >= 3", "category_views(path, within=1h) > 1")
    )
    assert problems and all("needs a category name in quotes" in p for p in problems)


FEATURES = """
version: features-1
features:
  pages_this_session: session_views(gap=30m)
  bought_today: this_period(purchase, day)
  shoe_interest: category_views("shoes", within=1d)
segments:
  engaged: pages_this_session >= 3 and bought_today == 0
slots:
  banner:
    rules:
      - when: engaged and shoe_interest > 3
        headers: {X-Pz: engaged-shoes}
      - when: engaged
        headers: {X-Pz: engaged}
    default:
      headers: {X-Pz: none}
"""


def test_declared_features_are_named_numbers_that_segments_and_rules_use() -> None:
    program = rules(FEATURES)
    f = facts(views("p1", 10, 20), views("p2", 30))  # shoes, three views in this session
    assert program.decide(f, Catalog, ["banner"])["banner"]["headers"] == {"X-Pz": "engaged"}
    assert program.explain(f, Catalog, ["banner"])["features"] == {
        "pages_this_session": 3,
        "bought_today": 0,
        "shoe_interest": 3,
    }
    more = facts(views("p1", 10, 20, 30), views("p2", 40))
    assert program.decide(more, Catalog, ["banner"])["banner"]["headers"] == {"X-Pz": "engaged-shoes"}
    assert program.decide(facts(), Catalog, ["banner"])["banner"]["headers"] == {"X-Pz": "none"}


def test_a_feature_must_be_a_number_and_cannot_share_a_segments_name() -> None:
    not_a_number = FEATURES.replace("session_views(gap=30m)", 'country == "DE"')
    assert any("a feature must be a number, this is a bool" in p for p in problems_of(not_a_number))
    clash = FEATURES.replace("  engaged: pages", "  bought_today: pages")
    assert any("is a feature already" in p for p in problems_of(clash))


def test_cart_value_sums_what_is_in_the_cart_since_the_last_purchase() -> None:
    program = rules(
        """
version: shipping-1
features:
  basket: cart_value()
slots:
  banner:
    rules:
      - when: basket >= 50
        headers: {X-Pz-Shipping: free}
      - when: basket > 0
        headers: {X-Pz-Shipping: almost}
    default:
      headers: {X-Pz-Shipping: none}
"""
    )

    def shipping(*items: ItemHistory) -> str:
        return str(program.decide(facts(*items), Catalog, ["banner"])["banner"]["headers"]["X-Pz-Shipping"])

    shoes = ItemHistory("p1", "shoes", (NOW - 100,), "cart", 39.9)
    socks = ItemHistory("p2", "socks", (NOW - 50,), "cart", 12.5)
    assert shipping(shoes) == "almost"
    assert shipping(shoes, socks) == "free"
    bought = ItemHistory("p1", "shoes", (NOW - 80,), "purchase", 39.9)  # checkout after the shoes
    assert shipping(shoes, socks, bought) == "almost"  # only the socks are in the cart now
    assert shipping() == "none"


def test_lifetime_totals_tell_a_returning_customer_whose_windows_are_empty() -> None:
    program = rules(
        """
version: loyalty-1
features:
  spent: lifetime_revenue()
  orders: lifetime(purchase)
segments:
  loyal: orders >= 3 and since_first_seen() > 30d and lifetime(view) >= 10
slots:
  banner:
    rules:
      - when: loyal and spent >= 100
        headers: {X-Pz: vip}
      - when: new_visitor
        headers: {X-Pz: welcome}
      - when: lifetime(cart) > 0
        headers: {X-Pz: known}
    default:
      headers: {X-Pz: none}
"""
    )

    def banner(lifetime: Lifetime | None) -> str:
        f = Facts(Profile(7, (), (), NOW * 1000, lifetime), {}, NOW, 7)
        return str(program.decide(f, Catalog, ["banner"])["banner"]["headers"]["X-Pz"])

    regular = Lifetime(
        NOW - 40 * 86_400, NOW - 5 * 86_400, views=25, carts=4, purchases=3, revenue_cents=12_050
    )
    assert banner(regular) == "vip"  # nothing in any window: only the totals know
    assert banner(regular._replace(revenue_cents=9_999)) == "known"
    assert banner(regular._replace(first_seen_s=NOW - 10 * 86_400)) == "known"  # not 30 days yet
    assert banner(None) == "welcome"
    assert banner(Lifetime(NOW - 60, NOW - 60)) == "none"  # seen before, so not new
    f = Facts(Profile(7, (), (), NOW * 1000, regular), {}, NOW, 7)
    assert program.explain(f, Catalog, ["banner"])["features"] == {"spent": 120.5, "orders": 3}
    wrong = problems_of(BRIEF.replace("item_views(within=10m) >= 3", "lifetime(day) > 1"))
    assert wrong and all("lifetime(event=…) is one of view, cart, purchase" in p for p in wrong)
