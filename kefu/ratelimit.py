"""Rate limits on the customer channels: per client IP, per sender and per new sender an IP creates.

Without them about 30 anonymous REST calls from new senders saying "转人工" filled the general queue,
and every flood also grew trackers, burnt encoder CPU and spammed the live-chat adapters. The limits
are the `limits` library's fixed windows (one counter per key and window, so memory stays bounded:
keys expire with their window), kept in Redis when KEFU_REDIS_URL is set (shared by every Rasa
process) and in process memory otherwise.

A sender is "new" when the limiter has not seen it within SEEN_SECONDS: one key lookup on the hot
path, no tracker-store query. A sender idle longer than that counts as new once more. In memory the
seen senders are a capped insertion-ordered dict, not limits' MemoryStorage: that one rescans all its
keys 10 ms after every hit (44 ms for 70,000 keys), fine for the short-lived counters, not for an hour
of senders.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from kefu.config import Settings

log = logging.getLogger(__name__)

SEEN_SECONDS = 3600
SEEN_PREFIX = "LIMITER/kefu-seen/"  # limits' own key prefix, so storage.reset() clears these too
SEEN_MAX = 200_000  # in memory: the oldest are forgotten first (~30 MB at most)


class LocalSeen:
    """Senders seen in the last `ttl` seconds, oldest first, at most `cap` of them."""

    def __init__(self, ttl: float = SEEN_SECONDS, cap: int = SEEN_MAX) -> None:
        self.ttl, self.cap = ttl, cap
        self.entries: OrderedDict[str, float] = OrderedDict()

    def __contains__(self, sender: str) -> bool:
        at = self.entries.get(sender)
        return at is not None and time.monotonic() - at < self.ttl

    def add(self, sender: str) -> None:
        now = time.monotonic()
        self.entries[sender] = now
        self.entries.move_to_end(sender)
        while len(self.entries) > self.cap or now - next(iter(self.entries.values())) >= self.ttl:
            self.entries.popitem(last=False)


@dataclass(frozen=True)
class Refusal:
    """Why a message was refused and when to try again (seconds)."""

    reason: str
    retry_after: int


class RateLimits:
    """The channel policy: check(ip, sender) before a message reaches NLU."""

    def __init__(
        self,
        per_ip: Optional[str],
        per_sender: Optional[str],
        new_senders: Optional[str],
        storage_url: str = "memory://",
    ) -> None:
        self.per_ip: Optional[RateLimitItem] = parse(per_ip) if per_ip else None
        self.per_sender: Optional[RateLimitItem] = parse(per_sender) if per_sender else None
        self.new_senders: Optional[RateLimitItem] = parse(new_senders) if new_senders else None
        self.remote = not storage_url.startswith("memory://")
        self.storage: Storage = storage_from_string(storage_url)
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.local_seen: Optional[LocalSeen] = None if self.remote else LocalSeen()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(settings.rate_ip, settings.rate_sender, settings.rate_new_senders, settings.redis_url or "memory://")

    @property
    def enabled(self) -> bool:
        return any((self.per_ip, self.per_sender, self.new_senders))

    async def acheck(self, ip: str, sender: str) -> Optional[Refusal]:
        """check() off the event loop when the storage is Redis (its client blocks)."""
        if not self.enabled:
            return None
        if self.remote:
            return await asyncio.to_thread(self.check, ip, sender)
        return self.check(ip, sender)

    def check(self, ip: str, sender: str) -> Optional[Refusal]:
        """Count one message; a Refusal when a limit is exceeded. A storage failure lets it through
        (logged): an unreachable Redis must not take the channels down with it."""
        try:
            return self._check(ip or "unknown", sender)
        except Exception as exc:  # redis-py raises its own ConnectionError/TimeoutError family
            log.warning("rate limits not applied, storage unavailable: %s", type(exc).__name__)
            return None

    def _check(self, ip: str, sender: str) -> Optional[Refusal]:
        if self.per_ip and not self.limiter.hit(self.per_ip, "kefu-ip", ip):
            return self._refusal(self.per_ip, "too many messages from this address", "kefu-ip", ip)
        if self.per_sender and not self.limiter.hit(self.per_sender, "kefu-sender", sender):
            return self._refusal(self.per_sender, "too many messages in this conversation", "kefu-sender", sender)
        if self.new_senders and not self._seen(sender):
            if not self.limiter.hit(self.new_senders, "kefu-new", ip):
                return self._refusal(self.new_senders, "too many new conversations from this address", "kefu-new", ip)
            self._remember(sender)
        return None

    def _seen(self, sender: str) -> bool:
        if self.local_seen is not None:
            return sender in self.local_seen
        return bool(self.storage.get(SEEN_PREFIX + sender))

    def _remember(self, sender: str) -> None:
        if self.local_seen is not None:
            self.local_seen.add(sender)
        else:
            self.storage.incr(SEEN_PREFIX + sender, SEEN_SECONDS)

    def _refusal(self, item: RateLimitItem, reason: str, *key: str) -> Refusal:
        reset_at, _ = self.limiter.get_window_stats(item, *key)
        return Refusal(reason, min(max(1, math.ceil(reset_at - time.time())), item.get_expiry()))
