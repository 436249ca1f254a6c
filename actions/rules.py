"""Business-rule answers: "can I still return this order?" decided by data/knowledge/rules.

Facts come from the order system (`knowledge.orders.OrderBook`: status, delivery date), the
graph (the item's shop category, best effort) and the message (opened? a quality problem?).
The rule book reloads edited files by itself; the answer says which condition decided.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import language_of
from actions.kb import kb_slots
from actions.services import services
from knowledge.errors import KefuError
from knowledge.orders import Order, find_order_id
from knowledge.rules import Decision

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 5.0
STATUSES = ("processing", "shipped", "delivered", "cancelled")
UNOPENED = re.compile(
    r"未拆|没拆|没开封|未开封|没打开|没用过|全新|unopened|not opened|sealed|still in the box|unused", re.I
)
OPENED = re.compile(r"拆封|拆开|拆了|打开了|开封|用过|穿过|opened|used it|wore|worn", re.I)
QUALITY = re.compile(
    r"质量|坏了|坏的|破了|破损|漏|不工作|没声音|不亮|故障|"
    r"defect|broken|faulty|damaged|leak|not working|doesn'?t work|stopped working",
    re.I,
)

def message_facts(text: str) -> dict[str, Any]:
    """What the customer's own words say about the item (unsaid → unknown, not false)."""
    facts: dict[str, Any] = {}
    if UNOPENED.search(text):
        facts["opened"] = False
    elif OPENED.search(text):
        facts["opened"] = True
    if QUALITY.search(text):
        facts["quality_issue"] = True
    return facts


def item_category(order: Order) -> Optional[str]:
    """The order's shop category from the graph, e.g. "clothing"; None if unknown or the graph is down."""
    try:
        qa = services().graph_qa()
        for name in (order.items.get("zh"), order.items.get("en")):
            found = qa.shop_category(name or "")
            if found:
                return found.removeprefix("cat_")
    except KefuError as exc:
        log.warning("no category from the graph for order %s: %s", order.id, exc)
    return None


def return_facts(order: Order, today: dt.date, text: str, category: Optional[str]) -> dict[str, Any]:
    """The facts of `return_eligibility` for one order and message."""
    facts: dict[str, Any] = {"status": order.status if order.status in STATUSES else None}
    if order.delivered is not None:
        facts["days_since_delivery"] = max((today - order.delivered).days, 0)
    if category is not None:
        facts["category"] = category
    facts.update(message_facts(text))
    return facts


def decide_return(order: Order, text: str, language: str, today: Optional[dt.date] = None) -> Decision:
    """Blocking: graph look-up for the category, then the rule book (KefuError when rules are unusable)."""
    facts = return_facts(order, today or dt.date.today(), text, item_category(order))
    return services().rule_book().evaluate("return_eligibility", facts, language)


def decided_by(decision: Decision, lang: str) -> str:
    """The deciding condition with the customer's values, e.g. "（判定依据：签收天数（12）> 7）"."""
    return f"（判定依据：{decision.because}）" if lang == "zh" else f"(Decided by: {decision.because})"


def decision_message(decision: Decision, lang: str, steps: bool = True) -> str:
    """The decision, its next steps (unless `steps` is False) and the condition that decided it."""
    text = decision.text
    if steps and decision.steps:
        text += "\n" + "\n".join(f"{i}. {step}" for i, step in enumerate(decision.steps, 1))
    return f"{text}\n{decided_by(decision, lang)}"


async def decide_return_safely(order: Order, text: str, lang: str) -> Optional[Decision]:
    """`decide_return` off the event loop; None (and one log line) when the rules cannot answer."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(decide_return, order, text, lang), LOOKUP_TIMEOUT)
    except (KefuError, asyncio.TimeoutError) as exc:
        log.error("return rules unavailable: %s", exc)
    except Exception:  # never a failed action towards Rasa
        log.exception("return rules failed unexpectedly")
    return None


class ActionCheckReturnEligibility(Action):
    """Tell the customer whether an order can still be returned, why, and how."""

    def name(self) -> str:
        return "action_check_return_eligibility"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        lang = language_of(tracker)
        text = tracker.latest_message.get("text") or ""
        order_id = find_order_id(text) or find_order_id(str(tracker.get_slot("order_id") or ""))
        if order_id is None:
            dispatcher.utter_message(response="utter_ask_order_id")
            return kb_slots("rule", 0.0)
        try:  # only the customer's own order (the phone it was placed with): ids are guessable
            order = services().order_book().for_customer(order_id, tracker.get_slot("phone"), tracker.sender_id)
        except KefuError as exc:
            log.error("order book unreadable: %s", exc)
            dispatcher.utter_message(response="utter_kb_rule_unavailable")
            return kb_slots("rule", 0.0)
        if order is None:
            dispatcher.utter_message(response="utter_kb_rule_unknown_order", order_id=order_id)
            return kb_slots("rule", 0.0)
        decision = await decide_return_safely(order, text, lang)
        if decision is None:
            dispatcher.utter_message(response="utter_kb_rule_unavailable")
            return kb_slots("rule", 0.0)
        dispatcher.utter_message(text=decision_message(decision, lang))
        return kb_slots("rule", 0.5 if decision.rule == "default" else 0.95)
