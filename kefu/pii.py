"""Mask personal data in free text: mainland mobile and landline numbers, bank card numbers,
resident ID numbers (no Rasa imports).

Everything Kefu stores or relays beyond Rasa's own tracker store (handoff tickets and messages,
live-chat briefings, the routing audit log, analytics exports) goes through `mask_text` /
`mask_value`, so agents and reports see `138****5678`, `**** **** **** 1234` and
`1101**********123X`; only the tracker store (Rasa's events, which the forms read) keeps the raw
text.

How numbers are found: a *run* is digits in groups joined by single spaces or dashes (an ID may end
in X), not glued to a letter, a digit or a `*` (so order ids like `DD2412040123`, references like
`LC20261125-4F7Q2A` and already masked values are left alone). Within a run, the longest span of
whole groups starting at each group is tried as, in order:

- a resident ID: 18 characters, a valid birth date and the GB 11643 check character;
- a mobile: 11 digits `1[3-9]…`, optionally after 86 / 0086 (`+86 138 1234 5678`);
- a bank card: 13–19 digits passing the Luhn check (random 13–19 digit numbers mostly fail it);
- a landline: area code `0AA` / `0AAA`, a separator, then 7–8 digits (`010-12345678`).

Masks: mobile keeps the first 3 and last 4 digits (the convention of Chinese banks and carriers);
landline keeps the area code and last 4; card keeps the last 4 (`**** **** **** 1234`, PCI DSS);
ID keeps the first 4 (province and city, no birth date) and the last 4 (`1101**********123X`).
Masking is idempotent: a mask never contains a run that masks again.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any, Callable, Mapping, Optional

_SEP = " \u3000-"
_RUN = re.compile(
    rf"(?<![\dA-Za-z*])(?<!\*[{_SEP}])\d+(?:[{_SEP}]\d+)*(?:[{_SEP}]?[XxＸｘ])?(?![\dA-Za-z*])"
)
_GROUP = re.compile(r"\d+[XxＸｘ]?|[XxＸｘ]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
MIN_SPAN_DIGITS = 10  # a landline: 0AA + 7 digits
MAX_SPAN_DIGITS = 19


def _ascii(text: str) -> str:
    """Digits (any script) as ASCII, X upper-cased, everything else dropped."""
    out = []
    for ch in text:
        if ch in "XxＸｘ":
            out.append("X")
        elif ch.isdecimal():
            out.append(str(unicodedata.decimal(ch)))
    return "".join(out)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check every major card scheme's numbers pass."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def id_ok(value: str) -> bool:
    """An 18-character resident ID (GB 11643-1999): 17 digits, a real birth date, the check character."""
    if len(value) != 18 or not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if born.year < 1900:
        return False
    check = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True)) % 11
    return _ID_CHECK[check] == value[17]


def _national_mobile(digits: str) -> Optional[str]:
    for prefix in ("", "86", "0086"):
        rest = digits[len(prefix):]
        if digits.startswith(prefix) and len(rest) == 11 and rest[0] == "1" and rest[1] in "3456789":
            return rest
    return None


def _mask_mobile(span: str, digits: str) -> Optional[str]:
    national = _national_mobile(digits)
    if national is None or "X" in digits:
        return None
    skip, cut = len(digits) - 11, 0
    while skip:  # keep the country code as typed
        skip -= span[cut].isdecimal()
        cut += 1
    while cut and cut < len(span) and span[cut] in _SEP:
        cut += 1
    return span[:cut] + national[:3] + "****" + national[-4:]


def _mask_span(span: str, digits: str, groups: list[str]) -> Optional[str]:
    """The masked form of `span` (whole groups of one run; `digits` and `groups` in ASCII), or None
    when it is no personal number."""
    if id_ok(digits):
        return digits[:4] + "*" * 10 + digits[-4:]
    mobile = _mask_mobile(span, digits)
    if mobile is not None:
        return mobile
    if "X" in digits:
        return None
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return "**** **** **** " + digits[-4:]
    if len(groups) == 2 and re.fullmatch(r"0\d{2,3}", groups[0]) and 7 <= len(groups[1]) <= 8:
        return groups[0] + span[len(groups[0])] + "****" + digits[-4:]  # each digit is one character
    return None


def _mask_run(run: str) -> str:
    groups = [(m.start(), m.end(), _ascii(m.group(0))) for m in _GROUP.finditer(run)]
    out: list[str] = []
    done, i = 0, 0
    while i < len(groups):
        ends, digits = [], ""
        for j in range(i, len(groups)):
            digits += groups[j][2]
            if len(digits) > MAX_SPAN_DIGITS:
                break
            if len(digits) >= MIN_SPAN_DIGITS:
                ends.append((j, digits))
        for j, span_digits in reversed(ends):
            start, end = groups[i][0], groups[j][1]
            masked = _mask_span(run[start:end], span_digits, [g[2] for g in groups[i:j + 1]])
            if masked is not None:
                out += [run[done:start], masked]
                done, i = end, j + 1
                break
        else:
            i += 1
    out.append(run[done:])
    return "".join(out)


def mask_text(text: str) -> str:
    """`text` with every mobile, landline, card and ID number in it masked."""
    if not isinstance(text, str) or not any(ch.isdecimal() for ch in text):
        return text
    return _RUN.sub(lambda m: _mask_run(m.group(0)), text)


def mask_value(value: Any, mask: Callable[[str], str] = mask_text) -> Any:
    """`value` (JSON-like: dicts, lists, strings) with every string masked; keys are kept."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v, mask) for v in value]
    return value


def mask_phone(phone: str) -> str:
    """A phone number the customer gave a form, for the confirmation: `138****5678`."""
    phone = str(phone or "")
    national = _national_mobile(_ascii(phone))
    if national is not None:
        return national[:3] + "****" + national[-4:]
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"
