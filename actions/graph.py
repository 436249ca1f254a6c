"""Product questions answered from the knowledge graph ("白金卡年费多少", "开户需要什么材料").

Thin: `knowledge.graph.qa.GraphQA` does the work. The answer names its source and carries a
confidence in the `kb_source` / `kb_confidence` slots for routing; nothing found → say so and
leave the decision to routing; graph store down → a polite degraded answer, never an exception.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import language_of
from actions.kb import kb_slots
from actions.services import services
from knowledge.answer import Answer
from knowledge.errors import BadInput, KefuError

log = logging.getLogger(__name__)

# Graph look-ups run in a worker thread; a hung store must not hold the action server's loop.
LOOKUP_TIMEOUT = 5.0


def graph_answer(text: str, language: str, product: Optional[str] = None) -> Optional[Answer]:
    """The graph's answer or None; StoreUnavailable and other KefuErrors propagate (callers degrade).

    Other actions (e.g. the FAQ action) may call this to compare confidences across sources.
    """
    try:
        return services().graph_qa().answer(text, language, product_hint=product)
    except BadInput:
        return None  # hostile or oversized question text: nothing to answer from the graph


class ActionAnswerGraph(Action):
    def name(self) -> str:
        return "action_answer_graph"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        lang = language_of(tracker)
        text = tracker.latest_message.get("text") or ""
        product = tracker.get_slot("product")
        hint = product if isinstance(product, str) else None
        try:
            answer = await asyncio.wait_for(asyncio.to_thread(graph_answer, text, lang, hint), LOOKUP_TIMEOUT)
        except (KefuError, asyncio.TimeoutError) as exc:
            log.warning("graph store unavailable, degraded answer: %s", exc)
            dispatcher.utter_message(response="utter_kb_graph_unavailable")
            return kb_slots("graph", 0.0)
        except Exception:  # an unexpected driver error must still not reach Rasa as a failed action
            log.exception("graph look-up failed unexpectedly")
            dispatcher.utter_message(response="utter_kb_graph_unavailable")
            return kb_slots("graph", 0.0)
        if answer is None:
            dispatcher.utter_message(response="utter_kb_graph_no_answer")
            return kb_slots("graph", 0.0)
        dispatcher.utter_message(text=answer.text, source=answer.source, ref=answer.ref, confidence=answer.confidence)
        return kb_slots("graph", answer.confidence)
