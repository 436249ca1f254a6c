"""Similar past cases: how a problem like the customer's was resolved before.

`action_similar_cases` searches the case library (knowledge/cases) with the customer's words and
shares the best resolution when it is close enough, framed as what was done in a similar case
(not a promise); `action_answer_faq` falls back to the same answer when neither the FAQ nor
the graph knows. It sets `kb_source`/`kb_confidence` like every knowledge action so routing can
decide, and a store that is down gives a polite answer instead of an exception.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import language_of
from actions.kb import kb_slots, lookup
from knowledge.answer import Answer
from knowledge.service import ANSWER_THRESHOLD

INTRO = {
    "zh": "我们之前处理过类似的情况：{resolution}如果您的情况不同，我可以为您转人工。",
    "en": "We handled a similar case before: {resolution} If yours is different, I can pass you to a colleague.",
}


def utter_case(dispatcher: CollectingDispatcher, case: Answer, language: str) -> None:
    """A case's resolution framed as what was done before (not a promise), naming the case in `ref`."""
    dispatcher.utter_message(
        text=INTRO["en" if language == "en" else "zh"].format(resolution=case.text), source=case.source,
        ref=case.ref, confidence=case.confidence,
    )


class ActionSimilarCases(Action):
    def name(self) -> str:
        return "action_similar_cases"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        language = language_of(tracker)
        text = tracker.latest_message.get("text") or ""
        answers, ok = await lookup("case", text, language) if text.strip() else ([], True)
        best = answers[0] if answers else None
        if best is not None and best.confidence >= ANSWER_THRESHOLD:
            utter_case(dispatcher, best, language)
            return kb_slots(best.source, best.confidence)
        dispatcher.utter_message(response="utter_kb_no_answer" if ok else "utter_kb_unavailable")
        return kb_slots(best.source if best else None, best.confidence if best else 0.0)
