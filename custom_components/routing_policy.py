"""RoutingPolicy: the smart-routing decision (kefu/routing) as a Rasa dialogue policy.

On every fresh user turn it asks `kefu.routing.decision.decide` who should answer. When the
answer is the bot it abstains, so rules, memoization and TED run the conversation as
trained; otherwise it predicts, with confidence 1.0 and a priority above RulePolicy's:

- `action_handoff` for specialist / human / senior / callback routes (the action writes the
  ticket and pauses the bot);
- `action_fallback` for a clarifying question (and for the second unclear turn);
- `action_rate` when the customer answers the rating question with 1-5 after a handoff;
- `action_listen` right after any of those actions.

An angry customer in the middle of a form is taken out of it: that prediction is marked
"no user" like the form's own, so it outranks the loop (action_handoff ends the loop).
Routing thresholds live in the designers' YAML (re-read when it changes), not in the model.

The decision is made once: a winning prediction carries `SlotSet("routing", record)` as an
optional event (Rasa applies it only when this policy's prediction wins), and the actions read
the record from that slot instead of deciding again. The slot is unfeaturized, so rules,
memoization and TED never see it. Training checks the routing file's intents against the domain.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME, DEFAULT_INTENTS
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from kefu.config import load_settings
from kefu.errors import ConfigError
from kefu.routing import turns
from kefu.routing.coverage import check_intents
from kefu.routing.decision import ROUTING_SLOT, RouteDecision, log_decision
from kefu.routing.features import TurnContext
from kefu.routing.router import route_turn
from kefu.routing.settings import RoutingConfig, load_routing

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
        return load_settings().routing_file

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """The routing file's content: an edit re-runs `train`, so its intents are checked again."""
        try:
            return hashlib.sha256(cls._routing_path(config.get("routing_file")).read_bytes()).hexdigest()
        except (OSError, ConfigError):
            return None  # __init__ reports the missing or unreadable file by name

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Nothing to learn; fail the training early if the routing file, its intents or the actions are wrong."""
        config = load_routing(self.routing_file)
        missing = [name for name in OWN_ACTIONS if name not in domain.action_names_or_texts]
        if missing:
            raise ConfigError(f"RoutingPolicy needs the actions {missing} in the domain")
        uncovered = check_intents(config, domain.intents, str(self.routing_file), builtin=DEFAULT_INTENTS)
        if uncovered:
            log.warning("%s routes none of the domain's intents %s by group or list: confident turns go to the "
                        "bot, the specialist band to the general queue", self.routing_file, ", ".join(uncovered))
        return self._resource

    def _config(self) -> Optional[RoutingConfig]:
        try:
            return load_routing(self.routing_file)
        except ConfigError as exc:  # a designer's broken edit must not stop the conversation
            log.error("routing disabled until %s is fixed: %s", self.routing_file, exc)
            return None

    def _predict(
        self, domain: Domain, action: Optional[str], no_user: bool = False, decision: Optional[RouteDecision] = None
    ) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        if action is not None and action in domain.action_names_or_texts:
            probabilities[domain.index_for_action(action)] = 1.0
        record: Optional[Dict[str, Any]] = dict(decision.record) if decision is not None else None
        # applied only if this prediction wins: the actions then read the decision instead of redoing it
        has_slot = any(slot.name == ROUTING_SLOT for slot in domain.slots)
        handed: List[Event] = [SlotSet(ROUTING_SLOT, record)] if record and has_slot else []
        return self._prediction(probabilities, optional_events=handed, is_no_user_prediction=no_user,
                                diagnostic_data={"route": record} if record else None)

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
        if intent in RULE_HANDLED or (intent in config.fallback_intents and config.router != "tree"):
            # the project's rules send these to action_handoff / action_fallback, which route the same way;
            # with router: tree the tree owns "unclear" (it looks through the FallbackClassifier's label)
            return self._predict(domain, None)
        decision = self.decide(tracker, config, events, self.routing_file)
        log_decision(tracker.sender_id, decision, "policy")
        if decision.hands_over:
            # mid-form, the loop's own prediction is "no user": match it so anger outranks the form
            in_form = bool(decision.record.get("in_form"))
            return self._predict(domain, HANDOFF_ACTION, no_user=in_form, decision=decision)
        if decision.route == "clarify":
            return self._predict(domain, CLARIFY_ACTION, decision=decision)
        return self._predict(domain, None)

    @staticmethod
    def decide(tracker: DialogueStateTracker, config: RoutingConfig, events: List[Dict[str, Any]],
               routing_file: Optional[Path] = None) -> RouteDecision:
        """The decision for the latest user turn (`events`: the tracker's recent events as dicts).

        The cascade decides unless routing.yml selects an approved tree (kefu.routing.router).
        """
        slots = {name: tracker.get_slot(name) for name in turns.SIGNAL_SLOTS if name in tracker.slots}
        message = tracker.latest_message
        parse_data = message.parse_data if message else {}
        signals = turns.turn_signals(parse_data, slots, events, config, bool(tracker.active_loop_name))
        context = TurnContext(
            text=(message.text or "") if message else "",
            entities=len(message.entities or []) if message else 0,
            channel=message.input_channel if message else None,
            turn_count=max(1, turns.user_turns(events)),
        )
        return route_turn(signals, context, config, routing_file or load_settings().routing_file)
