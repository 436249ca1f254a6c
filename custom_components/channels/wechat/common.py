"""What every WeChat-family connector shares: hostile-XML-safe parsing, signatures and the
WXBizMsgCrypt envelope (through wechatpy), and rendering bot messages within WeChat's limits.

Raw bodies are parsed with defusedxml before anything else sees them: wechatpy 1.8 parses
through xmltodict, which refuses entities but is not a guard against every hostile document.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import unicodedata
from typing import Any, Iterable, Mapping, Optional
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy import crypto as mp_crypto
from wechatpy.enterprise import crypto as wecom_crypto

from kefu.errors import BadInput, ConfigError

MAX_BODY_BYTES = 64 * 1024  # WeChat callbacks are a few hundred bytes; 64 KiB leaves room
TIMESTAMP_WINDOW_S = 300  # WeChat retries within seconds; anything older is a replay
MAX_TEXT_BYTES = 2048  # text limit of passive replies, custom and kf messages (UTF-8 bytes)
OPTION_HINT = "回复数字选择 / Reply with the number"
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def parse_xml(raw: bytes, max_bytes: int = MAX_BODY_BYTES) -> dict[str, str]:
    """Parse a flat WeChat `<xml>` document into {tag: text}; BadInput for anything else."""
    if not raw or not raw.strip():
        raise BadInput("request body is empty")
    if len(raw) > max_bytes:
        raise BadInput(f"request body larger than {max_bytes} bytes", status=413)
    try:
        root = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise BadInput("XML with a DTD or entities is refused") from exc
    except (ParseError, ValueError) as exc:
        raise BadInput("request body is not well-formed XML") from exc
    if root.tag != "xml":
        raise BadInput("root element must be <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if len(child):
            fields.update({f"{child.tag}.{sub.tag}": (sub.text or "").strip() for sub in child})
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields


def sha1_signature(*parts: str) -> str:
    """WeChat's signature: SHA1 of the lexicographically sorted, concatenated parts."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(expected_parts: Iterable[str], given: Optional[str]) -> None:
    """403 unless `given` matches; compared as bytes (compare_digest raises TypeError on non-ASCII str)."""
    sent = (given or "").strip().lower().encode("utf-8", "surrogateescape")
    if not sent or not hmac.compare_digest(sha1_signature(*expected_parts).encode(), sent):
        raise BadInput("signature mismatch", status=403)


def check_timestamp(timestamp: Optional[str], window_s: int = TIMESTAMP_WINDOW_S, now: Optional[float] = None) -> str:
    """Refuse missing, malformed or out-of-window timestamps (replays)."""
    if not timestamp or not timestamp.isdigit() or len(timestamp) > 12:
        raise BadInput("timestamp missing or malformed")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > window_s:
        raise BadInput("timestamp outside the accepted window", status=403)
    return timestamp


def require_params(args: Mapping[str, Any], *names: str) -> dict[str, str]:
    """Query parameters WeChat always sends; short strings only."""
    values: dict[str, str] = {}
    for name in names:
        value = args.get(name)
        if not value or len(value) > 1024:
            raise BadInput(f"query parameter {name!r} missing or too long")
        values[name] = value
    return values


class Envelope:
    """The WXBizMsgCrypt envelope of one app (Official Account app id or WeCom corp id).

    Delegates AES-256-CBC, PKCS#7-to-32 and the receive-id check to wechatpy; every failure
    becomes BadInput(403) so a forged or corrupted body never reaches the bot.
    """

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str, enterprise: bool) -> None:
        module = wecom_crypto if enterprise else mp_crypto
        try:
            self._crypto = module.WeChatCrypto(token, encoding_aes_key, receive_id)
        except (AssertionError, ValueError) as exc:
            raise ConfigError("EncodingAESKey must be 43 base64 characters") from exc
        self._prp = module.PrpCrypto
        self.token = token

    def __repr__(self) -> str:
        return "Envelope(token=***, encoding_aes_key=***)"

    def decrypt(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        check_signature((self.token, timestamp, nonce, encrypted), msg_signature)
        try:
            return self._prp(self._crypto.key).decrypt(encrypted, self._crypto._id)
        except Exception as exc:  # wrong key, bad padding, bad base64, foreign app id
            raise BadInput("cannot decrypt the message for this app", status=403) from exc

    def encrypt(self, xml: str, nonce: str, timestamp: Optional[str] = None) -> str:
        return self._crypto.encrypt_message(xml, nonce, timestamp)


def split_text(text: str, max_bytes: int = MAX_TEXT_BYTES) -> list[str]:
    """Split `text` into chunks of at most `max_bytes` UTF-8 bytes, at line breaks or
    sentence ends when possible, never inside a character."""
    text = text.strip()
    chunks: list[str] = []
    while len(text.encode("utf-8")) > max_bytes:
        cut = _fit(text, max_bytes)
        window = text[:cut]
        best = max(window.rfind("\n"), *(window.rfind(p) for p in "。！？!?；;.")) + 1
        if best <= 0 or best < cut // 3:
            best = cut
        chunks.append(text[:best].strip())
        text = text[best:].strip()
    if text:
        chunks.append(text)
    return [chunk for chunk in chunks if chunk]


def _fit(text: str, max_bytes: int) -> int:
    """Longest prefix length whose UTF-8 encoding fits in `max_bytes`."""
    size = 0
    for index, char in enumerate(text):
        size += len(char.encode("utf-8"))
        if size > max_bytes:
            return max(index, 1)
    return len(text)


def render_messages(messages: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Bot messages → plain texts for WeChat, plus the payloads of numbered options.

    Buttons become "1. title" lines the customer answers with the number; the returned
    payloads are in that order (the last message with buttons wins).
    """
    texts: list[str] = []
    options: list[str] = []
    for message in messages:
        parts: list[str] = []
        if message.get("text"):
            parts.append(str(message["text"]))
        buttons = message.get("buttons") or message.get("quick_replies") or []
        if buttons:
            options = [str(b.get("payload") or b.get("title") or "") for b in buttons]
            parts.append("\n".join(f"{i}. {b.get('title') or b.get('payload')}" for i, b in enumerate(buttons, 1)))
            parts.append(OPTION_HINT)
        if message.get("image"):
            parts.append(str(message["image"]))
        custom = message.get("custom")
        if isinstance(custom, Mapping) and isinstance(custom.get("text"), str):
            parts.append(custom["text"])
        if parts:
            texts.append("\n".join(parts))
    return texts, options


def resolve_option(text: str, options: list[str]) -> Optional[str]:
    """The payload chosen by a numeric answer ("2", "２", " 2 ."), else None."""
    answer = unicodedata.normalize("NFKC", text).translate(_FULLWIDTH_DIGITS).strip().rstrip(".。")
    if not answer.isdigit() or len(answer) > 3:
        return None
    index = int(answer)
    return options[index - 1] if 1 <= index <= len(options) else None
