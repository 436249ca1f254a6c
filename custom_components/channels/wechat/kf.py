"""WeChat Customer Service (微信客服, WeCom `kf` API) connector.

The callback only says "there is something new" (`kf_msg_or_event` with a sync token): we
answer `success` at once and pull with `sync_msg` from the cursor persisted in PostgreSQL
(one sync per kf account at a time across processes, cursor saved after every batch, message
ids deduplicated, so nothing is read twice or skipped across restarts). Replies go through
`kf/send_msg`. A handoff moves the session to human reception (`service_state/trans`); when
the agent ends the session (`session_status_change`, change_type 3) the bot answers again.

credentials.yml:
    custom_components.channels.wechat.kf.WeChatKfInput:
      servicer_userid: ""   # optional: a WeCom user to receive handoffs, else the waiting pool
    # corp id, kf secret, token, encoding_aes_key: KEFU_WECHAT_KF_APP_ID, ..._SECRET, ..._TOKEN,
    # ..._ENCODING_AES_KEY (the "微信客服 → API → 回调配置" page)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping, Optional

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.core.events import ConversationResumed
from sanic.request import Request

from custom_components.channels.rest import max_message_chars
from custom_components.channels.wechat.api import SERVICE_STATE_HUMAN
from custom_components.channels.wechat.base import DEDUP_TTL_S, POLITE_MEDIA, OnNewMessage, setting
from custom_components.channels.wechat.common import resolve_option
from custom_components.channels.wechat.state_pg import KfCursorStore
from custom_components.channels.wechat.wecom import WeComInput
from kefu.config import load_settings
from kefu.dburl import tracker_database_url
from kefu.errors import ConfigError, KefuError

log = logging.getLogger(__name__)

SERVICE_STATE_POOL = 2  # 待接入池
SESSION_ENDED = 3  # session_status_change.change_type: the servicer ended the session
HUMAN_TTL_S = 48 * 3600  # WeChat's 48-hour reply window
ORIGIN_CUSTOMER = 3
MAX_ID = 128


class WeChatKfInput(WeComInput):
    kind = "wecom"
    env_prefix = "KEFU_WECHAT_KF"
    enterprise = True

    def __init__(self, *args: Any, servicer_userid: Optional[str] = None, cursors: Optional[KfCursorStore] = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.servicer_userid = servicer_userid or None
        self._cursors = cursors
        self._app: Any = None  # the Sanic app, for Rasa's agent (resume after a human session)

    @classmethod
    def name(cls) -> str:
        return "wechat_kf"

    @classmethod
    def from_credentials(cls, credentials: Any) -> WeChatKfInput:
        creds = dict(credentials or {})
        channel = super().from_credentials(creds)
        channel.servicer_userid = setting(creds, "servicer_userid", cls.env_prefix)
        return channel  # type: ignore[return-value]

    def token_scope(self) -> str:
        return "kf"

    @property
    def cursors(self) -> KfCursorStore:
        if self._cursors is None:
            url = tracker_database_url(load_settings())
            if not url:
                raise ConfigError("wechat_kf: the sync_msg cursor needs KEFU_POSTGRES_URL (the tracker database)")
            self._cursors = KfCursorStore(url)
        return self._cursors

    async def drain(self) -> None:
        """Wait for background syncs and deliveries (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def answer(self, on_new_message: OnNewMessage, msg: Mapping[str, str], request: Request) -> Optional[str]:
        if msg.get("MsgType") != "event" or msg.get("Event") != "kf_msg_or_event":
            return None
        open_kfid, sync_token = msg.get("OpenKfId", ""), msg.get("Token", "")
        if not open_kfid or len(open_kfid) > MAX_ID or len(sync_token) > 1024:
            log.info("wechat_kf: callback without a valid OpenKfId, ignored")
            return None
        self._app = getattr(request, "app", None)
        self._keep(asyncio.ensure_future(self.sync(on_new_message, open_kfid, sync_token)))
        return None

    async def sync(self, on_new_message: OnNewMessage, open_kfid: str, sync_token: str) -> int:
        """Pull every new message of `open_kfid`; returns how many were handled."""
        if self.api is None:
            raise ConfigError("wechat_kf: KEFU_WECHAT_KF_SECRET is required to pull messages")
        handled = 0
        try:
            async with self.cursors.lease(open_kfid) as lease:
                while True:
                    data = await self.api.kf_sync_msg(lease.cursor, sync_token, open_kfid)
                    for item in data.get("msg_list") or []:
                        if isinstance(item, dict) and await self.handle(on_new_message, item):
                            handled += 1
                    next_cursor = data.get("next_cursor")
                    if isinstance(next_cursor, str) and next_cursor:
                        await lease.save(next_cursor)
                    if not data.get("has_more"):
                        return handled
        except KefuError as exc:
            log.error("wechat_kf: sync of an account stopped: %s", exc)
        except Exception:
            log.exception("wechat_kf: sync of an account failed")
        return handled

    def _human_key(self, open_kfid: str, user: str) -> str:
        return f"kf:human:{open_kfid}:{user}"

    async def handle(self, on_new_message: OnNewMessage, item: Mapping[str, Any]) -> bool:
        event = item.get("event") if isinstance(item.get("event"), dict) else {}
        msgid = str(item.get("msgid") or "")
        open_kfid = str(item.get("open_kfid") or event.get("open_kfid") or "")
        if not msgid or len(msgid) > MAX_ID or not open_kfid:
            return False
        if not await self.claim(f"msg:kf:{open_kfid}:{msgid}", "1", DEDUP_TTL_S):
            return False
        if item.get("msgtype") == "event":
            return await self.handle_event(on_new_message, open_kfid, event)
        user = str(item.get("external_userid") or "")
        if item.get("origin") != ORIGIN_CUSTOMER or not user or len(user) > MAX_ID:
            return False
        await self.put(f"kf:acct:{user}", open_kfid, HUMAN_TTL_S)
        if await self.get(self._human_key(open_kfid, user)):
            return False  # an agent is serving this customer in WeCom
        text: Optional[str] = None
        if item.get("msgtype") == "text":
            text = str((item.get("text") or {}).get("content") or "").strip() or None
        if text is None:
            await self.send_api_text(user, POLITE_MEDIA)
            return True
        text = text[: max_message_chars()]
        chosen = resolve_option(text, await self.options_for(user))
        await self.run_bot(on_new_message, open_kfid, user, chosen or text)
        return True

    async def handle_event(self, on_new_message: OnNewMessage, open_kfid: str, event: Mapping[str, Any]) -> bool:
        user = str(event.get("external_userid") or "")
        if not user or len(user) > MAX_ID:
            return False
        await self.put(f"kf:acct:{user}", open_kfid, HUMAN_TTL_S)
        kind = event.get("event_type")
        if kind == "enter_session" and self.welcome_intent:
            if not await self.get(self._human_key(open_kfid, user)):
                await self.run_bot(on_new_message, open_kfid, user, self.welcome_intent)
            return True
        if kind == "session_status_change" and event.get("change_type") == SESSION_ENDED:
            await self.delete(self._human_key(open_kfid, user))
            await self.resume_rasa(user)
            log.info("wechat_kf: an agent ended a session; the bot answers again")
            return True
        return False

    async def resume_rasa(self, sender_id: str) -> None:
        """`action_handoff` paused the Rasa conversation; the agent served it in WeCom and ended
        it there, so nobody else will resume it: append ConversationResumed under Rasa's lock."""
        agent = getattr(getattr(self._app, "ctx", None), "agent", None)
        processor = getattr(agent, "processor", None)
        if processor is None:
            return
        async with agent.lock_store.lock(sender_id):
            tracker = await processor.get_tracker(sender_id)
            if tracker.is_paused():
                tracker.update(ConversationResumed())
                await processor.save_tracker(tracker)

    async def run_bot(self, on_new_message: OnNewMessage, open_kfid: str, user: str, text: str) -> None:
        collector = CollectingOutputChannel()
        metadata = {"wechat": {"kind": "kf", "open_kfid": open_kfid}}
        await on_new_message(UserMessage(text, collector, user, input_channel=self.name(), metadata=metadata))
        await self.deliver(user, collector.messages)
        if any(isinstance(m.get("custom"), dict) and "handoff" in m["custom"] for m in collector.messages):
            await self.hand_over(open_kfid, user)

    async def hand_over(self, open_kfid: str, user: str) -> None:
        """Move the session to a human (a named servicer, else the waiting pool)."""
        if self.api is None:
            return
        state = SERVICE_STATE_HUMAN if self.servicer_userid else SERVICE_STATE_POOL
        await self.api.kf_trans(open_kfid, user, state, self.servicer_userid)
        await self.put(self._human_key(open_kfid, user), "1", HUMAN_TTL_S)
        log.info("wechat_kf: session handed over to %s", "a servicer" if self.servicer_userid else "the pool")

    async def send_api_text(self, recipient_id: str, text: str) -> None:
        if self.api is None:
            raise ConfigError("wechat_kf: no secret configured, cannot send")
        open_kfid = await self.get(f"kf:acct:{recipient_id}")
        if not open_kfid:
            raise KefuError("wechat_kf: no kf account known for this customer (no message in 48 h)")
        await self.api.kf_send_text(open_kfid, recipient_id, text)
