"""RoutingPolicy: the smart-routing decision (handoff/routing.py) as a Rasa dialogue policy.

On every fresh user turn it asks `handoff.routing.decide` who should answer. When the
answer is the bot it abstains, so rules, memoization and TED run the conversation as
trained; otherwise it predicts, with confidence 1.0 and a priority above RulePolicy's:

- `action_handoff` for specialist / human / senior / callback routes (the action recomputes
  the same decision, writes the ticket and pauses the bot);
- `action_fallback` for a clarifying question (and for the second unclear turn);
- `action_rate` when the customer answers the rating question with 1-5 after a handoff;
- `action_listen` right after any of those actions.

An angry customer in the middle of a form is taken out of it: that prediction is marked
"no user" like the form's own, so it outranks the loop (action_handoff ends the loop).
Routing thresholds live in the designers' YAML (re-read when it changes), not in the model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from handoff import turns
from handoff.routing import RouteDecision, TurnSignals, decide, log_decision
from handoff.routing_config import RoutingConfig, load_routing
from kefu.errors import ConfigError

log = logging.getLogger(__name__)

HANDOFF_ACTION = "action_handoff"
CLARIFY_ACTION = "action_fallback"
RATE_ACTION = "action_rate"
OWN_ACTIONS = (HANDOFF_ACTION, CLARIFY_ACTION, RATE_ACTION)
# intents the project's rules already send to action_handoff
RULE_HANDLED = frozenset({"ask_human", "complain", "insult"})
RECENT_EVENTS = 300


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=False)
class RoutingPolicy(Policy):
    """Hands a turn to people (or asks to clarify) according to data/routing.yml."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            # above RulePolicy (4): a handoff decision beats the rule that would answer
            "priority": 5,
            # None: kefu.config's KEFU_ROUTING_FILE (default data/routing.yml)
            "routing_file": None,
        }

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Optional[Any] = None,
    ) -> None:
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        self.routing_file = self._routing_path(config.get("routing_file"))
        load_routing(self.routing_file)  # a missing or broken file stops training / start-up with its name

    @staticmethod
    def _routing_path(configured: Optional[str]) -> Path:
        if configured:
            return Path(configured)
        from kefu.config import load_settings

        return load_settings().routing_file

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Nothing to learn; fail the training early if the routing file or the actions are missing."""
        load_routing(self.routing_file)
        missing = [name for name in OWN_ACTIONS if name not in domain.action_names_or_texts]
        if missing:
            raise ConfigError(f"RoutingPolicy needs the actions {missing} in the domain")
        return self._resource

    def _config(self) -> Optional[RoutingConfig]:
        try:
            return load_routing(self.routing_file)
        except ConfigError as exc:  # a designer's broken edit must not stop the conversation
            log.error("routing disabled until %s is fixed: %s", self.routing_file, exc)
            return None

    def _predict(
        self, domain: Domain, action: Optional[str], no_user: bool = False, **diagnostic: Any
    ) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        if action is not None and action in domain.action_names_or_texts:
            probabilities[domain.index_for_action(action)] = 1.0
        return self._prediction(probabilities, is_no_user_prediction=no_user, diagnostic_data=diagnostic or None)

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        # the latest action or user message decides; after a pause + resume a user message may
        # follow action_handoff directly, and that is a fresh user turn, not "after our action"
        last = next((e for e in reversed(tracker.events) if isinstance(e, ActionExecuted | UserUttered)), None)
        if isinstance(last, ActionExecuted):
            if last.action_name in OWN_ACTIONS:
                return self._predict(domain, ACTION_LISTEN_NAME)
            return self._predict(domain, None)
        if last is None or tracker.latest_message is None or tracker.is_paused():
            return self._predict(domain, None)
        parse_data = tracker.latest_message.parse_data
        intent = (parse_data.get("intent") or {}).get("name")
        if not intent or intent.startswith("EXTERNAL_") or intent == "session_start":
            return self._predict(domain, None)
        config = self._config()
        if config is None:
            return self._predict(domain, None)
        events = [event.as_dict() for event in list(tracker.events)[-RECENT_EVENTS:]]
        if turns.asked_for_rating(events) and turns.parse_rating(tracker.latest_message.text) is not None:
            return self._predict(domain, RATE_ACTION)
        if intent in RULE_HANDLED or intent in config.fallback_intents:
            # the project's rules send these to action_handoff / action_fallback, which route the same way
            return self._predict(domain, None)
        decision = self.decide(tracker, config, events)
        log_decision(tracker.sender_id, decision, "policy")
        if decision.hands_over:
            # mid-form, the loop's own prediction is "no user": match it so anger outranks the form
            in_form = bool(decision.record.get("in_form"))
            return self._predict(domain, HANDOFF_ACTION, no_user=in_form, route=decision.record)
        if decision.route == "clarify":
            return self._predict(domain, CLARIFY_ACTION, route=decision.record)
        return self._predict(domain, None)

    @staticmethod
    def decide(tracker: DialogueStateTracker, config: RoutingConfig, events: List[Dict[str, Any]]) -> RouteDecision:
        slots = {name: tracker.get_slot(name) for name in ("frustration", "sentiment", "kb_source", "kb_confidence")
                 if name in tracker.slots}
        signals = TurnSignals.from_parse(
            tracker.latest_message.parse_data,
            slots,
            unclear_before=turns.unclear_before(events, config),
            in_form=bool(tracker.active_loop_name),
        )
        return decide(signals, config)
