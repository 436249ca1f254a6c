"""Channel state on real servers: PostgreSQL (always) and Redis (when one answers).
Dedup claims and access-token refreshes are exercised from separate processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from typing import Iterator

import pytest

from custom_components.channels.wechat.api import WeChatApi, WeChatApiError
from custom_components.channels.wechat.state import open_state, state_url
from custom_components.channels.wechat.state_pg import KfCursorStore
from kefu.config import load_settings
from kefu.errors import ConfigError, StoreUnavailable
from tests.custom_components.channels.conftest import MP_APP_ID, MP_SECRET
from tests.custom_components.channels.procs import claim_in_process, token_in_process


@pytest.fixture(params=["postgresql", "redis"])
def state_backend_url(request: pytest.FixtureRequest, channel_db: str) -> Iterator[str]:
    yield channel_db if request.param == "postgresql" else request.getfixturevalue("redis_url")


async def test_claim_get_put_delete_and_expiry(state_backend_url: str) -> None:
    state = open_state(state_backend_url)
    key = f"test:{uuid.uuid4().hex}"
    try:
        assert await state.claim(key, "first", 1) is True
        assert await state.claim(key, "second", 1) is False
        assert await state.get(key) == "first"
        await asyncio.sleep(2.1)
        assert await state.get(key) is None
        assert await state.claim(key, "third", 60) is True, "an expired claim can be taken again"
        await state.put(key, "中文 value", 60)
        assert await state.get(key) == "中文 value"
        await state.delete(key)
        assert await state.get(key) is None
        await state.delete(key)  # deleting twice is fine
    finally:
        await state.close()


def test_exactly_one_process_wins_a_claim(state_backend_url: str) -> None:
    key = f"msg:test:{uuid.uuid4().hex}"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(claim_in_process, [(state_backend_url, key)] * 8)
    assert sorted(results) == [False] * 7 + [True]


def test_one_token_refresh_across_processes(state_backend_url: str, fake_api) -> None:
    fake, base = fake_api
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        tokens = pool.starmap(token_in_process, [(state_backend_url, base, MP_APP_ID, MP_SECRET)] * 6)
    assert len(set(tokens)) == 1 and fake.token_calls == 1


async def test_expired_token_is_refreshed_and_the_call_retried(channel_db: str, fake_api) -> None:
    fake, base = fake_api
    state = open_state(channel_db)
    api = WeChatApi("mp", MP_APP_ID, MP_SECRET, state, base, scope=uuid.uuid4().hex)
    await api.send_text("openid-1", "hello")
    fake.expire_tokens()  # the platform revoked it before our cached expiry
    await api.send_text("openid-1", "again")
    assert [s["text"]["content"] for s in fake.sent] == ["hello", "again"] and fake.token_calls == 2
    assert "secret" not in repr(api).replace("secret=***", "")


async def test_wrong_secret_is_a_clear_error(channel_db: str, fake_api) -> None:
    _, base = fake_api
    api = WeChatApi("mp", MP_APP_ID, "wrong", open_state(channel_db), base, scope=uuid.uuid4().hex)
    with pytest.raises(WeChatApiError) as info:
        await api.send_text("openid-1", "hello")
    assert info.value.errcode == 40001


async def test_unreachable_stores_raise_store_unavailable() -> None:
    for url in ("postgresql://kefu@127.0.0.1:1/none", "redis://127.0.0.1:1/0"):
        state = open_state(url)
        with pytest.raises(StoreUnavailable):
            await state.get("x")
        await state.close()
    with pytest.raises(ConfigError):
        open_state("mysql://x")
    with pytest.raises(ConfigError):
        state_url(load_settings({}, env_file=None and None or __import__("pathlib").Path("/nonexistent/.env")))


async def test_kf_cursor_survives_restarts_and_serialises_syncs(channel_db: str) -> None:
    kfid = f"wk{uuid.uuid4().hex[:8]}"
    async with KfCursorStore(channel_db).lease(kfid) as lease:
        assert lease.cursor == ""
        await lease.save("c4")
    assert await KfCursorStore(channel_db).get(kfid) == "c4", "a new store (a restarted process) resumes"

    order: list[str] = []

    async def hold(name: str) -> None:
        async with KfCursorStore(channel_db).lease(kfid) as lease:
            order.append(f"{name}:in:{lease.cursor}")
            await asyncio.sleep(0.3)
            await lease.save(f"c-{name}")
            order.append(f"{name}:out")

    await asyncio.gather(hold("a"), hold("b"))
    assert order[1].endswith(":out") and order[3].endswith(":out"), order  # never interleaved
    assert order[2].split(":")[2] == f"c-{order[0].split(':')[0]}", "the second sync starts at the first one's cursor"
