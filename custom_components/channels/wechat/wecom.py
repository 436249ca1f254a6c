"""WeCom self-built application callback (企业微信自建应用): always encrypted (safe mode),
URL verification decrypts `echostr`, and the agent id is checked on every message.

credentials.yml:
    custom_components.channels.wechat.wecom.WeComInput: {}
    # corp id, secret, token, encoding_aes_key, agent_id: KEFU_WECOM_APP_ID (the corp id),
    # KEFU_WECOM_SECRET, KEFU_WECOM_TOKEN, KEFU_WECOM_ENCODING_AES_KEY, KEFU_WECOM_AGENT_ID
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Mapping

from sanic import Blueprint
from wechatpy.enterprise.replies import TextReply

from custom_components.channels.wechat.base import WeChatInputBase
from custom_components.channels.wechat.common import parse_xml, require_params
from custom_components.channels.wechat.webhook import build_blueprint
from kefu.errors import BadInput


class WeComInput(WeChatInputBase):
    kind = "wecom"
    env_prefix = "KEFU_WECOM"
    enterprise = True

    @classmethod
    def name(cls) -> str:
        return "wecom"

    @classmethod
    def from_credentials(cls, credentials: Any) -> WeComInput:
        creds = dict(credentials or {}, mode="safe")  # WeCom callbacks are always encrypted
        return super().from_credentials(creds)  # type: ignore[return-value]

    def blueprint(self, on_new_message: Callable[[Any], Awaitable[Any]]) -> Blueprint:
        return build_blueprint(self, on_new_message)

    def _decrypt(self, args: Mapping[str, Any], encrypted: str) -> str:
        params = require_params(args, "msg_signature", "timestamp", "nonce")
        if self.envelope is None:
            raise BadInput("no EncodingAESKey configured", status=403)
        return self.envelope.decrypt(encrypted, params["msg_signature"], params["timestamp"], params["nonce"])

    def verify_url(self, args: Mapping[str, Any]) -> str:
        return self._decrypt(args, require_params(args, "echostr")["echostr"])

    def open_post(self, args: Mapping[str, Any], outer: dict[str, str]) -> tuple[dict[str, str], bool]:
        encrypted = outer.get("Encrypt")
        if not encrypted:
            raise BadInput("WeCom messages must be encrypted", status=403)
        msg = parse_xml(self._decrypt(args, encrypted).encode("utf-8"))
        if self.agent_id and msg.get("AgentID") and msg["AgentID"] != str(self.agent_id):
            raise BadInput("message for another WeCom application", status=403)
        return msg, True

    def render_reply(self, msg: Mapping[str, str], text: str) -> str:
        reply = TextReply(source=msg.get("ToUserName", ""), target=msg.get("FromUserName", ""), content=text)
        agent = msg.get("AgentID", "")
        reply.agent = int(agent) if agent.isdigit() else 0
        reply.time = int(time.time())
        return reply.render()
