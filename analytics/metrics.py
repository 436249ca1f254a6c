"""Service metrics. Each function documents its definition so a reviewer can recompute it by hand.

Inputs are the `Tables` of `analytics.conversations` (turns, conversations of a period) and the
handoff tickets (epoch-second timestamps). Every function returns a DataFrame (written as one
CSV per metric by the report); `summary()` gathers the headline scalars. Rates are fractions in
[0, 1]; NaN means "no data" (never 0 by default).
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import pandas as pd

from analytics.conversations import HANDOFF_INTENTS, SOCIAL_INTENTS, Tables, build_tables, intent_groups_of
from analytics.loader import Dataset, Period

DAY = 86400.0
FCR_WINDOW_DAYS = 7.0
LATENCY_PERCENTILES = (50, 90, 95, 99)


def _rate(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def conversations_with_tickets(tables: Tables, tickets: pd.DataFrame) -> pd.DataFrame:
    """Conversations plus `human`: True when the bot handed off in it, or a ticket of that sender
    was created at or after its start and before the sender's next conversation started."""
    conv = tables.conversations.copy()
    conv["human"] = conv["handoff"].astype(bool)
    created = tickets.loc[tickets["created_at"].notna(), ["conversation_id", "created_at"]]
    if conv.empty or created.empty:
        return conv
    left = created.rename(columns={"conversation_id": "sender_id"}).astype({"sender_id": object})
    left = left.sort_values("created_at")
    right = conv[["sender_id", "start", "conversation"]].astype({"sender_id": object}).sort_values("start")
    matched = pd.merge_asof(left, right, left_on="created_at", right_on="start", by="sender_id", direction="backward")
    hit = set(matched["conversation"].dropna().astype(int))
    conv["human"] = conv["human"] | conv["conversation"].isin(hit)
    return conv


def aht(conv: pd.DataFrame, tickets: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Average handling time in seconds.

    - `bot_only`: conversations without a human (`human` False): mean of (end − start), where start
      is the first user message and end the last bot message (or last user message if later).
    - `with_human` and `queue:<name>`: tickets closed in the period that were claimed: mean of
      (closed_at − claimed_at) = the agent's handling time; `wait_s` is mean (claimed_at − created_at).
    """
    rows = []
    bot = conv.loc[~conv["human"]]
    dur = bot["end"] - bot["start"]
    rows.append({"segment": "bot_only", "count": len(bot), "aht_s": dur.mean(), "median_s": dur.median(),
                 "wait_s": np.nan})
    done = _closed(tickets, period)
    done = done.loc[done["claimed_at"].notna()]
    groups = [("with_human", done)] + [(f"queue:{q}", g) for q, g in done.groupby("queue", sort=True)]
    for name, part in groups:
        handle = part["closed_at"] - part["claimed_at"]
        rows.append({"segment": name, "count": len(part), "aht_s": handle.mean(), "median_s": handle.median(),
                     "wait_s": (part["claimed_at"] - part["created_at"]).mean()})
    return pd.DataFrame(rows)


def _closed(tickets: pd.DataFrame, period: Period) -> pd.DataFrame:
    closed = tickets["closed_at"]
    return tickets.loc[closed.notna() & (closed >= period.start) & (closed < period.end)]


def fcr(tables: Tables, groups: Mapping[str, str], window_days: float = FCR_WINDOW_DAYS) -> pd.DataFrame:
    """First-contact resolution.

    Eligible: conversations with at least one user intent of an intent group other than
    "general" (group = `groups[intent]`, else the intent itself; fallback intents have none).
    Resolved: the same sender starts no later conversation whose start is within `window_days`
    after this conversation's end and that shares one of its intent groups.
    FCR = resolved / eligible.
    """
    turns = tables.turns.assign(group=intent_groups_of(tables.turns, groups))
    pairs = turns.loc[turns["group"].notna() & (turns["group"] != "general"), ["conversation", "group"]]
    pairs = pairs.drop_duplicates()
    conv = tables.conversations.set_index("conversation")
    if pairs.empty:
        return pd.DataFrame([{"eligible": 0, "resolved": 0, "fcr": np.nan, "window_days": window_days}])
    pairs = pairs.join(conv[["sender_id", "start", "end"]], on="conversation")
    pairs = pairs.astype({"sender_id": object, "group": object}).sort_values(["sender_id", "group", "start"])
    nxt = pairs.groupby(["sender_id", "group"], sort=False)["start"].shift(-1)
    pairs["repeat"] = nxt.notna() & ((nxt - pairs["end"]) <= window_days * DAY)
    repeated = pairs.groupby("conversation")["repeat"].any()
    eligible = int(len(repeated))
    resolved = int((~repeated).sum())
    return pd.DataFrame([{"eligible": eligible, "resolved": resolved, "fcr": _rate(resolved, eligible),
                          "window_days": window_days}])


def csat(tickets: pd.DataFrame, period: Period) -> pd.DataFrame:
    """CSAT over tickets closed in the period: one row per rating 1..5 (count, share of rated),
    plus a row `all` with the mean rating and the response rate = rated / closed."""
    closed = _closed(tickets, period)
    rated = closed["rating"].dropna()
    rows = [{"rating": str(r), "count": int((rated == r).sum()), "share": _rate((rated == r).sum(), len(rated))}
            for r in range(1, 6)]
    rows.append({"rating": "all", "count": int(len(rated)), "share": np.nan, "mean": rated.mean() if len(rated)
                 else np.nan, "closed": int(len(closed)), "response_rate": _rate(len(rated), len(closed))})
    return pd.DataFrame(rows)


def resolution_accuracy(tables: Tables) -> pd.DataFrame:
    """Share of bot answers not followed by a rephrase, a fallback or a handoff.

    A bot answer is a turn that got a bot reply, is not itself a fallback, a handoff or a
    handoff-request intent (ask_human, complain, insult). It is *bad* when the same turn or the
    conversation's next turn is a handoff, the next turn is a fallback, or the next turn has
    the same intent (a rephrase). Accuracy = good answers / answers.
    """
    t = tables.turns
    same_conv = t["conversation"].shift(-1) == t["conversation"]
    nxt_intent = t["intent_name"].shift(-1).where(same_conv)
    nxt_fallback = t["fallback"].shift(-1, fill_value=False).astype(bool) & same_conv
    nxt_handoff = t["handoff"].shift(-1, fill_value=False).astype(bool) & same_conv
    answers = t["has_bot"].astype(bool) & ~t["fallback"] & ~t["handoff"].astype(bool) & ~t["intent_name"].isin(
        HANDOFF_INTENTS)
    bad = nxt_fallback | nxt_handoff | (nxt_intent == t["intent_name"]).fillna(False).astype(bool)
    n = int(answers.sum())
    n_bad = int((answers & bad).sum())
    return pd.DataFrame([{"answers": n, "rephrased_or_escalated": n_bad, "accuracy": _rate(n - n_bad, n)}])


def automation(conv: pd.DataFrame) -> pd.DataFrame:
    """Automation rate = conversations without a human / conversations; escalation rate = 1 − that."""
    n = len(conv)
    human = int(conv["human"].sum()) if n else 0
    return pd.DataFrame([{"conversations": n, "with_human": human, "automation_rate": _rate(n - human, n),
                          "escalation_rate": _rate(human, n)}])


def escalations(tickets: pd.DataFrame, period: Period, conversations: int) -> pd.DataFrame:
    """Tickets created in the period by queue and by reason (angry, explicit_request, low_confidence,
    two_fallbacks, ...): count and rate = count / conversations of the period."""
    created = tickets.loc[(tickets["created_at"] >= period.start) & (tickets["created_at"] < period.end)]
    rows = []
    for dim in ("queue", "reason"):
        for key, n in created.groupby(dim, sort=True).size().items():
            rows.append({"by": dim, "key": key, "count": int(n), "rate": _rate(n, conversations)})
    return pd.DataFrame(rows, columns=["by", "key", "count", "rate"])


def fallback_rate(tables: Tables) -> pd.DataFrame:
    """Fallback turns / user turns (see `analytics.conversations` for what a fallback turn is)."""
    t = tables.turns
    return pd.DataFrame([{"turns": len(t), "fallbacks": int(t["fallback"].sum()),
                          "fallback_rate": _rate(t["fallback"].sum(), len(t))}])


def intent_distribution(tables: Tables) -> pd.DataFrame:
    """User turns per intent (empty intent → "(none)"), share of all turns, most frequent first."""
    names = tables.turns["intent_name"].astype(object).replace("", "(none)")
    counts = names.value_counts()
    return pd.DataFrame({"intent": counts.index.astype(str), "count": counts.to_numpy(),
                         "share": counts.to_numpy() / max(len(names), 1)})


def intent_growth(tables: Tables, period: Period, previous: Optional[Tables] = None, top: int = 10,
                  min_count: int = 3) -> pd.DataFrame:
    """Fastest-growing intents: count now vs count before (the previous period when given, else
    the first half of this period against the second); growth = (now + 1) / (before + 1).
    Intents with fewer than `min_count` turns now are left out."""
    t = tables.turns
    if previous is not None:
        now, before = t["intent_name"], previous.turns["intent_name"]
    else:
        mid = period.start + period.seconds / 2
        now, before = t.loc[t["timestamp"] >= mid, "intent_name"], t.loc[t["timestamp"] < mid, "intent_name"]
    a = now.astype(object).value_counts()
    b = before.astype(object).value_counts()
    frame = pd.DataFrame({"now": a, "before": b}).fillna(0).astype(int)
    frame = frame.loc[(frame["now"] >= min_count) & (frame.index != "")]
    frame["growth"] = (frame["now"] + 1) / (frame["before"] + 1)
    frame = frame.sort_values(["growth", "now"], ascending=False).head(top)
    return frame.rename_axis("intent").reset_index()


def sentiment_trend(tables: Tables) -> pd.DataFrame:
    """Per UTC day: mean sentiment score of user messages that carry one, and how many did."""
    t = tables.turns.loc[tables.turns["sentiment"].notna()]
    day = pd.to_datetime(t["timestamp"], unit="s", utc=True).dt.strftime("%Y-%m-%d")
    out = t.groupby(day)["sentiment"].agg(["mean", "count"]).rename_axis("day").reset_index()
    return out


def volume(conv: pd.DataFrame) -> pd.DataFrame:
    """Per UTC day of a conversation's start: conversations, those with a human, user turns."""
    day = pd.to_datetime(conv["start"], unit="s", utc=True).dt.strftime("%Y-%m-%d")
    out = conv.groupby(day).agg(conversations=("conversation", "count"), with_human=("human", "sum"),
                                user_turns=("user_turns", "sum"))
    return out.rename_axis("day").reset_index()


def agents(tickets: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Per agent, over claimed tickets closed in the period: tickets, mean handling (closed − claimed),
    mean rating of the rated ones."""
    done = _closed(tickets, period)
    done = done.loc[done["agent"].notna() & done["claimed_at"].notna()]
    g = done.assign(handle=done["closed_at"] - done["claimed_at"]).groupby("agent", sort=True)
    out = g.agg(tickets=("id", "count"), aht_s=("handle", "mean"), rating=("rating", "mean"))
    return out.rename_axis("agent").reset_index()


def latency(tables: Tables) -> pd.DataFrame:
    """Reply latency percentiles (seconds) over turns with a bot reply: first bot event − user event."""
    lat = tables.turns["latency"].dropna()
    rows = [{"percentile": f"p{p}", "seconds": float(np.percentile(lat, p)) if len(lat) else np.nan}
            for p in LATENCY_PERCENTILES]
    rows.append({"percentile": "count", "seconds": float(len(lat))})
    return pd.DataFrame(rows)


def coverage(tables: Tables) -> pd.DataFrame:
    """Knowledge coverage: over question turns (not social, not fallback, not a handoff request),
    the share answered from each source (faq, graph, case, rule; "none" = no knowledge answer)."""
    t = tables.turns
    q = t.loc[~t["intent_name"].isin(SOCIAL_INTENTS | HANDOFF_INTENTS) & ~t["fallback"]]
    counts = q["answer_source"].astype(object).value_counts()
    return pd.DataFrame({"source": counts.index.astype(str), "count": counts.to_numpy(),
                         "share": counts.to_numpy() / max(len(q), 1)})


def compute_all(data: Dataset, groups: Mapping[str, str], *, fcr_window_days: float = FCR_WINDOW_DAYS,
                previous: Optional[Tables] = None, tables: Optional[Tables] = None) -> dict[str, pd.DataFrame]:
    """Every metric of the report for one dataset, by CSV name."""
    tables = tables or build_tables(data.events)
    conv = conversations_with_tickets(tables, data.tickets)
    return {
        "aht": aht(conv, data.tickets, data.period),
        "fcr": fcr(tables, groups, fcr_window_days),
        "csat": csat(data.tickets, data.period),
        "resolution_accuracy": resolution_accuracy(tables),
        "automation": automation(conv),
        "escalations": escalations(data.tickets, data.period, len(conv)),
        "fallback_rate": fallback_rate(tables),
        "intents": intent_distribution(tables),
        "intent_growth": intent_growth(tables, data.period, previous),
        "sentiment_trend": sentiment_trend(tables),
        "volume": volume(conv),
        "agents": agents(data.tickets, data.period),
        "latency": latency(tables),
        "coverage": coverage(tables),
    }


def summary(metrics: Mapping[str, pd.DataFrame]) -> dict[str, float]:
    """Headline scalars (the report's summary and before/after table)."""
    aht_rows = metrics["aht"].set_index("segment")
    csat_all = metrics["csat"].set_index("rating").loc["all"]
    lat = metrics["latency"].set_index("percentile")["seconds"]
    auto = metrics["automation"].iloc[0]
    return {
        "conversations": float(auto["conversations"]),
        "automation_rate": float(auto["automation_rate"]),
        "escalation_rate": float(auto["escalation_rate"]),
        "aht_bot_only_s": float(aht_rows.loc["bot_only", "aht_s"]),
        "aht_with_human_s": float(aht_rows.loc["with_human", "aht_s"]),
        "fcr": float(metrics["fcr"].iloc[0]["fcr"]),
        "csat_mean": float(csat_all["mean"]),
        "csat_response_rate": float(csat_all["response_rate"]),
        "resolution_accuracy": float(metrics["resolution_accuracy"].iloc[0]["accuracy"]),
        "fallback_rate": float(metrics["fallback_rate"].iloc[0]["fallback_rate"]),
        "latency_p50_s": float(lat["p50"]),
        "latency_p95_s": float(lat["p95"]),
    }
