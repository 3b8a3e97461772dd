"""`pz rules lint` and `pz rules test`, and `pz up --rules` refusing an invalid file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pz.cli import main

DEMO = Path(__file__).resolve().parent.parent / "pz" / "demo_shop" / "rules.yaml"


def test_lint_passes_good_files_and_lists_every_problem_of_bad_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "lint", str(DEMO)]) == 0
    assert "ok, version demo-1" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("slots:\n  hero:\n    rules:\n      - when: devise == 'x'\n        fragment: gone\n")
    assert main(["rules", "lint", str(DEMO), str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{bad}:4:15: slots/hero/rules/0/when: unknown name 'devise'; did you mean 'device'?",
        f"{bad}:5:19: slots/hero/rules/0/fragment: unknown fragment 'gone' (known: )",
    ]
    assert main(["rules", "lint", str(tmp_path / "missing.yaml")]) == 1


def test_test_prints_the_decision_and_its_explanation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "profile.json"
    profile.write_bytes(
        orjson.dumps(
            {
                "items": [
                    {"item": "p0042", "category": "lamps", "event": "view", "ages_s": [5, 60, 120]},
                    {"item": "p0042", "category": "lamps", "event": "cart", "ages_s": [180]},
                ]
            }
        )
    )
    context = tmp_path / "context.json"
    context.write_bytes(orjson.dumps({"country": "DE", "device": "desktop"}))
    catalog = tmp_path / "catalog.json"
    catalog.write_bytes(
        orjson.dumps({"popular": ["p1"], "popular_by_category": {"lamps": ["p0042", "p0043"]}})
    )
    args = ["rules", "test", str(DEMO), "--profile", str(profile), "--context", str(context)]
    assert main([*args, "--catalog", str(catalog)]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["decision"]["recs"]["based_on"] == "p0042"
    assert out["decision"]["banner"]["rule"] == "cart abandoners in DACH"
    assert out["decision"]["hero"]["html"].startswith('<p class="pz-hero">Still thinking about <b>p0042</b>')
    assert out["explain"]["slots"]["banner"]["tried"][0]["matched"] is True
    assert "cart_abandoner" in out["explain"]["segments"]


def test_test_refuses_bad_inputs_with_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "profile.json"
    profile.write_bytes(orjson.dumps({"items": [{"item": "p1", "event": "wish"}]}))
    assert main(["rules", "test", str(DEMO), "--profile", str(profile)]) == 2
    assert "profile items[0].event: one of view, cart, purchase" in capsys.readouterr().err
    assert main(["rules", "test", str(DEMO), "--slots", "sidebar"]) == 2
    assert "no slot 'sidebar'" in capsys.readouterr().err


def test_pz_up_refuses_an_invalid_rules_file_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("slots: {hero: {default: {fragment: nope}}}\n")
    assert main(["up", "--rules", str(bad), "--state-dir", str(tmp_path / "state")]) == 1
    err = capsys.readouterr().err
    assert "is invalid" in err and "unknown fragment 'nope'" in err
    assert not (tmp_path / "state").exists()


LOYALTY = """
version: loyalty-1
segments:
  regular: lifetime(purchase) >= 3 and since_first_seen() > 30d
slots:
  banner:
    rules:
      - when: regular and lifetime_revenue() >= 100
        fragment: vip
    default:
      fragment: other
fragments:
  vip: <p>vip</p>
  other: <p>other</p>
"""


def test_test_takes_lifetime_totals_in_the_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, profile = tmp_path / "loyalty.yaml", tmp_path / "profile.json"
    rules.write_text(LOYALTY)
    totals = {"first_seen_days_ago": 40, "views": 25, "purchases": 3, "revenue": 120.5}
    profile.write_bytes(orjson.dumps({"lifetime": totals}))
    assert main(["rules", "test", str(rules), "--profile", str(profile)]) == 0
    assert orjson.loads(capsys.readouterr().out)["decision"]["banner"]["html"] == "<p>vip</p>"
    for bad, error in (
        ({"purchases": 2.5}, "profile lifetime.purchases: a whole number, 0 or more"),
        ({"revenue": -1}, "profile lifetime.revenue: a number, 0 or more"),
        ({"orders": 3}, "profile lifetime: unknown orders"),
    ):
        profile.write_bytes(orjson.dumps({"lifetime": bad}))
        assert main(["rules", "test", str(rules), "--profile", str(profile)]) == 2
        assert error in capsys.readouterr().err
