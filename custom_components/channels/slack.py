"""Slack channel: Rasa's built-in `SlackInput` (signing secret, Block Kit buttons) with the
checks it lacks, run before Rasa's handler sees the request:

- size, content type and body shape (Rasa answers 500 to a JSON array or a form without
  `payload`); the URL-verification challenge answered as Slack documents it;
- every retry is deduplicated by `event_id` in the shared channel state (Redis or
  PostgreSQL): claimed with a 60 s lease, marked done (1 h) when the bot has processed the
  message, released when processing raised; so a retry reaching any Rasa process is skipped
  once done, and processed after a failure or after a crashed process's lease expired. Rasa
  alone drops only `http_timeout` retries, and processes every other retry again;
- the Web API base URL is configurable (tests use a local server).

credentials.yml (secrets from KEFU_SLACK_BOT_TOKEN / KEFU_SLACK_SIGNING_SECRET):
    custom_components.channels.slack.KefuSlackInput:
      use_threads: false
      conversation_granularity: sender
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Awaitable, Callable, Mapping, Optional
from urllib.parse import parse_qs

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.slack import SlackInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from custom_components.channels.limits import cap_request_size
from custom_components.channels.wechat.state import ChannelState, open_state, state_url
from kefu.config import load_settings
from kefu.errors import BadInput, ConfigError, KefuError
from kefu.inbound import loads_json

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
DEDUP_TTL_S = 3600
LEASE_S = 60  # Slack retries after ~1 min and ~5 min: a crashed process's claim has expired by then
NEVER_IGNORE = ("__kefu_dedups_every_retry__",)


def check_shape(request: Request) -> Optional[dict[str, Any]]:
    """The decoded JSON event (None for an interactive form post); BadInput otherwise."""
    body = request.body or b""
    if len(body) > MAX_BODY_BYTES:
        raise BadInput(f"request body larger than {MAX_BODY_BYTES} bytes", status=413)
    if not body.strip():
        raise BadInput("request body is empty")
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    try:
        if content_type == "application/json":
            event = loads_json(body)  # 400 for invalid or too deeply nested JSON (not a RecursionError)
            if not isinstance(event, dict) or not isinstance(event.get("event", {}), dict):
                raise BadInput("a Slack event must be a JSON object")
            return event
        if content_type == "application/x-www-form-urlencoded":
            payload = parse_qs(body.decode("utf-8")).get("payload")
            if not payload or not isinstance(loads_json(payload[0]), dict):
                raise BadInput("an interactive request needs a JSON object in `payload`")
            return None
    except UnicodeDecodeError as exc:
        raise BadInput("request body is not valid UTF-8 JSON") from exc
    raise BadInput("Content-Type must be application/json or application/x-www-form-urlencoded", status=415)


class KefuSlackInput(SlackInput):
    """Slack Events API + interactivity, deduplicated across processes."""

    def __init__(self, *args: Any, api_url: Optional[str] = None, state: Optional[ChannelState] = None,
                 **kwargs: Any) -> None:
        kwargs["errors_ignore_retry"] = NEVER_IGNORE  # dedup decides, not the retry reason
        kwargs.setdefault("slack_retry_reason_header", "x-slack-retry-reason")
        kwargs.setdefault("slack_retry_number_header", "x-slack-retry-num")
        super().__init__(*args, **kwargs)
        # slack_sdk logs every request body (customer text, answers) at DEBUG: never below INFO
        sdk_log = logging.getLogger("slack_sdk")
        sdk_log.setLevel(max(sdk_log.getEffectiveLevel(), logging.INFO))
        self.api_url = api_url.rstrip("/") + "/" if api_url else None
        self._state = state

    def __repr__(self) -> str:
        return f"KefuSlackInput(api_url={self.api_url!r}, slack_token=***, slack_signing_secret=***)"

    @classmethod
    def from_credentials(cls, credentials: Optional[dict[str, Any]]) -> InputChannel:
        creds: Mapping[str, Any] = credentials or {}
        env = load_settings().slack
        token = creds.get("slack_token") or env.get("bot_token")
        secret = creds.get("slack_signing_secret") or env.get("signing_secret")
        if not token or not secret:
            raise ConfigError("slack: set KEFU_SLACK_BOT_TOKEN and KEFU_SLACK_SIGNING_SECRET (or credentials.yml)")
        return cls(
            token, creds.get("slack_channel") or env.get("channel"), creds.get("proxy"),
            use_threads=bool(creds.get("use_threads", False)), slack_signing_secret=secret,
            conversation_granularity=creds.get("conversation_granularity", "sender"),
            api_url=creds.get("slack_api_url") or env.get("api_url"),
        )

    @property
    def state(self) -> ChannelState:
        if self._state is None:
            self._state = open_state(state_url(load_settings()))
        return self._state

    def get_output_channel(self, channel: Optional[str] = None, thread_id: Optional[str] = None) -> OutputChannel:
        bot = super().get_output_channel(channel, thread_id)
        if self.api_url:
            bot.client.base_url = self.api_url  # type: ignore[attr-defined]
        return bot

    async def first_delivery(self, request: Request, event: Optional[dict[str, Any]]) -> bool:
        """Claim the event id (or the body hash); False when another delivery already did."""
        ident = (event or {}).get("event_id") or hashlib.sha256(request.body or b"").hexdigest()
        key = f"slack:{str(ident)[:128]}"
        if not await self.state.claim(key, "processing", LEASE_S):
            return False
        request.ctx.kefu_dedup_key = key
        return True

    async def settle(self, key: str, ok: bool) -> None:
        """Mark a processed event done, or release the claim so Slack's retry is processed."""
        try:
            if ok:
                await self.state.put(key, "done", DEDUP_TTL_S)
            else:
                await self.state.delete(key)
        except KefuError as exc:  # the lease expires on its own
            log.warning("slack: could not settle a dedup key: %s", exc)

    async def process_message(self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                              text: str, sender_id: Optional[str], metadata: Optional[dict]) -> Any:
        """Rasa's handler, with the claim settled when the (background) processing ends."""
        key = getattr(request.ctx, "kefu_dedup_key", None)
        if key is None:
            return await super().process_message(request, on_new_message, text, sender_id, metadata)

        async def settled(message: UserMessage) -> Any:
            try:
                result = await on_new_message(message)
            except Exception:
                await self.settle(key, ok=False)
                raise
            await self.settle(key, ok=True)
            return result

        return await super().process_message(request, settled, text, sender_id, metadata)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = cap_request_size(super().blueprint(on_new_message))

        @hook.middleware("request")
        async def guard(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST" or not request.path.endswith("/webhook"):
                return None
            try:
                event = check_shape(request)
                if not self.is_request_from_slack_authentic(request):
                    raise BadInput("missing or invalid X-Slack-Signature, or a stale timestamp", status=401)
            except BadInput as exc:
                log.info("slack: rejected a request: %s", exc.reason)
                return response.text(exc.reason, status=exc.status)
            if event is not None and event.get("type") == "url_verification":
                return response.json({"challenge": str(event.get("challenge", ""))})
            try:
                if not await self.first_delivery(request, event):
                    retry = request.headers.get("x-slack-retry-num", "0")
                    log.info("slack: duplicate delivery (retry %s) skipped", retry[:4])
                    return response.text("", headers={"X-Slack-No-Retry": "1"})
            except KefuError as exc:
                log.error("slack: cannot deduplicate now: %s", exc)
                return response.text("temporarily unavailable", status=503)
            return None

        return hook
