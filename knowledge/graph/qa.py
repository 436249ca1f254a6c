"""Answer product questions from the graph: find the nodes a message names, pick the relation
it asks about, run the matching named query and phrase the rows.

Deterministic on purpose (a gazetteer of node names and aliases plus cue words): every
answer can be traced to the nodes and relation used (`Answer.ref` and `extra`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Optional

from kefu.text import normalize_text
from knowledge.answer import Answer
from knowledge.graph import render
from knowledge.graph.base import GraphStore, Row

MAX_QUESTION_CHARS = 500
DIGEST_CHECK_SECONDS = 5.0  # how often a question also checks whether the graph was reloaded

NEGATION = ("不收", "免收", "免", "没有", "不要", "0手续费", "零", " no ", "no ", "without", "free", "zero", "waive")
LIST_WORDS = ("哪些", "哪个", "哪张", "哪种", "哪几", "什么卡", "有没有", "which", "what cards", "any card", "list")
REQUIRE_WORDS = (
    "条件",
    "资格",
    "要求",
    "门槛",
    "谁可以",
    "能申请吗",
    "可以申请吗",
    "eligib",
    "qualif",
    "requirement",
    "who can",
)
DOC_WORDS = ("材料", "证件", "资料", "带什么", "带啥", "需要什么", "要什么", "document", "paperwork", "bring", "papers",
             "what do i need")  # fmt: skip
CHANNEL_WORDS = (
    "在哪", "哪里", "渠道", "网上", "线上", "手机上", "怎么申请", "如何申请", "怎么办理", "如何办理",
    "where", "online", "how do i apply", "how to apply", "how can i apply", "how do i get",
)  # fmt: skip
LIMIT_WORDS = ("限额", "额度", "上限", "最多", "limit", "maximum", "how much can i")
FEE_WORDS = ("费", "收费", "多少钱", "fee", "charge", "cost")
POLICY_WORDS = ("政策", "规则", "退货", "退换", "能退", "policy", "rule", "return", "refund")


@dataclass(frozen=True)
class Mention:
    id: str
    type: str
    kind: Optional[str]
    start: int
    end: int


class Gazetteer:
    """Longest-match look-up of node names and aliases in a message (ASCII names on word boundaries)."""

    _TYPE_ORDER = {"Product": 0, "Fee": 1, "Limit": 2, "Policy": 3, "Category": 4, "Channel": 5, "Document": 6}

    def __init__(self, catalog: list[Row]) -> None:
        entries: list[tuple[str, Row]] = []
        for row in catalog:
            names = [row.get("name_zh"), row.get("name_en"), *(row.get("aliases") or [])]
            for surface in {str(n).lower() for n in names if n}:
                entries.append((surface, row))
        entries.sort(key=lambda e: (-len(e[0]), self._TYPE_ORDER.get(e[1].get("type"), 9), e[1]["id"]))
        self.entries = [(s, r, re.compile(rf"\b{re.escape(s)}\b") if s.isascii() else None) for s, r in entries]

    def find(self, text: str) -> list[Mention]:
        lowered = text.lower()
        taken = [False] * len(lowered)
        found: list[Mention] = []
        for surface, row, pattern in self.entries:
            if surface not in lowered:  # cheap pre-check: most names are absent from a message
                continue
            spans = (
                [(m.start(), m.end()) for m in pattern.finditer(lowered)]
                if pattern
                else [(m.start(), m.start() + len(surface)) for m in re.finditer(re.escape(surface), lowered)]
            )
            for start, end in spans:
                if any(taken[start:end]):
                    continue
                taken[start:end] = [True] * (end - start)
                found.append(Mention(row["id"], row.get("type") or "", row.get("kind"), start, end))
        return sorted(found, key=lambda m: m.start)


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words)


class GraphQA:
    """Question answering over one GraphStore; the catalog of names is cached until the graph is reloaded."""

    def __init__(self, store: GraphStore, check_interval: float = DIGEST_CHECK_SECONDS) -> None:
        self.store = store
        self.check_interval = check_interval
        self._gazetteer: Optional[Gazetteer] = None
        self._digest: Optional[str] = None
        self._checked_at = 0.0

    def gazetteer(self) -> Gazetteer:
        """Names and aliases of all nodes, re-read when the graph's content digest changes (a reload)."""
        now = time.monotonic()
        if self._gazetteer is None or now - self._checked_at >= self.check_interval:
            digest = self.store.digest()
            if self._gazetteer is None or digest != self._digest:
                self._gazetteer = Gazetteer(self.store.catalog())
                self._digest = digest
            self._checked_at = now
        return self._gazetteer

    def shop_category(self, item: str) -> Optional[str]:
        """The shop category (node id, e.g. `cat_clothing`) an item name belongs to, by name or alias."""
        for mention in self.gazetteer().find(normalize_text(item or "", MAX_QUESTION_CHARS)):
            if mention.type == "Category" and mention.kind == "shop_category":
                return mention.id
        return None

    def answer(self, question: str, language: str = "zh", product_hint: Optional[str] = None) -> Optional[Answer]:
        """The best graph answer, or None when the graph has nothing on this question."""
        text = normalize_text(question or "", MAX_QUESTION_CHARS)
        if product_hint:
            text = f"{text} {normalize_text(product_hint, 100)}"
        if not text:
            return None
        mentions = self.gazetteer().find(text)
        if not mentions:
            return None
        return self._decide(f" {text.lower()} ", mentions, "en" if language == "en" else "zh")

    def _decide(self, text: str, mentions: list[Mention], lang: str) -> Optional[Answer]:
        first = {}
        for mention in mentions:
            first.setdefault(mention.type, mention)
        product, fee, limit = first.get("Product"), first.get("Fee"), first.get("Limit")
        policy, category = first.get("Policy"), first.get("Category")
        shop_category = category if category and category.kind in ("shop_category", "shop") else None
        bank_category = category if category and category.kind == "bank_category" else None
        if fee is not None:
            return self._fee(text, fee.id, product.id if product else None, bank_category, lang)
        if limit is not None:
            found = self._limit(limit.id, product.id if product else None, lang)
            if found is not None:
                return found
        subject = product or shop_category or policy
        if subject is not None:
            for words, relation, confidence in (
                (REQUIRE_WORDS, "REQUIRES", 0.9),
                (DOC_WORDS, "NEEDS_DOCUMENT", 0.9),
                (CHANNEL_WORDS, "AVAILABLE_VIA", 0.85),
                (LIMIT_WORDS, "HAS_LIMIT", 0.85),
                (FEE_WORDS, "HAS_FEE", 0.85),
                (POLICY_WORDS, "GOVERNED_BY", 0.85),
            ):
                if _has(text, words):
                    found = self._related(subject.id, relation, confidence, lang)
                    if found is not None:
                        return found
            if shop_category is not None and subject is shop_category:
                return self._related(subject.id, "GOVERNED_BY", 0.75, lang)
        if policy is not None:
            return self._describe(policy.id, 0.8, lang)
        if bank_category is not None and product is None:
            rows = self.store.products_in(bank_category.id)
            node = self.store.node(bank_category.id) or {}
            if rows:
                text_out = render.products_in(render.name(node, lang), rows, lang)
                return self._answer(text_out, 0.7, f"products_in:{bank_category.id}", lang, rows)
        if product is not None:
            return self._describe(product.id, 0.6, lang)
        return None

    def _fee(
        self, text: str, fee_id: str, product_id: Optional[str], category: Optional[Mention], lang: str
    ) -> Optional[Answer]:
        if product_id is not None:
            row = self.store.fee(product_id, fee_id)
            if row is not None:
                return self._answer(render.fee_of(row, lang), 0.92, f"fee:{product_id}:{fee_id}", lang, [row])
        fee_node = self.store.node(fee_id) or {}
        fee_name = render.name(fee_node, lang)
        if _has(text, NEGATION) and (_has(text, LIST_WORDS) or category is not None or "卡" in text or "card" in text):
            rows = self.store.products_without_fee(fee_id, category.id if category else None)
            if rows:
                return self._answer(render.without_fee(fee_name, rows, lang), 0.9, f"without_fee:{fee_id}", lang, rows)
            return None
        rows = self.store.fee_across(fee_id, category.id if category else None)
        if not rows:
            return None
        return self._answer(render.fee_across(fee_name, rows, lang), 0.75, f"fee_across:{fee_id}", lang, rows)

    def _limit(self, limit_id: str, product_id: Optional[str], lang: str) -> Optional[Answer]:
        if product_id is not None:
            rows = [r for r in self.store.related(product_id, "HAS_LIMIT") if r["id"] == limit_id]
            if rows:
                subject = render.name(self.store.node(product_id) or {}, lang)
                text = render.related_list(subject, "HAS_LIMIT", rows, lang)
                return self._answer(text, 0.9, f"limit:{product_id}:{limit_id}", lang, rows)
            return None
        rows = self.store.products_with("HAS_LIMIT", limit_id)
        if not rows:
            return None
        limit_name = render.name(self.store.node(limit_id) or {}, lang)
        return self._answer(render.fee_across(limit_name, rows, lang), 0.75, f"limit_across:{limit_id}", lang, rows)

    def _related(self, subject_id: str, relation: str, confidence: float, lang: str) -> Optional[Answer]:
        rows = self.store.related(subject_id, relation)
        if not rows:
            return None
        subject = render.name(self.store.node(subject_id) or {}, lang)
        text = render.related_list(subject, relation, rows, lang)
        return self._answer(text, confidence, f"{relation.lower()}:{subject_id}", lang, rows)

    def _describe(self, node_id: str, confidence: float, lang: str) -> Optional[Answer]:
        node = self.store.node(node_id)
        if node is None or not (node.get("description_zh") or node.get("description_en")):
            return None
        return self._answer(render.describe(node, lang), confidence, f"node:{node_id}", lang, [node])

    @staticmethod
    def _answer(text: str, confidence: float, ref: str, lang: str, rows: list[Row]) -> Answer:
        extra: dict[str, Any] = {"rows": rows}
        return Answer(text=text, source="graph", confidence=confidence, ref=ref, language=lang, extra=extra)
