"""Functions run in separate processes (spawn) to prove state is shared across processes."""

from __future__ import annotations

import asyncio


def claim_in_process(url: str, key: str) -> bool:
    from custom_components.channels.wechat.state import open_state

    async def run() -> bool:
        state = open_state(url)
        try:
            return await state.claim(key, "1", 60)
        finally:
            await state.close()

    return asyncio.run(run())


def token_in_process(url: str, api_base: str, app_id: str, secret: str) -> str:
    from custom_components.channels.wechat.api import WeChatApi
    from custom_components.channels.wechat.state import open_state

    async def run() -> str:
        state = open_state(url)
        try:
            return await WeChatApi("mp", app_id, secret, state, api_base).access_token()
        finally:
            await state.close()

    return asyncio.run(run())
