"""The routing file's intents checked against the dialogue domain (kefu.routing.coverage)."""

from __future__ import annotations

import pytest
import yaml

from kefu.config import PROJECT_ROOT
from kefu.domain import domain_intents
from kefu.errors import ConfigError
from kefu.routing.coverage import check_intents, covered_intents, named_intents
from kefu.routing.settings import load_routing, parse_routing

ROUTING = PROJECT_ROOT / "data" / "routing.yml"
RASA_DEFAULTS = ("restart", "back", "out_of_scope", "session_start", "nlu_fallback")


def raw() -> dict:
    return yaml.safe_load(ROUTING.read_text(encoding="utf-8"))


def project_intents() -> list[str]:
    return [*domain_intents(), "EXTERNAL_handoff_closed", *RASA_DEFAULTS]


def test_the_project_routes_every_intent_it_names_and_covers_every_domain_intent():
    config = load_routing(ROUTING)
    assert check_intents(config, project_intents(), str(ROUTING), builtin=RASA_DEFAULTS) == []
    assert {"ask_human", "complain", "insult", "freeze_card", "greet"} <= covered_intents(config)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda r: r["groups"]["cards"]["intents"].append("freez_card"), "the intents of cards"),
        (lambda r: r["faq_intents"].append("opening_hours"), "faq_intents"),
        (lambda r: r["conversational_intents"].append("smalltalk"), "conversational_intents"),
        (lambda r: r["self_service_intents"].append("track_parcel"), "self_service_intents"),
        (lambda r: r["topics"].update(mortgage={"zh": "房贷", "en": "mortgages"}), "topics"),
        (lambda r: r["intent_thresholds"].update(lost_card={"auto_threshold": 0.95}), "intent_thresholds"),
    ],
)
def test_an_intent_the_domain_lacks_stops_training_with_file_and_intent_named(change, where):
    doc = raw()
    change(doc)
    config = parse_routing(doc)
    missing = next(i for i in named_intents(config) if i not in project_intents())
    with pytest.raises(ConfigError) as error:
        check_intents(config, project_intents(), "data/routing.yml", builtin=RASA_DEFAULTS)
    message = str(error.value)
    assert message.startswith("data/routing.yml names intents the domain does not define")
    assert f"'{missing}' ({where})" in message


def test_domain_intents_nothing_covers_are_returned_for_a_warning():
    doc = raw()
    doc["groups"]["loans"]["intents"] = []
    doc["faq_intents"].remove("loan_info")
    doc["topics"].pop("loan_info")
    config = parse_routing(doc)
    # greetings, Rasa's own intents and EXTERNAL_ intents are never reported
    assert check_intents(config, project_intents(), "r.yml", builtin=RASA_DEFAULTS) == ["loan_info"]
    more = [*project_intents(), "EXTERNAL_ping", "weather"]
    assert check_intents(config, more, "r.yml", builtin=RASA_DEFAULTS) == ["loan_info", "weather"]
