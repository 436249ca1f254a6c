"""Mount a real channel with Rasa's own `register()` on a live Sanic server, plus helpers to
sign and encrypt requests exactly as WeChat does."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Any, Iterator, Optional

import requests
from rasa.core.channels.channel import InputChannel, register

from custom_components.channels.wechat.common import Envelope, parse_xml, sha1_signature
from tests.custom_components.channels.bot import ScriptedBot
from tests.custom_components.channels.live import LiveSanic, sanic_app


class Served:
    """One channel behind a live server; `bot` is the scripted message handler."""

    def __init__(self, channel: InputChannel, bot: ScriptedBot) -> None:
        self.channel = channel
        self.bot = bot
        app = sanic_app("wechat")
        app.ctx.agent = SimpleNamespace(handle_message=bot)
        register([channel], app, route="/webhooks/")
        self.server = LiveSanic(app).start()
        self.url = f"{self.server.url}/webhooks/{channel.name()}/webhook"

    def run(self, coro: Any) -> Any:
        return self.server.run(coro)

    def stop(self) -> None:
        self.server.stop()


def serve(channels: list[Served], channel: InputChannel, bot: Optional[ScriptedBot] = None) -> Served:
    served = Served(channel, bot or ScriptedBot())
    channels.append(served)
    return served


def served_channels() -> Iterator[list[Served]]:
    """Body of a fixture: yields the list `serve()` appends to, stops every server after."""
    channels: list[Served] = []
    try:
        yield channels
    finally:
        for served in channels:
            served.stop()


def text_xml(sender: str, content: str, msg_id: Optional[str] = None, to: str = "gh_kefu_test", **extra: str) -> str:
    fields = {"ToUserName": to, "FromUserName": sender, "CreateTime": str(int(time.time())), "MsgType": "text",
              "Content": content, "MsgId": msg_id or str(uuid.uuid4().int)[:19], **extra}
    return xml_of(fields)


def xml_of(fields: dict[str, str]) -> str:
    inner = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    return f"<xml>{inner}</xml>"


def signed_params(token: str, timestamp: Optional[str] = None, nonce: str = "31415") -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    return {"timestamp": ts, "nonce": nonce, "signature": sha1_signature(token, ts, nonce)}


def encrypted_request(envelope: Envelope, token: str, inner_xml: str, to: str = "gh_kefu_test",
                      timestamp: Optional[str] = None) -> tuple[dict[str, str], bytes]:
    """(query params, body) of an encrypted callback: Encrypt in the body, msg_signature in the URL."""
    params = signed_params(token, timestamp)
    encrypted = parse_xml(envelope.encrypt(inner_xml, params["nonce"], params["timestamp"]).encode())["Encrypt"]
    signature = sha1_signature(token, params["timestamp"], params["nonce"], encrypted)
    params.update(encrypt_type="aes", msg_signature=signature)
    body = f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    return params, body.encode()


def post_xml(url: str, params: dict[str, str], body: bytes | str, content_type: str = "text/xml") -> requests.Response:
    data = body.encode() if isinstance(body, str) else body
    return requests.post(url, params=params, data=data, headers={"Content-Type": content_type}, timeout=30)
