"""Message texts leave the tracker store masked: what analytics loads (and everything built on it,
the report's CSV/HTML files and the nightly question list) never holds a raw phone, card or ID number."""

from __future__ import annotations

import pytest

from analytics.loader import Period, load_events
from analytics.report import build_report
from ops.jobs.questions import top_questions
from tests.analytics.conftest import create_schema, insert_events
from tests.analytics.fixture_data import DAY, T0, bot, user

RAW = ("13812345678", "4111 1111 1111 1111", "11010519491231002X")
TEXT = f"我的手机{RAW[0]}，卡号{RAW[1]}，身份证{RAW[2]}，订单DD2411050123"
MASKED = "我的手机138****5678，卡号**** **** **** 1111，身份证1101**********002X，订单DD2411050123"


@pytest.fixture(scope="module")
def pii_db(fresh_db: str) -> str:
    create_schema(fresh_db)
    insert_events(fresh_db, [user("p", T0 + 10, "check_balance", TEXT), bot("p", T0 + 11),
                             user("q", T0 + 20, "check_balance", TEXT), bot("q", T0 + 21)])
    return fresh_db


def test_loaded_texts_and_the_question_list_are_masked(pii_db: str) -> None:
    events, _ = load_events(pii_db, Period(T0, T0 + DAY))
    texts = events.loc[events["type_name"] == "user", "text"].tolist()
    assert texts == [MASKED, MASKED]
    assert top_questions(pii_db, Period(T0, T0 + DAY)) == [MASKED]


def test_report_files_hold_no_raw_numbers(pii_db: str, tmp_path) -> None:
    result = build_report(pii_db, Period(T0, T0 + DAY), tmp_path / "report", compare=False)
    for path in result.out_dir.rglob("*"):
        if path.suffix in (".csv", ".html", ".txt"):
            text = path.read_text(encoding="utf-8")
            assert not [raw for raw in RAW if raw in text], path
