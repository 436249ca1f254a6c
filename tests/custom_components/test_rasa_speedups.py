"""The compiled action-response validator accepts and rejects exactly what Rasa's own does.

Rasa 3.6's `RemoteAction._validate_action_result` (kept as `rasa_speedups.STOCK_VALIDATE`) and
ours are fed the same good and bad responses: both accept, or both raise a `ValidationError`
with the same message, path and failing keyword.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

import custom_components  # noqa: F401  (installs the fixes)
from custom_components import rasa_speedups

ACTION = RemoteAction("action_answer_faq", None)

GOOD = [
    {},
    {"events": [], "responses": []},
    {
        "events": [
            {"event": "slot", "name": "kb_source", "value": "faq", "timestamp": None},
            {"event": "slot", "name": "kb_confidence", "value": 0.8123},
            {"event": "action", "name": "action_listen"},
            {"event": "pause"},
            {"event": "active_loop", "name": None},
            {"event": "followup", "name": "utter_ask_rating"},
        ],
        "responses": [{"text": "您好", "buttons": [], "custom": {"handoff": "queued", "position": 2}}],
    },
    {"events": [{"event": "bot", "text": "hi", "data": {"elements": None}}], "responses": [{"response": "utter_x"}]},
]

BAD = [
    {"events": "not a list"},
    {"events": [{"name": "kb_source"}]},
    {"events": [{"event": "no_such_event"}]},
    {"events": [{"event": "slot", "name": 3}]},
    {"responses": {"text": "not an array"}},
    {"responses": ["not an object"]},
    {"events": [{"event": "action"}], "responses": [1]},
    {"events": [{"event": "user", "text": 5, "parse_data": "x"}]},
    [],
    "text",
]


def outcome(check: Any, result: Any) -> Optional[Dict[str, Any]]:
    """None when accepted, else what the raised error says."""
    try:
        assert check(ACTION, result) is True
    except ValidationError as exc:
        return {"message": exc.message, "path": list(exc.absolute_path), "validator": exc.validator,
                "schema_path": list(exc.absolute_schema_path)}
    return None


def test_installed_by_importing_the_package() -> None:
    assert RemoteAction._validate_action_result is rasa_speedups.validate_action_result
    assert rasa_speedups.STOCK_VALIDATE is not rasa_speedups.validate_action_result


@pytest.mark.parametrize("response", GOOD)
def test_good_responses_pass_both(response: Any) -> None:
    assert outcome(rasa_speedups.STOCK_VALIDATE, response) is None
    assert outcome(rasa_speedups.validate_action_result, response) is None


@pytest.mark.parametrize("response", BAD)
def test_bad_responses_fail_both_with_the_same_error(response: Any) -> None:
    stock = outcome(rasa_speedups.STOCK_VALIDATE, response)
    ours = outcome(rasa_speedups.validate_action_result, response)
    assert stock is not None
    assert ours == stock
    assert ours["message"].endswith("/custom-actions")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
EVENT = st.fixed_dictionaries(
    {"event": st.sampled_from(["slot", "action", "bot", "user", "pause", "resume", "followup", "x", ""])},
    optional={"name": JSON, "value": JSON, "text": JSON, "timestamp": JSON, "data": JSON},
)
RESPONSE = st.fixed_dictionaries({}, optional={"events": st.lists(EVENT, max_size=3) | JSON,
                                               "responses": st.lists(JSON, max_size=3) | JSON})


@settings(max_examples=300, deadline=None)
@given(RESPONSE)
def test_random_responses_get_the_same_verdict(response: Dict[str, Any]) -> None:
    assert outcome(rasa_speedups.validate_action_result, response) == outcome(rasa_speedups.STOCK_VALIDATE, response)
