"""Masking of phone, card and ID numbers (kefu.pii): examples, then properties over random text."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kefu.pii import id_ok, luhn_ok, mask_phone, mask_text, mask_value

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def with_id_check(first17: str) -> str:
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def with_luhn(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("我的手机13812345678，谢谢", "我的手机138****5678，谢谢"),
        ("call +86 138 1234 5678 now", "call +86 138****5678 now"),
        ("电话 138-1234-5678", "电话 138****5678"),
        ("座机010-12345678", "座机010-****5678"),
        ("卡号6222 0212 3456 7890 128", "卡号**** **** **** 0128"),
        ("card 4111-1111-1111-1111.", "card **** **** **** 1111."),
        ("身份证11010519491231002X", "身份证1101**********002X"),
        ("身份证号 11010519491231002x。", "身份证号 1101**********002X。"),
        ("手机１３８１２３４５６７８", "手机138****5678"),
    ],
)
def test_personal_numbers_are_masked(text, expected):
    assert mask_text(text) == expected
    assert mask_text(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "订单 DD2411050123 到哪了", "my order is dd2411050123", "参考号 LC20261125-4F7Q2A", "2026-12-04 13:45",
        "¥1380.00", "退款 12,380 元", "4111111111111112 (not Luhn)", "11010519491231002Y", "110105194912310021",
        "13812345678abc", "ticket 3f2a1b4c-1380-4123-8567-123456789012", "**** **** **** 1234", "138****5678",
    ],
)
def test_other_numbers_stay_readable(text):
    assert mask_text(text) == text


def test_checks_and_form_mask():
    assert id_ok("11010519491231002X") and not id_ok("11010519491331002X")
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+8613812345678") == "138****5678"
    assert mask_phone("+447700900123") == "+44****0123"
    assert mask_value({"a": ["13812345678", 3], "b": None}) == {"a": ["138****5678", 3], "b": None}


def _d(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


mobiles = st.builds(lambda second, rest: "1" + second + rest, st.sampled_from("3456789"), _d(9))
cards = st.sampled_from(["62", "4", "51", "37"]).flatmap(
    lambda head: st.integers(12 - len(head), 18 - len(head)).flatmap(_d).map(lambda body: with_luhn(head + body))
)
ids = st.builds(
    lambda region, year, month, day, seq: with_id_check(f"{region}{year}{month:02d}{day:02d}{seq}"),
    st.sampled_from(["110105", "310104", "440305", "510107"]), st.integers(1930, 2020), st.integers(1, 12),
    st.integers(1, 28), _d(3),
)


def _grouped(digits: str, sizes: list[int], sep: str) -> str:
    parts, i = [], 0
    for size in sizes:
        if i < len(digits):
            parts.append(digits[i:i + size])
            i += size
    if i < len(digits):
        parts.append(digits[i:])
    return sep.join(parts)


@st.composite
def spelled(draw, values: st.SearchStrategy[str]) -> tuple[str, str]:
    """(raw value, as a customer might type it: plain, or grouped by spaces or dashes)."""
    value = draw(values)
    sep = draw(st.sampled_from(["", " ", "-"]))
    sizes = draw(st.lists(st.integers(2, 6), min_size=1, max_size=5))
    return value, _grouped(value, sizes, sep) if sep else value


prose = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
boundary = st.sampled_from(["：", "，", "。", " 是 ", "\n", "我的"])


@settings(max_examples=300, deadline=None)
@given(prose, st.one_of(spelled(mobiles), spelled(cards), spelled(ids)), prose, boundary, boundary)
def test_masking_never_leaves_the_raw_number(before, found, after, left, right):
    raw, typed = found
    text = before + left + typed + right + after
    masked = mask_text(text)
    assert typed not in masked
    assert raw not in re.sub(r"[\s-]", "", masked)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(prose, mobiles, cards, ids, _d(4), st.sampled_from([" ", "-", "*", "X"])), max_size=12))
def test_masking_is_idempotent(parts):
    once = mask_text("".join(parts))
    assert mask_text(once) == once


order_ids = st.builds(lambda a, b: a + b, st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=2,
                                                  max_size=2), _d(10))
amounts = st.builds(lambda yuan, fen, unit: unit.format(f"{yuan}.{fen:02d}"), st.integers(0, 9_999_999),
                    st.integers(0, 99), st.sampled_from(["¥{}", "{} 元", "{}元", "RMB {}", "${}"]))
dates = st.builds(lambda d, fmt: d.strftime(fmt), st.dates(), st.sampled_from(["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d",
                                                                             "%Y年%m月%d日", "%Y-%m-%d %H:%M"]))
no_digits = st.text(st.characters(blacklist_categories=("Cs", "Nd", "Lu", "Ll")), max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(no_digits.map(lambda s: s + "，"), st.one_of(order_ids, amounts, dates)), max_size=5),
       no_digits)
def test_order_ids_amounts_and_dates_stay(pieces, tail):
    text = "".join(a + b for a, b in pieces) + tail
    assert mask_text(text) == text


def test_the_routing_audit_line_holds_no_raw_numbers(caplog):
    from kefu.routing.decision import RouteDecision, log_decision

    record = {"route": "human", "why": "customer said 13812345678", "kb": {"answer": "card 4111 1111 1111 1111"}}
    with caplog.at_level("INFO", logger="kefu.routing.audit"):
        log_decision("13912345678", RouteDecision("human", "general", "explicit_request", record), "test")
    line = json.loads(caplog.records[-1].getMessage())
    assert line["why"] == "customer said 138****5678" and line["kb"]["answer"] == "card **** **** **** 1111"
    assert line["conversation"] == "139****5678"
