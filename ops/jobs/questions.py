"""The customers' most frequent questions of a period (for the nightly answer-cache warm-up)."""

from __future__ import annotations

from analytics.conversations import FALLBACK_INTENTS
from analytics.loader import Period, load_events


def top_questions(url: str, period: Period, top: int = 50) -> list[str]:
    """Most frequent user texts (whitespace-trimmed), excluding fallbacks, most frequent first."""
    events, _ = load_events(url, period)
    user = events.loc[(events["type_name"] == "user") & ~events["intent_name"].isin(FALLBACK_INTENTS)]
    texts = user["text"].dropna().astype(str).str.strip()
    texts = texts.loc[texts != ""]
    return list(texts.value_counts().head(max(top, 0)).index)
