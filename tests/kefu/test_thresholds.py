"""Thresholds by target precision (kefu.thresholds): hand-built risk–coverage curves, fallbacks, bad YAML."""

from __future__ import annotations

import numpy as np
import pytest

from kefu.errors import ConfigError
from kefu.thresholds import (
    Targets,
    choose_thresholds,
    format_plan,
    lowest_threshold,
    parse_targets,
    thresholds_for,
)


def curve():
    """100 predictions, confidences 0.995 .. 0.005, wrong at 30, 70, 74, 85 and 90..99.

    From the top, accuracy stays >= 97 % down to index 73 (72/74 = 97.3 %; with 74: 96.0 %).
    Below that, the band 74..89 holds 14/16 = 87.5 % (74..88: 86.7 %, 74..90: 82.4 %).
    """
    conf = np.round(np.linspace(0.995, 0.005, 100), 3)
    correct = np.ones(100, dtype=bool)
    correct[[30, 70, 74, 85]] = False
    correct[90:] = False
    return conf, correct


def test_lowest_threshold_on_a_hand_built_curve():
    conf, correct = curve()
    assert lowest_threshold(conf, correct, 0.97, min_support=20) == pytest.approx(conf[73])
    # 86 of all 100 are right: a 70 % target admits everything
    assert lowest_threshold(conf, correct, 0.70, min_support=20) == pytest.approx(conf[99])
    # the band below conf[73]: lowest start with >= 85 % and >= 10 predictions is index 89
    assert lowest_threshold(conf, correct, 0.85, min_support=10, upper=conf[73]) == pytest.approx(conf[89])
    # with support 17 no band of the lower part reaches 85 %
    assert lowest_threshold(conf, correct, 0.85, min_support=17, upper=conf[73]) is None
    # minimum support: a 100 % band of 5 is not enough
    assert lowest_threshold(conf[:5], correct[:5], 0.99, min_support=10) is None


def test_ties_are_admitted_together():
    conf = np.array([0.9, 0.9, 0.9, 0.5])
    correct = np.array([True, True, False, True])
    # a threshold of 0.9 admits all three 0.9s (2/3), never "two of them"
    assert lowest_threshold(conf, correct, 0.9, min_support=1) is None
    assert lowest_threshold(conf, correct, 0.6, min_support=1) == pytest.approx(0.5)


def test_choose_thresholds_meets_targets_and_reports_bands():
    conf, correct = curve()
    targets = Targets(auto_precision=0.97, specialist_precision=0.85, min_support=10)
    plan = choose_thresholds(conf, correct, ["a"] * 100, targets, {"examples": 100})
    assert plan["mode"] == "targets" and plan["warnings"] == []
    assert plan["auto"] == pytest.approx(conf[73]) and plan["specialist"] == pytest.approx(conf[89])
    assert plan["source"] == {"auto": "target", "specialist": "target"}
    assert plan["bands"]["auto"] == {"coverage": pytest.approx(0.74), "accuracy": pytest.approx(72 / 74), "support": 74}
    assert plan["bands"]["specialist"] == {"coverage": pytest.approx(0.16), "accuracy": pytest.approx(14 / 16),
                                           "support": 16}
    total = sum(plan["bands"][b]["coverage"] for b in ("auto", "specialist", "below"))
    assert total == pytest.approx(1.0)
    assert "auto_precision 0.97" in format_plan({"thresholds": plan})


def test_an_unreachable_target_warns_and_falls_back_to_the_numbers():
    conf, correct = curve()
    targets = Targets(auto_threshold=0.9, specialist_threshold=0.7, auto_precision=1.0,
                      specialist_precision=0.99, min_support=80)
    plan = choose_thresholds(conf, correct, ["a"] * 100, targets)
    assert plan["auto"] == 0.9 and plan["source"]["auto"] == "fallback"
    assert plan["specialist"] == 0.7 and plan["source"]["specialist"] == "fallback"
    assert len(plan["warnings"]) == 2 and "auto_precision 1.0" in plan["warnings"][0]
    assert "WARNING" in format_plan({"thresholds": plan})
    assert thresholds_for(plan, "a")["fallback"] is True


def test_numbers_mode_keeps_the_designers_numbers():
    conf, correct = curve()
    plan = choose_thresholds(conf, correct, ["a"] * 100, Targets(auto_threshold=0.8, specialist_threshold=0.6))
    assert (plan["mode"], plan["auto"], plan["specialist"]) == ("numbers", 0.8, 0.6)
    assert thresholds_for(plan, "a") == {"auto": 0.8, "specialist": 0.6, "source": "numbers", "fallback": False}


def test_a_risky_intent_gets_a_stricter_threshold_of_its_own():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 2000)
    correct = rng.uniform(size=2000) < conf  # calibrated: right with probability conf
    predicted = np.where(np.arange(2000) % 2 == 0, "freeze_card", "greet")
    targets = parse_targets({"auto_precision": 0.9, "specialist_precision": 0.6, "min_band_support": 20,
                             "intent_thresholds": {"freeze_card": {"auto_precision": 0.98},
                                                   "greet": {"auto_threshold": 0.5}}})
    plan = choose_thresholds(conf, correct, predicted, targets)
    freeze = plan["intents"]["freeze_card"]
    assert freeze["auto"] > plan["auto"] and freeze["source"]["auto"] == "target"
    assert freeze["bands"]["auto"]["accuracy"] >= 0.98
    # only the overridden key is searched on the intent's own predictions; the rest is inherited
    assert freeze["specialist"] == plan["specialist"] and freeze["source"]["specialist"] == "target"
    assert plan["intents"]["greet"]["auto"] == 0.5 and plan["intents"]["greet"]["source"]["auto"] == "number"
    assert thresholds_for(plan, "freeze_card")["auto"] == pytest.approx(freeze["auto"], abs=1e-6)
    assert thresholds_for(plan, "freeze_card")["source"] == "intent"
    assert thresholds_for(plan, "check_balance")["auto"] == pytest.approx(plan["auto"], abs=1e-6)


def test_targets_parse():
    targets = parse_targets({"auto_precision": 0.97, "specialist_precision": 0.85, "min_band_support": 30,
                             "intent_thresholds": {"freeze_card": {"auto_precision": 0.99}}})
    assert targets.uses_targets and targets.min_support == 30
    assert targets.intents["freeze_card"].auto_precision == 0.99
    assert not parse_targets({}).uses_targets and parse_targets({}).auto_threshold == 0.9


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"auto_precision": 0, "specialist_precision": 0.5}, "auto_precision must be a number in (0, 1]"),
        ({"auto_precision": 1.2, "specialist_precision": 0.5}, "auto_precision"),
        ({"auto_precision": -0.1, "specialist_precision": 0.5}, "auto_precision"),
        ({"auto_precision": "high", "specialist_precision": 0.5}, "auto_precision"),
        ({"auto_precision": True, "specialist_precision": 0.5}, "auto_precision"),
        ({"auto_precision": 0.9, "specialist_precision": 0.95}, "specialist_precision (0.95) must not exceed"),
        ({"auto_precision": 0.97}, "specialist_precision is missing"),
        ({"specialist_precision": 0.85}, "auto_precision is missing"),
        ({"auto_threshold": 0.5, "specialist_threshold": 0.7}, "specialist_threshold (0.7) must not exceed"),
        ({"auto_threshold": 2}, "auto_threshold"),
        ({"min_band_support": 0}, "min_band_support"),
        ({"intent_thresholds": ["freeze_card"]}, "intent_thresholds"),
        ({"intent_thresholds": {"freeze_card": {}}}, "intent_thresholds.freeze_card"),
        ({"intent_thresholds": {"freeze_card": {"colour": 1}}}, "unknown keys"),
        ({"intent_thresholds": {"freeze_card": {"auto_precision": 1.5}}}, "freeze_card.auto_precision"),
        ({"intent_thresholds": {"x": {"auto_precision": 0.9, "auto_threshold": 0.9}}}, "give one"),
        ({"intent_thresholds": {"x": {"auto_precision": 0.8, "specialist_precision": 0.9}}}, "must not exceed"),
        ({"intent_thresholds": {"x": {"auto_precision": 0.99}}}, "x.*_precision needs auto_precision"),
    ],
)
def test_bad_targets_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace("(", r"\(").replace(")", r"\)")):
        parse_targets(raw)
