"""One explainable routing decision per user turn (no Rasa imports).

Inputs are plain values taken from the NLU parse and the slots (`TurnSignals`, validated at
the boundary by kefu.contracts); the output (`RouteDecision`) says who answers — the bot, a
skill group's specialists, the general queue, senior agents, a clarifying question, or a
callback — and carries a JSON record of every number it looked at so an auditor can replay
it. RoutingPolicy decides once per turn and hands the record to the actions in the `routing`
slot (`RouteDecision.from_record`); the actions decide themselves only when a rule, not the
policy, sent the turn to them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from kefu.contracts import (
    SENTIMENT_LABELS,
    IntentThresholds,
    OutOfScope,
    RankedIntent,
    RoutingRecord,
    Sentiment,
    TurnRef,
    read_parse,
    to_float,
)
from kefu.pii import mask_value
from kefu.routing.settings import GENERAL, SENIOR, RoutingConfig

audit_log = logging.getLogger("kefu.routing.audit")

ROUTES = ("bot", "specialist", "human", "senior", "clarify", "callback")
HUMAN_ROUTES = frozenset({"specialist", "human", "senior", "callback"})
EXPLICIT = {"ask_human": "explicit_request", "complain": "complaint"}
ANGRY_INTENTS = frozenset({"insult"})
ROUTING_SLOT = "routing"  # the domain slot RoutingPolicy fills with its record for the actions


@dataclass(frozen=True)
class TurnSignals:
    """What routing may look at for one user turn; missing pieces mean neutral / unknown."""

    intent: Optional[str]
    confidence: float = 0.0
    ranking: tuple[RankedIntent, ...] = ()
    sentiment: Optional[Sentiment] = None
    frustration: Optional[float] = None
    frustration_before: Optional[float] = None  # before this turn's sentiment (the tree's guard rail)
    kb_source: Optional[str] = None
    kb_confidence: Optional[float] = None
    unclear_before: int = 0  # unclear user turns in a row just before this one
    in_form: bool = False
    thresholds: Optional[IntentThresholds] = None  # the model's, for this intent (BertIntentClassifier)
    out_of_scope: Optional[OutOfScope] = None  # {score, threshold, flagged} from the classifier
    turn: Optional[TurnRef] = None  # the user message this is about (recorded, never decides)

    @classmethod
    def from_parse(
        cls,
        parse_data: Mapping[str, Any],
        slots: Mapping[str, Any],
        unclear_before: int = 0,
        in_form: bool = False,
        turn: Optional[TurnRef] = None,
    ) -> TurnSignals:
        """Build from Rasa's parse data (`latest_message`, validated by kefu.contracts) and the tracker's slots."""
        parse = read_parse(parse_data)
        sentiment = parse["sentiment"]
        if sentiment is None:
            label = slots.get("sentiment")
            sentiment = {"label": label} if label in SENTIMENT_LABELS else None
        kb_source = slots.get("kb_source")
        return cls(
            intent=parse["intent"]["name"],
            confidence=parse["intent"]["confidence"],
            ranking=tuple(parse["intent_ranking"]),
            sentiment=sentiment,
            frustration=to_float(slots.get("frustration")),
            frustration_before=to_float(slots.get("frustration_before")),
            kb_source=kb_source if isinstance(kb_source, str) else None,
            kb_confidence=to_float(slots.get("kb_confidence")),
            unclear_before=max(0, int(unclear_before)),
            in_form=bool(in_form),
            thresholds=parse["intent_thresholds"],
            out_of_scope=parse["out_of_scope"],
            turn=turn,
        )

    @property
    def flagged_out_of_scope(self) -> bool:
        return bool(self.out_of_scope and self.out_of_scope["flagged"])


@dataclass(frozen=True)
class RouteDecision:
    route: str  # bot | specialist | human | senior | clarify | callback
    queue: Optional[str]
    reason: str
    record: RoutingRecord = field(default_factory=dict)  # type: ignore[assignment]
    priority: int = 0

    @property
    def hands_over(self) -> bool:
        return self.route in HUMAN_ROUTES

    @classmethod
    def from_record(cls, value: Any, turn: Optional[TurnRef]) -> Optional[RouteDecision]:
        """The decision a routing record describes, if it is well-formed and about `turn`.

        The `routing` slot keeps its value across turns (and anyone with API access can set
        it): a record of another user message, or a malformed one, is None — decide again.
        """
        if turn is None or not isinstance(value, Mapping) or value.get("turn") != turn:
            return None
        route, queue, reason, priority = (value.get(k) for k in ("route", "queue", "reason", "priority"))
        if route not in ROUTES or not isinstance(reason, str) or not (queue is None or isinstance(queue, str)):
            return None
        if isinstance(priority, bool) or not isinstance(priority, int):
            return None
        return cls(route, queue, reason, dict(value), priority)  # type: ignore[arg-type]


def thresholds_for(signals: TurnSignals, config: RoutingConfig) -> tuple[float, float, str]:
    """(auto, specialist, where from) for this turn's intent.

    With precision targets in the YAML the model's thresholds (chosen at training time from
    out-of-fold predictions) apply; numbers in the YAML apply as written and are re-read live,
    and a numeric per-intent override always wins.
    """
    auto, specialist, source = config.auto_threshold, config.specialist_threshold, "yaml numbers"
    model = signals.thresholds
    if config.targets.uses_targets:
        if model and model.get("source") in ("targets", "intent"):
            auto, specialist, source = model["auto"], model["specialist"], f"model ({model['source']})"
        else:
            source = "yaml numbers (the model has no target thresholds: retrain)"
    override = config.targets.intents.get(signals.intent or "")
    if override is not None and override.auto_threshold is not None:
        auto, source = override.auto_threshold, f"intent_thresholds.{signals.intent}"
    if override is not None and override.specialist_threshold is not None:
        specialist, source = override.specialist_threshold, f"intent_thresholds.{signals.intent}"
    return auto, min(specialist, auto), source


def is_unclear(signals: TurnSignals, config: RoutingConfig) -> bool:
    """A turn the bot did not understand well enough: a fallback, out of scope, or below the specialist band."""
    intent = signals.intent
    if intent in config.fallback_intents or intent is None:
        return True
    if intent in EXPLICIT or intent in ANGRY_INTENTS:
        return False
    below = signals.confidence < thresholds_for(signals, config)[1]
    if intent in config.conversational_intents:  # small talk is often unusual, but must be recognised
        return below
    return signals.flagged_out_of_scope or below


def angry_because(signals: TurnSignals, config: RoutingConfig) -> Optional[str]:
    """Why the customer counts as angry (senior queue), or None."""
    if signals.intent in ANGRY_INTENTS:
        return f"intent {signals.intent}"
    if signals.frustration is not None and signals.frustration >= config.senior_frustration:
        return f"frustration {signals.frustration:.2f} >= {config.senior_frustration}"
    sentiment = signals.sentiment
    if sentiment is not None and sentiment["label"] == "negative":
        if sentiment.get("intensity") == "strong":
            return "strong negative sentiment"
        score = sentiment.get("score")
        limit = config.senior_sentiment_score
        if score is not None and limit is not None and score <= limit:
            return f"sentiment score {score:.2f} <= {limit}"
    return None


def _choose(signals: TurnSignals, config: RoutingConfig) -> tuple[str, Optional[str], str, str]:
    """(route, queue, reason, why) before business hours are applied."""
    intent, confidence = signals.intent, signals.confidence
    group = config.group_of(intent)
    level = config.level_for(group)
    unclear = is_unclear(signals, config)
    auto, specialist, _ = thresholds_for(signals, config)
    oos = signals.flagged_out_of_scope and intent not in config.conversational_intents
    angry = angry_because(signals, config)
    if angry:
        return "senior", SENIOR, "angry", angry
    if intent in EXPLICIT:
        return "human", GENERAL, EXPLICIT[intent], f"intent {intent}"
    if signals.in_form:
        return "bot", None, "in_form", "a form is collecting details"
    if unclear and signals.unclear_before >= 1:
        reason = "two_fallbacks" if intent in config.fallback_intents or intent is None else "low_confidence"
        reason = "out_of_scope" if oos or intent == "out_of_scope" else reason
        return "human", GENERAL, reason, f"{signals.unclear_before + 1} unclear turns in a row"
    if level == "assist":
        return ("specialist", group, "assist", "automation level assist: agents answer, the bot drafts") if group else (
            "human", GENERAL, "assist", "automation level assist: agents answer, the bot drafts")
    if intent in config.conversational_intents and confidence >= specialist:
        return "bot", None, "conversational", f"small talk ({intent})"
    if intent in config.fallback_intents or intent is None:
        reason = "out_of_scope" if intent == "out_of_scope" or oos else "low_confidence"
        return "clarify", None, reason, f"first unclear turn ({intent})"
    if oos and signals.out_of_scope:
        found = signals.out_of_scope
        return "clarify", None, "out_of_scope", f"out-of-scope score {found['score']} above {found['threshold']}"
    if confidence >= auto:
        if level == "semi-auto":
            kb_ok = (
                signals.kb_source in config.semi_auto_sources
                and (signals.kb_confidence or 0.0) >= auto
            )
            if intent not in config.faq_intents and not kb_ok:
                return "specialist", group or GENERAL, "specialist", "semi-auto answers only FAQ/graph questions"
        return "bot", None, "confident", f"confidence {confidence:.3f} >= auto {auto:.3f}"
    if confidence >= specialist and intent in config.self_service_intents:
        return "bot", None, "self_service", f"confidence {confidence:.3f}: {intent} starts a form that confirms details"
    if confidence >= specialist:
        why = f"confidence {confidence:.3f} in [{specialist:.3f}, {auto:.3f})"
        return ("specialist", group, "specialist", why) if group else ("human", GENERAL, "specialist", why)
    return "clarify", None, "low_confidence", f"confidence {confidence:.3f} < specialist {specialist:.3f}"


def decide(signals: TurnSignals, config: RoutingConfig, now: Optional[datetime] = None) -> RouteDecision:
    """The route for one user turn by the cascade; human routes outside business hours become callbacks."""
    return finish(signals, config, *_choose(signals, config), now=now)


def guard_rail(signals: TurnSignals, config: RoutingConfig) -> Optional[tuple[str, Optional[str], str, str]]:
    """The fixed rules in front of the learned tree, which no training can change: (route, queue, reason, why).

    An insult, or a customer already at the escalation level before this turn → senior; an explicit
    request for a person → general; a form collecting details goes on. A single turn's strong
    sentiment is left to the tree (as a feature): the sentiment model also calls calm, formal
    complaints strong, and those belong to the general queue, not to senior agents.
    """
    before = signals.frustration_before
    if signals.intent in ANGRY_INTENTS:
        return "senior", SENIOR, "angry", f"intent {signals.intent} (guard rail)"
    if before is not None and before >= config.senior_frustration:
        return "senior", SENIOR, "angry", f"frustration {before:.2f} before this turn (guard rail)"
    if signals.intent == "ask_human":
        return "human", GENERAL, "explicit_request", "explicit request for a person (guard rail)"
    if signals.in_form:
        return "bot", None, "in_form", "a form is collecting details (guard rail)"
    return None


def finish(signals: TurnSignals, config: RoutingConfig, route: str, queue: Optional[str], reason: str, why: str,
           now: Optional[datetime] = None, extra: Optional[Mapping[str, Any]] = None) -> RouteDecision:
    """The decision and its record for a chosen route; a human route to a closed queue becomes a callback."""
    now = now or datetime.now(timezone.utc)
    group = config.group_of(signals.intent)
    auto, specialist, source = thresholds_for(signals, config)
    record: RoutingRecord = {
        "route": route,
        "queue": queue,
        "reason": reason,
        "why": why,
        "priority": config.priority(reason),
        "intent": signals.intent,
        "confidence": round(signals.confidence, 4),
        "ranking": list(signals.ranking),
        "thresholds": {"auto": auto, "specialist": specialist, "source": source},
        "out_of_scope": dict(signals.out_of_scope) if signals.out_of_scope else None,
        "sentiment": dict(signals.sentiment) if signals.sentiment else None,
        "frustration": signals.frustration,
        "senior_thresholds": {"frustration": config.senior_frustration, "score": config.senior_sentiment_score},
        "group": group,
        "automation_level": config.level_for(group),
        "kb": {"source": signals.kb_source, "confidence": signals.kb_confidence},
        "unclear_before": signals.unclear_before,
        "in_form": signals.in_form,
        "config": config.digest,
        "at": now.isoformat(),
        "turn": signals.turn,
        "router": "cascade",
    }
    record.update(extra or {})  # type: ignore[typeddict-item]
    if route in HUMAN_ROUTES and queue:
        hours = config.staffing(queue).hours
        open_now = hours.is_open(now)
        record["hours"] = {"queue": queue, "open": open_now, "schedule": hours.describe(), "timezone": hours.timezone}
        if not open_now:
            record.update(route="callback", original_reason=reason, reason="callback", why=f"{queue} is closed")
            return RouteDecision("callback", queue, "callback", record, record["priority"])
    return RouteDecision(route, queue, reason, record, record["priority"])


def with_capacity(decision: RouteDecision, waiting: int, config: RoutingConfig) -> RouteDecision:
    """Turn a live handoff into a callback when the queue's waiting line is full."""
    if decision.route not in ("specialist", "human", "senior") or not decision.queue:
        return decision
    staffing = config.staffing(decision.queue)
    record: RoutingRecord = {**decision.record, "capacity": {"waiting": waiting, "max_waiting": staffing.max_waiting}}
    if staffing.has_room(waiting):
        return RouteDecision(decision.route, decision.queue, decision.reason, record, decision.priority)
    record.update(route="callback", original_reason=decision.reason, reason="callback",
                  why=f"{decision.queue} has {waiting} waiting (max {staffing.max_waiting})")
    return RouteDecision("callback", decision.queue, "callback", record, decision.priority)


def log_decision(conversation_id: str, decision: RouteDecision, where: str) -> None:
    """One JSON line per decision in the audit log (`kefu.routing.audit`).

    Every string in it is masked (kefu.pii): the record holds no message text, but a channel may use
    a phone number as the conversation id, and log files outlive the tracker store's retention.
    """
    if audit_log.isEnabledFor(logging.INFO):
        line = mask_value({"conversation": conversation_id, "by": where, **decision.record})
        audit_log.info("%s", json.dumps(line, ensure_ascii=False))
