"""kefu.ratelimit against both storages: process memory and the real Redis (a test database, emptied)."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
import redis

from kefu.config import load_settings
from kefu.errors import ConfigError
from kefu.ratelimit import LocalSeen, RateLimits

REDIS_URL = "redis://127.0.0.1:6379/14"


def redis_or_skip() -> str:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture(params=["memory", "redis"])
def limits(request) -> Iterator[RateLimits]:
    url = "memory://" if request.param == "memory" else redis_or_skip()
    limiter = RateLimits("4/2 seconds", "2/2 seconds", "3/2 seconds", url)
    limiter.storage.reset()
    yield limiter
    limiter.storage.reset()


def test_each_limit_refuses_past_its_count_and_resets_after_the_window(limits):
    assert [limits.check("ip1", "a") for _ in range(2)] == [None, None]
    assert limits.check("ip1", "a").reason == "too many messages in this conversation"
    assert [limits.check("ip1", s) for s in ("b",)] == [None]
    refused = limits.check("ip1", "c")
    assert refused.reason == "too many messages from this address" and 1 <= refused.retry_after <= 2
    assert [limits.check("ip2", s) for s in ("d", "e", "f")] == [None, None, None]
    assert limits.check("ip2", "g").reason == "too many new conversations from this address"
    assert [limits.check("ip3", s) for s in ("x", "y", "z")] == [None, None, None]
    assert limits.check("ip3", "d") is None, "a sender already seen is not new, whatever its address"
    time.sleep(2.2)
    assert limits.check("ip1", "a") is None and limits.check("ip2", "g") is None


def test_settings_turn_limits_off_and_reject_nonsense():
    off = load_settings({"KEFU_RATE_IP": "0", "KEFU_RATE_SENDER": "0", "KEFU_RATE_NEW_SENDERS": "0"})
    assert not RateLimits.from_settings(off).enabled
    defaults = load_settings({})
    assert (defaults.rate_ip, defaults.rate_sender, defaults.rate_new_senders) == ("60/minute", "20/minute",
                                                                                   "10/10 minutes")
    with pytest.raises(ConfigError, match="KEFU_RATE_IP"):
        load_settings({"KEFU_RATE_IP": "many"})


def test_an_unreachable_redis_lets_messages_through():
    limiter = RateLimits("1/minute", "1/minute", "1/minute", "redis://127.0.0.1:1/0")
    assert limiter.check("ip", "a") is None and limiter.check("ip", "a") is None


def test_seen_senders_in_memory_stay_bounded():
    seen = LocalSeen(ttl=0.2, cap=1000)
    for n in range(5000):
        seen.add(f"s{n}")
    assert len(seen.entries) == 1000 and "s4999" in seen and "s0" not in seen
    time.sleep(0.25)
    seen.add("new")
    assert list(seen.entries) == ["new"]
