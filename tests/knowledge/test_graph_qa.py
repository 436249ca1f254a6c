"""Question answering over the seed graph on a real FalkorDB: the issue's example questions and more."""

from __future__ import annotations

import pytest

from knowledge.graph import open_graph
from knowledge.graph.qa import Gazetteer, GraphQA


@pytest.fixture
def qa(seeded_graph_url: str) -> GraphQA:
    return GraphQA(open_graph(seeded_graph_url))


def test_platinum_annual_fee(qa: GraphQA) -> None:
    answer = qa.answer("白金卡年费多少", "zh")
    assert answer is not None and answer.source == "graph"
    assert answer.ref == "fee:credit_platinum:annual_fee"
    assert "2,000元/年" in answer.text and "白金信用卡" in answer.text
    assert answer.confidence >= 0.9


def test_cards_without_foreign_transaction_fee(qa: GraphQA) -> None:
    answer = qa.answer("which cards have no foreign transaction fee", "en")
    assert answer is not None and answer.ref == "without_fee:foreign_transaction_fee"
    ids = {row["id"] for row in answer.extra["rows"]}
    assert ids == {"credit_platinum", "credit_travel"}
    assert "Platinum credit card" in answer.text and "Travel credit card" in answer.text
    assert answer.language == "en"


def test_documents_to_open_an_account(qa: GraphQA) -> None:
    answer = qa.answer("开户需要什么材料", "zh")
    assert answer is not None and answer.ref == "needs_document:savings_account"
    assert answer.text.index("本人居民身份证") < answer.text.index("有效护照")  # required before optional
    assert "视情况" in answer.text


@pytest.mark.parametrize(
    ("question", "language", "ref", "expected"),
    [
        ("what do i need to open a bank account", "en", "needs_document:savings_account", "resident ID card"),
        ("哪些信用卡免年费", "zh", "without_fee:annual_fee", "校园信用卡"),
        ("申请房贷需要什么条件", "zh", "requires:mortgage", "首付比例不低于30%"),
        ("电子账户每天能转多少", "zh", "limit:e_account:daily_transfer_limit", "10,000元/日"),
        ("what is the credit limit of the gold card", "en", "limit:credit_gold:credit_limit", "CNY 50,000"),
        ("化妆品能退吗", "zh", "governed_by:cat_cosmetics", "贴身卫生用品规则"),
        ("有哪些信用卡", "zh", "products_in:credit_cards", "白金信用卡"),
        ("怎么申请旅行卡", "zh", "available_via:credit_travel", "手机银行App"),
        ("学生卡申请条件", "zh", "requires:credit_student", "全日制"),
        ("跨行取款要手续费吗", "zh", "fee_across:interbank_atm_fee", "2元/笔"),
        (
            "How much is the annual fee of the PLATINUM card?",
            "en",
            "fee:credit_platinum:annual_fee",
            "CNY 2,000 a year",
        ),
        ("房贷提前还款有违约金吗", "zh", "fee:mortgage:early_repayment_fee", "1%"),
        ("what's the 7-day no-reason return policy", "en", "node:policy_7day_return", "resalable"),
    ],
)
def test_more_questions(qa: GraphQA, question: str, language: str, ref: str, expected: str) -> None:
    answer = qa.answer(question, language)
    assert answer is not None, question
    assert answer.ref == ref
    assert expected in answer.text


@pytest.mark.parametrize("question", ["今天天气不错", "hello there", "", "   ", "?!%$", "x" * 10_000])
def test_nothing_found_returns_none(qa: GraphQA, question: str) -> None:
    assert qa.answer(question, "zh") is None


@pytest.mark.parametrize(
    "question",
    [
        '白金卡"}) MATCH (n) DETACH DELETE n // 年费',
        "白金卡年费' OR 1=1 --",
        "年费\x00白金卡",
        "<script>白金卡</script>年费",
    ],
)
def test_hostile_questions_still_answer_safely(qa: GraphQA, question: str) -> None:
    before = qa.store.counts()
    answer = qa.answer(question, "zh")
    assert answer is not None and answer.ref == "fee:credit_platinum:annual_fee"
    assert qa.store.counts() == before


def test_product_hint_from_the_product_slot(qa: GraphQA) -> None:
    answer = qa.answer("年费多少", "zh", product_hint="金卡")
    assert answer is not None and answer.ref == "fee:credit_gold:annual_fee"


def test_gazetteer_prefers_longest_match_and_word_boundaries() -> None:
    catalog = [
        {"id": "gold", "type": "Product", "name_zh": "金卡", "name_en": "gold card", "aliases": ["金卡"]},
        {"id": "plat", "type": "Product", "name_zh": "白金卡", "name_en": "platinum card", "aliases": []},
        {"id": "atm", "type": "Channel", "name_zh": "自助机", "name_en": "atm", "aliases": []},
    ]
    gazetteer = Gazetteer(catalog)
    assert [m.id for m in gazetteer.find("白金卡和金卡")] == ["plat", "gold"]
    assert gazetteer.find("treatment") == []  # "atm" inside a word is not a mention
    assert [m.id for m in gazetteer.find("ATM fee")] == ["atm"]


def test_fee_across_one_category(qa: GraphQA) -> None:
    answer = qa.answer("信用卡年费多少", "zh")
    assert answer is not None and answer.ref == "fee_across:annual_fee"
    assert {row["id"] for row in answer.extra["rows"]} == {
        "credit_gold", "credit_platinum", "credit_travel", "credit_student", "credit_cobrand",
    }  # fmt: skip
    assert "借记卡" not in answer.text


def test_a_reloaded_graph_is_noticed(graph_url: str, tmp_path) -> None:
    import shutil

    from knowledge.graph import load_graph
    from tests.knowledge.conftest_graph import GRAPH_DIR

    content = tmp_path / "graph"
    shutil.copytree(GRAPH_DIR, content)
    load_graph(graph_url, content)
    qa = GraphQA(open_graph(graph_url), check_interval=0)
    assert qa.answer("钻石卡年费多少", "zh").ref == "fee_across:annual_fee"  # no such card yet
    bank = content / "bank.yml"
    text = bank.read_text(encoding="utf-8").replace(
        "aliases: [白金卡, 白金信用卡,", "aliases: [钻石卡, 白金卡, 白金信用卡,"
    )
    bank.write_text(text, encoding="utf-8")
    load_graph(graph_url, content)
    assert qa.answer("钻石卡年费多少", "zh").ref == "fee:credit_platinum:annual_fee"
