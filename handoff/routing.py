"""One explainable routing decision per user turn (no Rasa imports).

Inputs are plain values taken from the NLU parse and the slots (`TurnSignals`); the output
(`RouteDecision`) says who answers — the bot, a skill group's specialists, the general
queue, senior agents, a clarifying question, or a callback — and carries a JSON record
of every number it looked at so an auditor can replay it. The Rasa policy and the
handoff action both call `decide`, so they never disagree.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from handoff.routing_config import GENERAL, SENIOR, RoutingConfig

audit_log = logging.getLogger("kefu.routing.audit")

ROUTES = ("bot", "specialist", "human", "senior", "clarify", "callback")
HUMAN_ROUTES = frozenset({"specialist", "human", "senior", "callback"})
EXPLICIT = {"ask_human": "explicit_request", "complain": "complaint"}
ANGRY_INTENTS = frozenset({"insult"})


def to_float(value: Any) -> Optional[float]:
    """Slot and parse values arrive untyped: keep finite numbers, drop the rest."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def clean_sentiment(value: Any) -> Optional[dict[str, Any]]:
    """The sentiment interface's fields only, JSON-safe (a NaN score or odd types are dropped)."""
    if not isinstance(value, Mapping):
        return None
    label = value.get("label")
    if label not in ("positive", "neutral", "negative"):
        return None
    intensity = value.get("intensity")
    signals = value.get("signals")
    return {
        "label": label,
        "score": to_float(value.get("score")),
        "intensity": intensity if intensity in ("none", "mild", "strong") else None,
        "signals": [str(s)[:80] for s in signals[:10]] if isinstance(signals, list) else [],
    }


def clean_thresholds(value: Any) -> Optional[dict[str, Any]]:
    """The classifier's thresholds for the predicted intent, when they are well-formed."""
    if not isinstance(value, Mapping):
        return None
    auto, specialist = to_float(value.get("auto")), to_float(value.get("specialist"))
    if auto is None or specialist is None or not 0.0 <= specialist <= auto <= 1.0:
        return None
    source = value.get("source")
    return {"auto": auto, "specialist": specialist, "source": source if isinstance(source, str) else None}


def clean_out_of_scope(value: Any) -> Optional[dict[str, Any]]:
    if not isinstance(value, Mapping) or not isinstance(value.get("flagged"), bool):
        return None
    return {"score": to_float(value.get("score")), "threshold": to_float(value.get("threshold")),
            "flagged": value["flagged"]}


@dataclass(frozen=True)
class TurnSignals:
    """What routing may look at for one user turn; missing pieces mean neutral / unknown."""

    intent: Optional[str]
    confidence: float = 0.0
    ranking: tuple = ()
    sentiment: Optional[Mapping[str, Any]] = None
    frustration: Optional[float] = None
    kb_source: Optional[str] = None
    kb_confidence: Optional[float] = None
    unclear_before: int = 0  # unclear user turns in a row just before this one
    in_form: bool = False
    thresholds: Optional[Mapping[str, Any]] = None  # the model's, for this intent (BertIntentClassifier)
    out_of_scope: Optional[Mapping[str, Any]] = None  # {score, threshold, flagged} from the classifier

    @classmethod
    def from_parse(
        cls,
        parse_data: Mapping[str, Any],
        slots: Mapping[str, Any],
        unclear_before: int = 0,
        in_form: bool = False,
    ) -> TurnSignals:
        """Build from Rasa's parse data (`latest_message`) and the tracker's slots."""
        intent = parse_data.get("intent") or {}
        ranking = tuple(
            {"name": str(r.get("name")), "confidence": round(to_float(r.get("confidence")) or 0.0, 4)}
            for r in (parse_data.get("intent_ranking") or [])[:5]
            if isinstance(r, Mapping)
        )
        sentiment = clean_sentiment(parse_data.get("sentiment"))
        if sentiment is None:
            label = slots.get("sentiment")
            sentiment = {"label": label} if label in ("positive", "neutral", "negative") else None
        return cls(
            intent=intent.get("name") if isinstance(intent, Mapping) else None,
            confidence=to_float(intent.get("confidence") if isinstance(intent, Mapping) else None) or 0.0,
            ranking=ranking,
            sentiment=dict(sentiment) if sentiment else None,
            frustration=to_float(slots.get("frustration")),
            kb_source=slots.get("kb_source") if isinstance(slots.get("kb_source"), str) else None,
            kb_confidence=to_float(slots.get("kb_confidence")),
            unclear_before=max(0, int(unclear_before)),
            in_form=bool(in_form),
            thresholds=clean_thresholds(parse_data.get("intent_thresholds")),
            out_of_scope=clean_out_of_scope(parse_data.get("out_of_scope")),
        )

    @property
    def flagged_out_of_scope(self) -> bool:
        return bool(self.out_of_scope and self.out_of_scope.get("flagged"))


@dataclass(frozen=True)
class RouteDecision:
    route: str  # bot | specialist | human | senior | clarify | callback
    queue: Optional[str]
    reason: str
    record: dict = field(default_factory=dict)
    priority: int = 0

    @property
    def hands_over(self) -> bool:
        return self.route in HUMAN_ROUTES


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
    sentiment = signals.sentiment or {}
    if sentiment.get("label") == "negative":
        if sentiment.get("intensity") == "strong":
            return "strong negative sentiment"
        score = to_float(sentiment.get("score"))
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
    if oos:
        score = (signals.out_of_scope or {}).get("score")
        return "clarify", None, "out_of_scope", f"out-of-scope score {score} above {signals.out_of_scope['threshold']}"
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
    """The route for one user turn; human routes outside business hours become callbacks."""
    now = now or datetime.now(timezone.utc)
    route, queue, reason, why = _choose(signals, config)
    group = config.group_of(signals.intent)
    record: dict[str, Any] = {
        "route": route,
        "queue": queue,
        "reason": reason,
        "why": why,
        "intent": signals.intent,
        "confidence": round(signals.confidence, 4),
        "ranking": list(signals.ranking),
        "thresholds": dict(zip(("auto", "specialist", "source"), thresholds_for(signals, config), strict=True)),
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
    }
    if route in HUMAN_ROUTES and queue:
        hours = config.staffing(queue).hours
        open_now = hours.is_open(now)
        record["hours"] = {"queue": queue, "open": open_now, "schedule": hours.describe(), "timezone": hours.timezone}
        if not open_now:
            record.update(route="callback", original_reason=reason, reason="callback", why=f"{queue} is closed")
            return RouteDecision("callback", queue, "callback", record, config.priority(reason))
    return RouteDecision(route, queue, reason, record, config.priority(reason))


def with_capacity(decision: RouteDecision, waiting: int, config: RoutingConfig) -> RouteDecision:
    """Turn a live handoff into a callback when the queue's waiting line is full."""
    if decision.route not in ("specialist", "human", "senior") or not decision.queue:
        return decision
    staffing = config.staffing(decision.queue)
    record = {**decision.record, "capacity": {"waiting": waiting, "max_waiting": staffing.max_waiting}}
    if staffing.has_room(waiting):
        return RouteDecision(decision.route, decision.queue, decision.reason, record, decision.priority)
    record.update(route="callback", original_reason=decision.reason, reason="callback",
                  why=f"{decision.queue} has {waiting} waiting (max {staffing.max_waiting})")
    return RouteDecision("callback", decision.queue, "callback", record, decision.priority)


def log_decision(conversation_id: str, decision: RouteDecision, where: str) -> None:
    """One JSON line per decision in the audit log (`kefu.routing.audit`)."""
    if audit_log.isEnabledFor(logging.INFO):
        audit_log.info(
            "%s", json.dumps({"conversation": conversation_id, "by": where, **decision.record}, ensure_ascii=False)
        )
