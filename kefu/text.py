"""Text normalisation and language detection shared by the NLU and the action server."""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

# Control characters except tab and newline; also lone surrogates and BOMs.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\u3000]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
# Codes such as order numbers ("SO2411150457") or card tiers ("V3") say nothing about
# the customer's language.
_CODE = re.compile(r"\b[A-Za-z]*\d[A-Za-z\d]*\b", re.ASCII)
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
# Short English messages that do mean "I write English" (greetings, yes/no, the words of a
# one-word request). "ok", "lol" or "abcd" are not among them: Chinese customers type those too.
_SHORT_ENGLISH = frozenset("""
hi hello hey help thanks thank thankyou yes yeah yep no nope please sorry bye goodbye agent human
person operator stop cancel quit what why how when where who which balance card cards loan
loans order orders refund return returns invoice password account fees fee transfer shipping
delivery coupon complaint english star stars sure great good fine
""".split())


def normalize_text(text: str, max_chars: Optional[int] = None) -> str:
    """NFC-normalise, drop control characters, collapse spaces, trim, and truncate.

    Truncation keeps the beginning: customers state their problem first, and NLU
    cost grows with length, so a 20,000-character paste must not reach the model whole.
    """
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars].rstrip()
    return text


def detect_language(text: str) -> Optional[str]:
    """Return "zh" or "en" from the script of the letters, None when there are none.

    Chinese customers mix in English words ("我的credit card丢了"); a few Han
    characters already mark a Chinese message. A Han character carries about as much
    as an English word (~6 letters), so one Han character outweighs six Latin letters.
    Emoji-only, digits-only, code-only ("SO2411150457") or empty messages return None:
    the caller keeps the conversation's previous language.
    """
    han = len(_CJK.findall(text))
    latin = len(_LATIN.findall(_CODE.sub(" ", text)))
    if han == 0 and latin == 0:
        return None
    return "zh" if han > 0 and han * 6 >= latin else "en"


def message_language(text: str) -> Optional[str]:
    """`detect_language` for a turn of a conversation, sticky on weak evidence.

    A message without Han characters switches the reply language to English only when it
    reads as English: two or more words with six letters or more, or one word a customer
    writing English would send on its own ("hello", "refund"). "abcd", "ok" or "lol" in a
    Chinese chat return None, so the conversation keeps its language.
    """
    language = detect_language(text)
    if language != "en":
        return language
    words = [w.lower() for w in _WORD.findall(_CODE.sub(" ", text))]
    if len(words) >= 2 and sum(len(w) for w in words) >= 6:
        return "en"
    return "en" if any(w in _SHORT_ENGLISH for w in words) else None
