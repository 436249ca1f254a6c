"""No acknowledged message may be lost when the tracker store is down.

Rasa 3.6's agent wraps every tracker store in `FailSafeTrackerStore`: when PostgreSQL cannot be
reached, `retrieve` answers None (the conversation starts over) and `save` writes to an in-memory
store that dies with the process — the customer gets a 200 and a reply, and the message is gone.
`install()` makes both raise `StoreUnavailable` instead, so the channel answers a clear
"please try again" (`TRY_AGAIN`) and nothing is acknowledged that was not stored. Installed when
the REST or socket.io channel module is imported, i.e. in every Rasa server Kefu starts.
"""

from __future__ import annotations

import logging
from typing import Optional

from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker

from kefu.errors import StoreUnavailable

log = logging.getLogger(__name__)

# what a customer reads when their message could not be stored (both languages: the widget may be either)
TRY_AGAIN = (
    "系统繁忙，您的消息未能送达，请稍后再试。"
    "The assistant is busy and your message was not received: please try again."
)


async def _retrieve(self: FailSafeTrackerStore, sender_id: str) -> Optional[DialogueStateTracker]:
    try:
        return await self._tracker_store.retrieve(sender_id)
    except Exception as exc:  # the store's driver errors vary (SQLAlchemy, Redis, ...)
        raise StoreUnavailable(f"tracker store unavailable: {type(exc).__name__}") from exc


async def _retrieve_full(self: FailSafeTrackerStore, sender_id: str) -> Optional[DialogueStateTracker]:
    try:
        return await self._tracker_store.retrieve_full_tracker(sender_id)
    except Exception as exc:
        raise StoreUnavailable(f"tracker store unavailable: {type(exc).__name__}") from exc


async def _save(self: FailSafeTrackerStore, tracker: DialogueStateTracker) -> None:
    try:
        await self._tracker_store.save(tracker)
    except Exception as exc:
        raise StoreUnavailable(f"tracker store unavailable: {type(exc).__name__}") from exc


def install() -> None:
    """Replace the silent in-memory fallback with an error (idempotent)."""
    FailSafeTrackerStore.retrieve = _retrieve  # type: ignore[method-assign]
    FailSafeTrackerStore.retrieve_full_tracker = _retrieve_full  # type: ignore[method-assign]
    FailSafeTrackerStore.save = _save  # type: ignore[method-assign]
