"""What the knowledge actions share: store look-ups off the event loop, and the routing slots.

`kb_source` / `kb_confidence` carry the answer's source and confidence to the routing policy
(confidence rounded to 4 decimals; graph and rule confidences are 2-decimal constants).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional

from rasa_sdk.events import SlotSet

from actions.services import services
from knowledge.answer import Answer
from knowledge.errors import KefuError

log = logging.getLogger(__name__)

# Knowledge look-ups run in a worker thread; a slow store must not hold the action server's loop.
LOOKUP_TIMEOUT = 8.0


def kb_slots(source: Optional[str], confidence: float) -> List[Dict[str, Any]]:
    """The routing slots for an answer from `source` (None: nothing answered) with `confidence`."""
    return [SlotSet("kb_source", source), SlotSet("kb_confidence", round(float(confidence), 4))]


async def lookup(kind: str, text: str, language: str, limit: int = 3) -> tuple[list[Answer], bool]:
    """FAQ (`kind` "faq") or case-library answers as (answers, store_ok): never raises; a failing
    store gives ([], False) and one log line."""
    service = services().knowledge_service()
    fn = service.faq_answers if kind == "faq" else service.similar_cases
    try:
        answers = await asyncio.wait_for(asyncio.to_thread(fn, text, language, limit), LOOKUP_TIMEOUT)
        return answers, True
    except (KefuError, asyncio.TimeoutError) as exc:
        log.warning("%s look-up degraded: %s", kind, exc)
        return [], False
    except Exception:  # an unexpected driver error must still not reach Rasa as a failed action
        log.exception("%s look-up failed unexpectedly", kind)
        return [], False
