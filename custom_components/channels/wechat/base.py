"""What the Official Account and WeCom app callbacks share: configuration, dedup, message
mapping, numbered options, the passive-reply budget and the customer-service fallback.

WeChat waits 5 s for a passive reply and retries the same MsgId up to three times. We answer
passively within `reply_budget_s` (4.5 s); when the bot is slower we answer `success` and
deliver through the customer-service message API once the bot has finished.

Dedup: claim → process → mark done, or release on failure. The MsgId key is claimed in the
shared state with a short lease (`lease_s`, 10 s) while the message is processed, marked done
(24 h) when the bot has finished, and released when processing raised, so a later retry of
the same MsgId (in any process) is processed. A crashed process's lease expires within
WeChat's retry window (~5, 10, 15 s). At least once while WeChat retries; duplicates are
suppressed once done.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable, Mapping, Optional

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, OutputChannel, UserMessage
from sanic.request import Request

from custom_components.channels.rest import max_message_chars
from custom_components.channels.wechat.api import WeChatApi
from custom_components.channels.wechat.common import (
    MAX_TEXT_BYTES,
    Envelope,
    render_messages,
    resolve_option,
    split_text,
)
from custom_components.channels.wechat.state import ChannelState, open_state, state_url
from kefu.config import load_settings, read_secret
from kefu.errors import ConfigError, KefuError

log = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
DEDUP_TTL_S = 24 * 3600
LEASE_S = 10  # shorter than WeChat's retry window, longer than the passive-reply budget
OPTIONS_TTL_S = 24 * 3600
POLITE_MEDIA = (
    "抱歉，我暂时只能看懂文字消息，请用文字描述您的问题。\n"
    "Sorry, I can only read text for now: please describe your question in words."
)
MODES = ("plaintext", "compatible", "safe")


def setting(credentials: Mapping[str, Any], key: str, env_prefix: str, default: Optional[str] = None) -> Optional[str]:
    """A credentials.yml value, else the secret `<env_prefix>_<KEY>` from the environment/.env."""
    value = credentials.get(key)
    if value in (None, ""):
        value = read_secret(f"{env_prefix}_{key.upper()}")
    return str(value) if value not in (None, "") else default


class WeChatOutput(OutputChannel):
    """Sends through the platform API: late bot answers and agents' messages during a handoff."""

    def __init__(self, channel: WeChatInputBase) -> None:
        self.channel = channel

    @classmethod
    def name(cls) -> str:
        return "wechat_api"

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await self.channel.deliver(recipient_id, [message])

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.channel.deliver(recipient_id, [{"text": text}])


class WeChatInputBase(InputChannel):
    """Shared machinery; subclasses define `kind`, `env_prefix` and the wire details."""

    kind = "mp"
    env_prefix = "KEFU_WECHAT_MP"
    enterprise = False

    def __init__(
        self,
        token: str,
        app_id: str,
        secret: Optional[str] = None,
        encoding_aes_key: Optional[str] = None,
        mode: str = "safe",
        agent_id: Optional[str] = None,
        api_base: Optional[str] = None,
        reply_budget_s: float = 4.5,
        welcome_intent: Optional[str] = "/greet",
        menu_intents: Optional[Mapping[str, str]] = None,
        state: Optional[ChannelState] = None,
        timestamp_window_s: int = 300,
        max_text_bytes: int = MAX_TEXT_BYTES,
        lease_s: int = LEASE_S,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"{self.name()}: mode must be one of {', '.join(MODES)}")
        if not token or not app_id:
            raise ConfigError(f"{self.name()}: token and app id are required ({self.env_prefix}_TOKEN, ..._APP_ID)")
        if mode != "plaintext" and not encoding_aes_key:
            needed = f"{self.env_prefix}_ENCODING_AES_KEY"
            raise ConfigError(f"{self.name()}: mode {mode!r} needs encoding_aes_key ({needed})")
        self.token = token
        self.app_id = app_id
        self.mode = mode
        self.agent_id = agent_id
        self.envelope = Envelope(token, encoding_aes_key, app_id, self.enterprise) if encoding_aes_key else None
        self.reply_budget_s = reply_budget_s
        self.welcome_intent = welcome_intent
        self.menu_intents = dict(menu_intents or {})
        self.timestamp_window_s = timestamp_window_s
        self.max_text_bytes = max_text_bytes
        self.lease_s = lease_s
        self._state = state
        scope = self.token_scope()
        self.api = WeChatApi(self.kind, app_id, secret or "", self, api_base, scope=scope) if secret else None
        self._tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(app_id={self.app_id!r}, mode={self.mode!r}, token=***, secret=***)"

    @classmethod
    def from_credentials(cls, credentials: Optional[dict[str, Any]]) -> InputChannel:
        creds = credentials or {}
        prefix = cls.env_prefix
        menu = creds.get("menu_intents") or {}
        if not isinstance(menu, Mapping):
            raise ConfigError(f"{cls.name()}: menu_intents must be a mapping of EventKey → intent")
        try:
            budget, window = float(creds.get("reply_budget_s", 4.5)), int(creds.get("timestamp_window_s", 300))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{cls.name()}: reply_budget_s and timestamp_window_s must be numbers") from exc
        return cls(
            token=setting(creds, "token", prefix) or "",
            app_id=setting(creds, "app_id", prefix) or "",
            secret=setting(creds, "secret", prefix),
            encoding_aes_key=setting(creds, "encoding_aes_key", prefix),
            mode=str(creds.get("mode", "safe")),
            agent_id=setting(creds, "agent_id", prefix),
            api_base=creds.get("api_base"),
            reply_budget_s=budget,
            welcome_intent=creds.get("welcome_intent", "/greet"),
            menu_intents=menu,
            timestamp_window_s=window,
        )

    # ChannelState facade: opened lazily so nothing connects at import or config time
    @property
    def state(self) -> ChannelState:
        if self._state is None:
            self._state = open_state(state_url(load_settings()))
        return self._state

    async def claim(self, key: str, value: str, ttl_s: int) -> bool:
        return await self.state.claim(key, value, ttl_s)

    async def get(self, key: str) -> Optional[str]:
        return await self.state.get(key)

    async def put(self, key: str, value: str, ttl_s: int) -> None:
        await self.state.put(key, value, ttl_s)

    async def delete(self, key: str) -> None:
        await self.state.delete(key)

    async def settle(self, key: str, ok: bool) -> None:
        """Mark a claimed message done (retries ignored for a day), or release it for a retry."""
        try:
            if ok:
                await self.put(key, "done", DEDUP_TTL_S)
            else:
                await self.delete(key)
        except KefuError as exc:  # the lease expires on its own
            log.warning("%s: could not settle a dedup key: %s", self.name(), exc)

    def token_scope(self) -> str:
        """Separates access tokens of the same corp id fetched with different secrets."""
        return str(self.agent_id or "")

    def get_output_channel(self) -> OutputChannel:
        return WeChatOutput(self)

    # Inbound mapping
    def dedup_key(self, msg: Mapping[str, str]) -> str:
        """MsgId for messages; FromUserName + CreateTime + Event for events (WeChat's advice)."""
        ident = msg.get("MsgId") or f"{msg.get('FromUserName')}:{msg.get('CreateTime')}:{msg.get('Event')}"
        return f"msg:{self.kind}:{self.app_id}:{ident}"

    def to_user_text(self, msg: Mapping[str, str]) -> tuple[Optional[str], Optional[str]]:
        """(text for the bot, direct reply): exactly one is set, or neither (nothing to do)."""
        msg_type = msg.get("MsgType", "").lower()
        if msg_type == "text":
            return msg.get("Content") or None, None
        if msg_type == "voice":
            recognition = (msg.get("Recognition") or "").strip()
            return (recognition, None) if recognition else (None, POLITE_MEDIA)
        if msg_type in ("image", "location", "file", "video", "shortvideo", "link"):
            return None, POLITE_MEDIA
        if msg_type == "event":
            event = msg.get("Event", "").lower()
            if event in ("subscribe", "enter_agent"):
                return self.welcome_intent or None, None
            if event == "click":
                return self.menu_intents.get(msg.get("EventKey", "")), None
        return None, None

    async def options_for(self, sender: str) -> list[str]:
        raw = await self.get(f"opts:{self.kind}:{self.app_id}:{sender}")
        try:
            value = json.loads(raw) if raw else []
        except json.JSONDecodeError:
            return []
        return [str(v) for v in value] if isinstance(value, list) else []

    async def remember_options(self, sender: str, options: list[str]) -> None:
        if options:
            await self.put(f"opts:{self.kind}:{self.app_id}:{sender}", json.dumps(options), OPTIONS_TTL_S)

    # Outbound
    async def send_api_text(self, recipient_id: str, text: str) -> None:
        if self.api is None:
            raise ConfigError(f"{self.name()}: no secret configured, cannot send through the message API")
        await self.api.send_text(recipient_id, text, self.agent_id)

    async def deliver(self, recipient_id: str, messages: list[Mapping[str, Any]]) -> None:
        """Render, remember numbered options and send every chunk through the API."""
        texts, options = render_messages(messages)
        await self.remember_options(recipient_id, options)
        for text in texts:
            for chunk in split_text(text, self.max_text_bytes):
                await self.send_api_text(recipient_id, chunk)

    def _keep(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_late(self, task: asyncio.Task, recipient_id: str, collector: CollectingOutputChannel,
                            key: str) -> None:
        try:
            await task
        except (Exception, asyncio.CancelledError):
            log.exception("%s: processing a message failed", self.name())
            await self.settle(key, ok=False)
            return
        await self.settle(key, ok=True)
        try:
            await self.deliver(recipient_id, collector.messages)
        except KefuError as exc:
            log.warning("%s: late delivery to a customer failed: %s", self.name(), exc)

    async def answer(self, on_new_message: OnNewMessage, msg: Mapping[str, str], request: Request) -> Optional[str]:
        """Process one decrypted message; return the passive reply text (None → `success`)."""
        sender = msg.get("FromUserName", "")
        if not sender or len(sender) > 128:
            log.info("%s: rejected a message without a valid sender", self.name())
            return None
        key = self.dedup_key(msg)
        if not await self.claim(key, "processing", self.lease_s):
            log.info("%s: duplicate delivery of a message, skipped", self.name())
            return None
        try:
            return await self._process(on_new_message, msg, sender, key)
        except Exception:
            if await self.get(key) != "done":  # failed before the bot finished: let a retry in
                await self.settle(key, ok=False)
            raise

    async def _process(self, on_new_message: OnNewMessage, msg: Mapping[str, str], sender: str,
                       key: str) -> Optional[str]:
        """Run the bot on a claimed message; settles the claim unless the late delivery will."""
        text, direct = self.to_user_text(msg)
        if direct or not text:
            await self.settle(key, ok=True)
            return direct
        text = text[: max_message_chars()]  # the same cap as the REST and socket.io channels
        chosen = resolve_option(text, await self.options_for(sender))
        metadata = {"wechat": {"kind": self.kind, "to": msg.get("ToUserName"), "msg_type": msg.get("MsgType")}}
        collector = CollectingOutputChannel()
        user_message = UserMessage(chosen or text, collector, sender, input_channel=self.name(), metadata=metadata)
        task = asyncio.ensure_future(on_new_message(user_message))
        done, _ = await asyncio.wait({task}, timeout=self.reply_budget_s)
        if not done:
            log.info("%s: the bot missed the passive-reply budget; answering through the API", self.name())
            self._keep(asyncio.ensure_future(self._deliver_late(task, sender, collector, key)))
            return None
        if task.exception() is not None:
            log.error("%s: processing a message failed: %s", self.name(), type(task.exception()).__name__)
            await self.settle(key, ok=False)
            return None
        await self.settle(key, ok=True)
        texts, options = render_messages(collector.messages)
        await self.remember_options(sender, options)
        chunks = [chunk for text in texts for chunk in split_text(text, self.max_text_bytes)]
        if not chunks:
            return None
        if len(chunks) > 1:  # one passive message only: the rest goes through the API
            self._keep(asyncio.ensure_future(self._send_rest(sender, chunks[1:])))
        return chunks[0]

    async def _send_rest(self, recipient_id: str, chunks: list[str]) -> None:
        for chunk in chunks:
            try:
                await self.send_api_text(recipient_id, chunk)
            except KefuError as exc:
                log.warning("%s: sending a follow-up message failed: %s", self.name(), exc)
                return
