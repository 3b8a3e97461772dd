"""bot_suspect: set by the aggregator from a user's event rate, shipped as a segment, read by rules."""

from __future__ import annotations

from aggregator.anomalies import AnomalySettings, user_flags
from aggregator.item_history import UserHistory, WindowSettings, add_events, to_profile
from schemas.events import Event
from schemas.rules import load_rules_text
from schemas.rules.compiler import EmptyCatalog, compile_rules
from schemas.rules.features import BOT_SUSPECT, Facts

SETTINGS = AnomalySettings(burst_window_s=60, burst_events=30)
NOW_S = 1_800_000_000


def history(*times_s: int) -> UserHistory:
    state = UserHistory()
    events = [
        Event("page_view", 1, t * 1000, t * 1000, item=f"p{n}", category="c") for n, t in enumerate(times_s)
    ]
    add_events(state, events, WindowSettings(max_items_per_user=64))
    return state


def test_thirty_pages_within_a_minute_flag_a_bot_and_a_reader_is_not_flagged() -> None:
    crawler = history(*(NOW_S - n for n in range(30)))
    reader = history(*(NOW_S - 20 * n for n in range(30)))  # a page every 20 s
    assert user_flags(crawler, SETTINGS) == (BOT_SUSPECT,)
    assert user_flags(reader, SETTINGS) == ()
    assert user_flags(UserHistory(), SETTINGS) == ()
    assert user_flags(history(*(NOW_S - n for n in range(29))), SETTINGS) == ()  # one short


def test_rules_can_treat_flagged_users_differently() -> None:
    program = compile_rules(
        load_rules_text(
            """
version: bots-1
slots:
  banner:
    rules:
      - when: bot_suspect
        headers: {X-Pz-Bot: "1"}
    default:
      headers: {X-Pz-Bot: "0"}
"""
        )
    )
    crawler = history(*(NOW_S - n for n in range(40)))
    flagged = to_profile(5, crawler, NOW_S * 1000, user_flags(crawler, SETTINGS))
    unflagged = to_profile(6, history(NOW_S - 5), NOW_S * 1000, ())
    for profile, bot in ((flagged, "1"), (unflagged, "0")):
        decision = program.decide(Facts(profile, {}, NOW_S, profile.key), EmptyCatalog(), ["banner"])
        assert decision["banner"]["headers"] == {"X-Pz-Bot": bot}
