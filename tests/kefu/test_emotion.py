"""Frustration over turns: the escalation rule routing relies on (kefu/emotion.py)."""

from __future__ import annotations

import math

import pytest

from kefu.emotion import ESCALATION_LEVEL, is_escalation, update_frustration

STRONG_NEG = {"label": "negative", "score": -0.9, "intensity": "strong", "signals": ["threat"]}
MILD_NEG = {"label": "negative", "score": -0.4, "intensity": "mild", "signals": []}
NEUTRAL = {"label": "neutral", "score": 0.0, "intensity": "none", "signals": []}
POSITIVE = {"label": "positive", "score": 0.6, "intensity": "mild", "signals": []}


def run(turns: list, start: float = 0.0) -> list[float]:
    values, value = [], start
    for sentiment in turns:
        value = update_frustration(value, sentiment)
        values.append(value)
    return values


def test_one_strong_negative_turn_escalates():
    assert update_frustration(0.0, STRONG_NEG) == ESCALATION_LEVEL
    assert is_escalation(0.0, STRONG_NEG)


def test_two_negative_turns_in_a_row_escalate_but_one_does_not():
    first, second = run([MILD_NEG, MILD_NEG])
    assert first < ESCALATION_LEVEL and not is_escalation(first, MILD_NEG)
    assert second == ESCALATION_LEVEL and is_escalation(second, MILD_NEG)


def test_a_calm_turn_between_negatives_prevents_escalation():
    values = run([MILD_NEG, NEUTRAL, MILD_NEG])
    assert values[-1] < ESCALATION_LEVEL
    assert not is_escalation(values[-1], MILD_NEG)


def test_calm_and_positive_turns_decay_and_positive_decays_faster():
    after_neutral = update_frustration(1.0, NEUTRAL)
    after_positive = update_frustration(1.0, POSITIVE)
    assert 0.0 < after_positive < after_neutral < 1.0
    assert run([NEUTRAL] * 8, start=1.0)[-1] < 0.01
    assert not is_escalation(after_neutral, NEUTRAL)


def test_value_stays_in_unit_interval_over_any_sequence():
    for value in run([STRONG_NEG, MILD_NEG, MILD_NEG, POSITIVE, MILD_NEG, STRONG_NEG, NEUTRAL] * 3):
        assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("previous", [None, "abc", "0.5x", math.nan, math.inf, -math.inf, -3, 7, [], {}])
def test_odd_previous_values_are_clamped_or_reset(previous):
    value = update_frustration(previous, MILD_NEG)
    assert 0.0 <= value <= 1.0 and math.isfinite(value)


def test_string_slot_values_from_old_trackers_are_read():
    assert update_frustration("0.5", MILD_NEG) == ESCALATION_LEVEL


@pytest.mark.parametrize(
    "sentiment", [None, {}, "negative", {"label": "furious"}, {"label": "negative", "intensity": "extreme"}, 42]
)
def test_malformed_sentiment_counts_as_neutral_or_mild(sentiment):
    value = update_frustration(0.8, sentiment)
    assert 0.0 <= value <= 1.0
    if not (isinstance(sentiment, dict) and sentiment.get("label") == "negative"):
        assert value == pytest.approx(0.4)
    assert not is_escalation(0.2, sentiment)


def test_escalation_from_history_alone():
    assert is_escalation(ESCALATION_LEVEL, NEUTRAL)
    assert is_escalation(1.0, None)
    assert not is_escalation(0.99, POSITIVE)


def test_model_only_mild_negatives_accumulate_slowly():
    """Two turns that only the learned head found (weakly) negative, e.g. "I lost my debit card"
    then "it ends with 4821", stay below escalation; cue-backed or confident ones do not."""
    from kefu.emotion import ESCALATION_LEVEL, update_frustration

    weak = {"label": "negative", "score": -0.42, "intensity": "mild", "signals": ["model_negative"]}
    level = update_frustration(update_frustration(0.0, weak), weak)
    assert level == 0.5 and level < ESCALATION_LEVEL
    cued = {"label": "negative", "score": -0.42, "intensity": "mild", "signals": ["zh_lexicon"]}
    assert update_frustration(update_frustration(0.0, cued), cued) == ESCALATION_LEVEL
    confident = {**weak, "score": -0.8}
    assert update_frustration(update_frustration(0.0, confident), confident) == ESCALATION_LEVEL
    unlisted = {"label": "negative", "score": -0.1, "intensity": "mild"}
    assert update_frustration(0.5, unlisted) == ESCALATION_LEVEL
