"""The three forms: report a lost card, look up an order, request a return.

Validators accept values the way customers type them ("尾号是6217的", "my order is
dd2411050123") and ask again with a reason when a value is unusable. A return is decided by the
business rules (data/knowledge/rules/return_eligibility.yml, the same book as
`action_check_return_eligibility`), and the answer names the condition that decided it.

Order ids are guessable (shop prefix + date + sequence), so an order is shown only to the phone
number it was placed with: the order and return forms ask for it, and an unknown id and someone
else's order get the same "not found" answer (no oracle for which ids exist).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import language_of
from actions.rules import decide_return_safely, decided_by, decision_message
from actions.services import services
from kefu.pii import mask_phone
from knowledge.errors import KefuError
from knowledge.orders import Order, find_order_id
from knowledge.rules import Decision

CARD_LAST4 = re.compile(r"(?<!\d)(\d{4})(?!\d)")
CN_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")
MAX_REASON_CHARS = 300
# Rule outcomes (data/knowledge/rules/return_eligibility.yml) for which the form opens a return now.
OPENS_RETURN = frozenset({"eligible", "eligible_if_unused", "eligible_quality"})
log = logging.getLogger(__name__)

def parse_card_last4(value: Any) -> Optional[str]:
    matches = CARD_LAST4.findall(str(value or ""))
    return matches[-1] if len(set(matches)) == 1 or len(matches) == 1 else None


def parse_phone(value: Any) -> Optional[str]:
    """A mainland mobile (11 digits) or an international number (+ and 8-15 digits)."""
    text = str(value or "")
    mobile = CN_MOBILE.search(re.sub(r"[\s-]", "", text))
    if mobile:
        return mobile.group(1)
    digits = re.sub(r"\D", "", text)
    if 8 <= len(digits) <= 15 and ("+" in text or len(digits) >= 10):
        return ("+" if "+" in text else "") + digits
    return None


def reference(prefix: str, today: Optional[dt.date] = None) -> str:
    """A service reference like LC20261125-4F7Q2A: date + random, unguessable suffix."""
    day = (today or dt.date.today()).strftime("%Y%m%d")
    return f"{prefix}{day}-{secrets.token_hex(3).upper()}"


class ValidateLostCardForm(FormValidationAction):
    def name(self) -> str:
        return "validate_lost_card_form"

    def validate_card_last4(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        last4 = parse_card_last4(slot_value)
        if last4 is None:
            dispatcher.utter_message(response="utter_invalid_card_last4")
        return {"card_last4": last4}

    def validate_phone(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        return _validated_phone(slot_value, dispatcher)


def _validated_order_id(slot_value: Any, dispatcher: CollectingDispatcher) -> Dict[str, Any]:
    """Only the form of the number: whether it exists is told after the phone, with the same answer."""
    order_id = find_order_id(str(slot_value or ""))
    if order_id is None:
        dispatcher.utter_message(response="utter_invalid_order_id")
    return {"order_id": order_id}


def _validated_phone(slot_value: Any, dispatcher: CollectingDispatcher) -> Dict[str, Any]:
    phone = parse_phone(slot_value)
    if phone is None:
        dispatcher.utter_message(response="utter_invalid_phone")
    return {"phone": phone}


def customers_order(order_id: str, tracker: Tracker) -> Optional[Order]:
    """The order if the conversation's phone is the one it was placed with, else None (as if unknown)."""
    return services().order_book().for_customer(order_id, tracker.get_slot("phone"), tracker.sender_id)


class ValidateOrderLookupForm(FormValidationAction):
    def name(self) -> str:
        return "validate_order_lookup_form"

    def validate_order_id(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        return _validated_order_id(slot_value, dispatcher)

    def validate_phone(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        return _validated_phone(slot_value, dispatcher)


class ValidateReturnForm(FormValidationAction):
    def name(self) -> str:
        return "validate_return_form"

    def validate_order_id(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        return _validated_order_id(slot_value, dispatcher)

    def validate_phone(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        return _validated_phone(slot_value, dispatcher)

    def validate_return_reason(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        reason = str(slot_value or "").strip()[:MAX_REASON_CHARS]
        return {"return_reason": reason or None}

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[str, Any]]:
        """At the reason step a stop-like answer fills the reason ("不想要了" is why); only an
        explicit cancel of the return ("不退了", "cancel") ends the form, before any slot is set."""
        text = (tracker.latest_message or {}).get("text") or ""
        if tracker.get_slot("requested_slot") == "return_reason" and cancels_return(text):
            dispatcher.utter_message(response="utter_form_stopped")
            return [SlotSet("return_reason", None), SlotSet("return_cancelled", True),
                    SlotSet("return_reason_step", False), SlotSet("requested_slot", None), ActiveLoop(None)]
        events = await super().run(dispatcher, tracker, domain)
        # the form asks next for the first empty required slot: tell the rules when that is the reason
        filled = {**tracker.slots, **{e["name"]: e.get("value") for e in events if e.get("event") == "slot"}}
        following = next((name for name in self.domain_slots(domain) if filled.get(name) in (None, "")), None)
        return [*events, SlotSet("return_reason_step", following == "return_reason")]


_CANCEL_WORDS = re.compile(r"不退|取消退|别退|不用退|不办了|\b(?:cancel|stop|quit|never ?mind|forget (?:it|about it)"
                           r"|(?:do not|don't|dont) (?:want to )?return)\b", re.IGNORECASE)
_CANCEL_ALONE = {"算了", "取消", "退出", "停", "停止", "不用了", "no", "nope", "exit"}


def cancels_return(text: str) -> bool:
    """An explicit "do not go on with this return"; a reason such as "不想要了" is not one."""
    bare = re.sub(r"[\s\W_]+", "", text.lower())
    return bool(_CANCEL_WORDS.search(text)) or bare in _CANCEL_ALONE


class ActionSubmitLostCard(Action):
    def name(self) -> str:
        return "action_submit_lost_card"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        phone = tracker.get_slot("phone") or ""
        dispatcher.utter_message(
            response="utter_lost_card_done",
            card_last4=tracker.get_slot("card_last4"),
            masked_phone=mask_phone(phone),
            reference=reference("LC"),
        )
        return [SlotSet("card_last4", None), SlotSet("phone", None)]


class ActionLookupOrder(Action):
    def name(self) -> str:
        return "action_lookup_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        order_id = tracker.get_slot("order_id") or ""
        order = customers_order(order_id, tracker)
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found", order_id=order_id)
        else:
            lang = language_of(tracker)
            dispatcher.utter_message(
                response="utter_order_status",
                order_id=order.id,
                items=order.items.get(lang, ""),
                status_text=order.describe(lang),
            )
        return [SlotSet("order_id", None), SlotSet("phone", None)]


def return_text(tracker: Tracker) -> str:
    """The customer's own words about the item: the form's reason plus the latest message."""
    parts = [str(tracker.get_slot("return_reason") or ""), str(tracker.latest_message.get("text") or "")]
    return " ".join(dict.fromkeys(p.strip() for p in parts if p.strip()))[: 2 * MAX_REASON_CHARS]


def refusal(decision: Decision, lang: str) -> str:
    """The `{why}` of utter_return_not_eligible: the rule's answer and the condition that decided it."""
    text = decision.text.rstrip("。.！! ")
    if lang == "en" and text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]  # it follows "can't be returned online: "
    return f"{text}{decided_by(decision, 'zh')}" if lang == "zh" else f"{text} {decided_by(decision, 'en')}"


class ActionSubmitReturn(Action):
    """Decide the return with the business rules (data/knowledge/rules) and say which condition decided."""

    def name(self) -> str:
        return "action_submit_return"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        done = [SlotSet("order_id", None), SlotSet("phone", None), SlotSet("return_reason", None),
                SlotSet("return_reason_step", None)]
        if tracker.get_slot("return_cancelled"):  # the customer cancelled at the reason step
            return [*done, SlotSet("return_cancelled", None)]
        order_id = str(tracker.get_slot("order_id") or "")
        lang = language_of(tracker)
        try:
            order = customers_order(order_id, tracker)
        except KefuError as exc:
            log.error("order book unreadable: %s", exc)
            dispatcher.utter_message(response="utter_kb_rule_unavailable")
            return done
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found", order_id=order_id)
            return done
        decision = await decide_return_safely(order, return_text(tracker), lang)
        if decision is None:  # rules unreadable or too slow: no return is opened on a guess
            dispatcher.utter_message(response="utter_kb_rule_unavailable")
        elif decision.outcome in OPENS_RETURN:
            dispatcher.utter_message(text=decision_message(decision, lang, steps=False))
            dispatcher.utter_message(response="utter_return_created", order_id=order.id, reference=reference("RT"))
        elif decision.steps:  # e.g. fresh food refunded on photos: a different after-sales path, with steps
            dispatcher.utter_message(text=decision_message(decision, lang))
        else:
            why = refusal(decision, lang)
            dispatcher.utter_message(response="utter_return_not_eligible", order_id=order.id, why=why)
        return done
