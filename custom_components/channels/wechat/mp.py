"""WeChat Official Account (公众号) connector: plaintext, compatible and safe modes.

credentials.yml:
    custom_components.channels.wechat.mp.WeChatMPInput:
      mode: safe                # plaintext | compatible | safe (消息加解密方式)
      original_id: gh_...       # optional 原始ID: other ToUserName values are refused
      # token, app_id, secret, encoding_aes_key: from KEFU_WECHAT_MP_TOKEN, ..._APP_ID, ...
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Mapping, Optional

from sanic import Blueprint
from wechatpy.replies import TextReply

from custom_components.channels.wechat.base import WeChatInputBase
from custom_components.channels.wechat.common import check_signature, parse_xml, require_params
from custom_components.channels.wechat.webhook import build_blueprint
from kefu.errors import BadInput


class WeChatMPInput(WeChatInputBase):
    kind = "mp"
    env_prefix = "KEFU_WECHAT_MP"
    enterprise = False

    @classmethod
    def name(cls) -> str:
        return "wechat_mp"

    def __init__(self, *args: Any, original_id: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.original_id = original_id or None  # 原始ID (gh_...): the only ToUserName accepted

    @classmethod
    def from_credentials(cls, credentials: Any) -> WeChatMPInput:
        channel = super().from_credentials(credentials)
        channel.original_id = (credentials or {}).get("original_id") or None
        return channel  # type: ignore[return-value]

    def blueprint(self, on_new_message: Callable[[Any], Awaitable[Any]]) -> Blueprint:
        return build_blueprint(self, on_new_message)

    def verify_url(self, args: Mapping[str, Any]) -> str:
        params = require_params(args, "signature", "timestamp", "nonce", "echostr")
        check_signature((self.token, params["timestamp"], params["nonce"]), params["signature"])
        return params["echostr"]

    def open_post(self, args: Mapping[str, Any], outer: dict[str, str]) -> tuple[dict[str, str], bool]:
        """Check the URL signature (every mode), then decrypt when the body is encrypted."""
        params = require_params(args, "signature", "timestamp", "nonce")
        check_signature((self.token, params["timestamp"], params["nonce"]), params["signature"])
        encrypted = outer.get("Encrypt")
        if not encrypted:
            if self.mode == "safe":
                raise BadInput("safe mode: the message must be encrypted", status=403)
            return self._for_us(outer), False
        if self.envelope is None:
            raise BadInput("encrypted message but no EncodingAESKey configured", status=403)
        msg_signature = require_params(args, "msg_signature")["msg_signature"]
        inner = self.envelope.decrypt(encrypted, msg_signature, params["timestamp"], params["nonce"])
        return self._for_us(parse_xml(inner.encode("utf-8"))), True

    def _for_us(self, msg: dict[str, str]) -> dict[str, str]:
        """Plaintext messages carry no app id: with `original_id` set, check the account."""
        if self.original_id and msg.get("ToUserName") != self.original_id:
            raise BadInput("message for another Official Account", status=403)
        return msg

    def render_reply(self, msg: Mapping[str, str], text: str) -> str:
        reply = TextReply(source=msg.get("ToUserName", ""), target=msg.get("FromUserName", ""), content=text)
        reply.time = int(time.time())
        return reply.render()
