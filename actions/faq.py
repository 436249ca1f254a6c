"""FAQ answers from the knowledge base (knowledge/), with source and confidence for routing.

`action_answer_faq` searches the FAQ store and the product graph with the customer's own words.
The surer of the two answers when it may be given — the FAQ's calibrated "no answer" decision
(knowledge/calibrator.py), the graph's confidence against `ANSWER_THRESHOLD` — (the message metadata names the
entry it came from, and the slots `kb_source`/`kb_confidence` carry it to routing). When neither
does, the case library is asked: a past case close enough answers with its resolution (source
"case", `ref` the case id). Otherwise the intent's written `utter_faq_<intent>` response answers
as before; with none of these, the customer is told we found nothing and routing decides. A
knowledge store that is down never raises into Rasa: the written response (or a polite apology)
answers and `kb_source` stays empty.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.cases import utter_case
from actions.common import language_of, latest_intent
from actions.graph import graph_answer
from actions.kb import LOOKUP_TIMEOUT, kb_slots, lookup
from knowledge.answer import Answer
from knowledge.errors import KefuError
from knowledge.service import ANSWER_THRESHOLD

log = logging.getLogger(__name__)

# Intents that may interrupt a form and are answered by a fixed small-talk response.
SMALL_TALK = {"chitchat": "utter_chitchat", "bot_challenge": "utter_iamabot"}


def response_for(intent: Optional[str], responses: Dict[str, Any]) -> Optional[str]:
    """The written response that answers `intent`, or None when the domain has none."""
    if not intent:
        return None
    name = SMALL_TALK.get(intent, f"utter_faq_{intent}")
    return name if name in responses else None


async def graph_lookup(tracker: Tracker, text: str) -> Optional[Answer]:
    """The product graph's answer to the same question, or None (a graph that is down is no answer)."""
    product = tracker.get_slot("product")
    hint = product if isinstance(product, str) else None
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(graph_answer, text, language_of(tracker), hint), LOOKUP_TIMEOUT
        )
    except (KefuError, asyncio.TimeoutError) as exc:
        log.warning("graph look-up degraded: %s", exc)
    except Exception:  # never a failed action because of the graph
        log.exception("graph look-up failed unexpectedly")
    return None


def confident(*answers: Optional[Answer]) -> Optional[Answer]:
    """The surest of `answers` that may be given, else None. An FAQ answer carries the calibrated
    "no answer" decision (`answerable`); other sources clear ANSWER_THRESHOLD on their confidence."""
    found = [a for a in answers if a is not None and a.clears(ANSWER_THRESHOLD)]
    return max(found, key=lambda a: a.confidence, default=None)


class ActionAnswerFaq(Action):
    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        intent = latest_intent(tracker)
        responses = domain.get("responses", {})
        if intent in SMALL_TALK:
            dispatcher.utter_message(response=response_for(intent, responses) or "utter_ask_rephrase")
            return []
        written = response_for(intent, responses)
        text = tracker.latest_message.get("text") or ""
        if not text.strip():
            return self._unanswered(dispatcher, written, True, 0.0)
        language = language_of(tracker)
        # "白金卡年费多少" is a fact in the product graph, not an FAQ entry: ask both at once.
        (answers, ok), graph = await asyncio.gather(lookup("faq", text, language), graph_lookup(tracker, text))
        faq = answers[0] if answers else None
        best = confident(faq, graph)
        if best is not None:
            dispatcher.utter_message(text=best.text, source=best.source, ref=best.ref, confidence=best.confidence)
            return kb_slots(best.source, best.confidence)
        # Neither knows: a past case resolved like this one may ("my parcel says delivered but never came").
        cases, _ = await lookup("case", text, language)
        case = confident(cases[0] if cases else None)
        if case is not None:
            utter_case(dispatcher, case, language)
            return kb_slots(case.source, case.confidence)
        near = max((a.confidence for a in (faq, graph, *cases[:1]) if a is not None), default=0.0)
        return self._unanswered(dispatcher, written, ok, near)

    @staticmethod
    def _unanswered(dispatcher: CollectingDispatcher, written: Optional[str], store_ok: bool,
                    near: float) -> List[Dict[str, Any]]:
        """No knowledge answer: the written response, else "nothing found" or "unavailable".

        `kb_source` stays empty (nothing answered from the knowledge base); `kb_confidence` keeps
        how close the best candidate came, for routing and the analytics.
        """
        if written:
            dispatcher.utter_message(response=written)
        elif not store_ok:
            dispatcher.utter_message(response="utter_kb_unavailable")
        else:
            dispatcher.utter_message(response="utter_kb_no_answer")
        return kb_slots(None, near)
