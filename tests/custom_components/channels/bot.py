"""A scripted stand-in for Rasa's message handler (`on_new_message`): it records what the
channel hands over and answers through the output channel the channel provided, the way
Rasa's agent does. The channels under test are real; only the NLU/dialogue is scripted."""

from __future__ import annotations

import asyncio
import threading

from rasa.core.channels.channel import UserMessage

LONG_ANSWER = "这是一个很长的回答。" * 300  # 9,000 bytes of UTF-8


class ScriptedBot:
    def __init__(self, slow_s: float = 6.0) -> None:
        self.received: list[UserMessage] = []
        self.slow_s = slow_s
        self._lock = threading.Lock()

    def texts(self) -> list[str]:
        with self._lock:
            return [m.text for m in self.received]

    async def __call__(self, message: UserMessage) -> None:
        with self._lock:
            self.received.append(message)
        out, rid, text = message.output_channel, message.sender_id, message.text or ""
        if text == "slow":
            await asyncio.sleep(self.slow_s)
            await out.send_text_message(rid, "sorry for the wait")
        elif text == "buttons":
            buttons = [{"title": "查余额", "payload": "/check_balance"}, {"title": "找人工", "payload": "/ask_human"}]
            await out.send_text_with_buttons(rid, "请选择：", buttons)
        elif text == "long":
            await out.send_text_message(rid, LONG_ANSWER)
        elif text in ("human", "/ask_human"):
            await out.send_text_message(rid, "正在为您转接人工客服")
            await out.send_custom_json(rid, {"handoff": {"queue": "general", "reason": "ask_human"}})
        elif text == "crash":
            raise RuntimeError("the bot failed")
        else:
            await out.send_text_message(rid, f"echo: {text}")
