"""The nightly warm-up's question list, read from the tracker events of the fixture."""

from __future__ import annotations

from analytics.loader import Period
from ops.jobs.questions import top_questions
from tests.analytics.fixture_data import DAY, T0


def test_top_questions_skip_fallbacks_and_respect_the_period(fixture_db: str) -> None:
    found = top_questions(fixture_db, Period(T0, T0 + 7 * DAY), top=50)
    assert set(found) == {"你好", "查余额", "谢谢", "余额多少", "where is my order", "my order?", "转人工", "贷款利率"}
    assert "asdf" not in found  # nlu_fallback turns are not questions worth caching
    assert len(top_questions(fixture_db, Period(T0, T0 + 7 * DAY), top=3)) == 3
    assert top_questions(fixture_db, Period(T0 + 30 * DAY, T0 + 31 * DAY)) == []
