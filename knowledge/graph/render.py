"""Turn graph rows into one short answer sentence in Chinese or English."""

from __future__ import annotations

from typing import Any, Optional

Row = dict[str, Any]

_PERIOD_ZH = {"year": "/年", "month": "/月", "quarter": "/季度", "day": "/日", "transaction": "/笔", "card": "/张"}
_PERIOD_EN = {"year": " a year", "month": " a month", "quarter": " a quarter", "day": " a day",
              "transaction": " per transaction", "card": " per card"}  # fmt: skip


def name(row: Row, language: str, prefix: str = "") -> str:
    """A node's name in `language` (falls back to the other language)."""
    zh, en = (
        row.get(f"{prefix}name_zh") or row.get(f"{prefix}zh"),
        row.get(f"{prefix}name_en") or row.get(f"{prefix}en"),
    )
    return str((zh or en) if language == "zh" else (en or zh) or "")


def note(row: Row, language: str) -> str:
    text = row.get("note_zh" if language == "zh" else "note_en")
    if not text:
        return ""
    return f"（{text}）" if language == "zh" else f" ({text})"


def number(amount: Any) -> str:
    value = float(amount)
    return f"{value:,.0f}" if value.is_integer() else f"{value:g}"


def quantity(row: Row, language: str, free_when_zero: bool) -> str:
    """`2,000元/年`, `CNY 2,000 a year`, `1.5%`, `56天`, or free."""
    amount, unit, period = row.get("amount"), row.get("unit") or "", row.get("period") or ""
    if amount is None:
        return "详见说明" if language == "zh" else "see the notes"
    if free_when_zero and float(amount) == 0:
        return "免费" if language == "zh" else "free"
    num = number(amount)
    if language == "zh":
        base = {"CNY": f"{num}元", "USD": f"{num}美元", "%": f"{num}%", "days": f"{num}天"}.get(unit, f"{num}{unit}")
        return base + _PERIOD_ZH.get(period, "")
    base = {"CNY": f"CNY {num}", "USD": f"USD {num}", "%": f"{num}%", "days": f"{num} days"}.get(unit, f"{num} {unit}")
    return base + _PERIOD_EN.get(period, "")


def join(items: list[str], language: str) -> str:
    if language == "zh":
        return "、".join(items) if len(items) < 4 else "；".join(items)
    return "; ".join(items)


def fee_of(row: Row, language: str) -> str:
    product, fee = name(row, language, "product_"), name(row, language)
    value = quantity(row, language, free_when_zero=True)
    if language == "zh":
        return f"{product}的{fee}：{value}{note(row, language)}。"
    return f"{product}: {fee} {value}{note(row, language)}."


def fee_across(fee_name: str, rows: list[Row], language: str) -> str:
    parts = [f"{name(r, language)} {quantity(r, language, True)}{note(r, language)}" for r in rows]
    if language == "zh":
        return f"{fee_name}：" + join(parts, language) + "。"
    return f"{fee_name.capitalize()}: " + join(parts, language) + "."


def without_fee(fee_name: str, rows: list[Row], language: str) -> str:
    names = [name(r, language) for r in rows]
    if language == "zh":
        return f"免收{fee_name}的有：" + "、".join(names) + "。"
    return f"No {fee_name} on: " + ", ".join(names) + "."


def related_list(subject: str, relation: str, rows: list[Row], language: str) -> str:
    """Documents, requirements, channels, policies, fees or limits of one subject."""
    items = []
    for row in sorted(rows, key=lambda r: bool(r.get("optional"))):  # what everyone needs first
        text = name(row, language)
        if relation in ("HAS_FEE", "HAS_LIMIT"):
            text += ("：" if language == "zh" else " ") + quantity(row, language, relation == "HAS_FEE")
        if row.get("optional"):
            why = row.get("note_zh" if language == "zh" else "note_en")
            if language == "zh":
                text += f"（视情况：{why}）" if why else "（视情况）"
            else:
                text += f" (if applicable: {why})" if why else " (if applicable)"
        else:
            text += note(row, language)
        items.append(text)
    lead_zh = {
        "NEEDS_DOCUMENT": f"办理{subject}需要准备：", "REQUIRES": f"申请{subject}的条件：",
        "AVAILABLE_VIA": f"{subject}可以通过以下渠道办理：", "GOVERNED_BY": f"{subject}适用的规则：",
        "HAS_FEE": f"{subject}的收费：", "HAS_LIMIT": f"{subject}的额度与限额：",
    }  # fmt: skip
    lead_en = {
        "NEEDS_DOCUMENT": f"For the {subject} please bring: ", "REQUIRES": f"To get the {subject} you need: ",
        "AVAILABLE_VIA": f"You can apply for the {subject} via: ", "GOVERNED_BY": f"Rules for {subject}: ",
        "HAS_FEE": f"Fees of the {subject}: ", "HAS_LIMIT": f"Limits of the {subject}: ",
    }  # fmt: skip
    lead = (lead_zh if language == "zh" else lead_en)[relation]
    return lead + join(items, language) + ("。" if language == "zh" else ".")


def describe(row: Row, language: str, extra: Optional[list[Row]] = None) -> str:
    text = row.get("description_zh" if language == "zh" else "description_en") or ""
    head = name(row, language)
    sentence = f"{head}：{text}" if language == "zh" else f"{head}: {text}"
    if extra:
        sentence += related_list(head, "GOVERNED_BY", extra, language)
    return sentence


def products_in(category: str, rows: list[Row], language: str) -> str:
    names = [name(r, language) for r in rows]
    if language == "zh":
        return f"{category}有：" + "、".join(names) + "。"
    return f"Our {category}: " + ", ".join(names) + "."
