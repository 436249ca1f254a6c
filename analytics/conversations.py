"""Turn and conversation tables derived from the event stream; every metric is computed on these.

Definitions (recompute by hand):
- A *conversation* is the run of one sender's events between two session starts (a
  `session_started` event or the `action_session_start` action that precedes it); a sender
  without one has a single conversation.
- A *turn* is a `user` event plus every later event of the same conversation up to the next
  `user` event. Its *reply latency* is the timestamp of the turn's first `bot` event minus the
  user event's timestamp (no bot event: no latency).
- A turn is a *fallback* when its intent is `nlu_fallback`/`out_of_scope` or the fallback action
  (`action_fallback`, `action_default_fallback`) ran in it.
- A turn is a *handoff* when `action_handoff` ran in it or a bot event of it carries
  `data.custom.handoff`.
- A turn's *source* is the first bot event's `data.custom.source` in it, else the answering
  action's source in `ACTION_SOURCES`, else "none".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

FALLBACK_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
FALLBACK_ACTIONS = frozenset({"action_fallback", "action_default_fallback", "action_two_stage_fallback"})
SESSION_START = "action_session_start"
HANDOFF_ACTIONS = frozenset({"action_handoff"})
# Intents that ask for a person or complain: the bot is not expected to "answer" them.
HANDOFF_INTENTS = frozenset({"ask_human", "complain", "insult"})
# Social turns that are not questions (excluded from knowledge coverage).
SOCIAL_INTENTS = frozenset(
    {"greet", "goodbye", "thanks", "affirm", "deny", "chitchat", "bot_challenge", "inform", "stop"}
)
ACTION_SOURCES: Mapping[str, str] = {
    "action_answer_faq": "faq",
    "action_lookup_order": "rule",
    "action_submit_lost_card": "rule",
    "action_submit_return": "rule",
}


@dataclass
class Tables:
    turns: pd.DataFrame  # one row per user event
    conversations: pd.DataFrame  # one row per conversation with at least one user event


def build_tables(events: pd.DataFrame) -> Tables:
    """Derive turns and conversations from events sorted by (sender_id, timestamp, id)."""
    if events.empty:
        return Tables(_empty_turns(), _empty_conversations())
    sender = events["sender_id"].astype(object).to_numpy()
    type_name = events["type_name"].astype(object).to_numpy()
    is_user = type_name == "user"
    new_sender = np.r_[True, sender[1:] != sender[:-1]]
    action = events["action_name"].astype(object).to_numpy()
    session_action = events["action_name"].eq(SESSION_START).fillna(False).to_numpy(dtype=bool)
    new_conv = new_sender | (type_name == "session_started") | ((type_name == "action") & session_action)
    conv_id = np.cumsum(new_conv) - 1
    # events before a conversation's first user message form a turn without a user event (dropped)
    turn_id = np.cumsum(is_user | new_conv) - 1

    is_bot = type_name == "bot"
    frame = pd.DataFrame(
        {
            "turn": turn_id,
            "is_bot": is_bot,
            "fallback_action": pd.Series(action).isin(FALLBACK_ACTIONS).to_numpy() & (type_name == "action"),
            "handoff": (pd.Series(action).isin(HANDOFF_ACTIONS).to_numpy() & (type_name == "action"))
            | events["handoff_queue"].notna().to_numpy(),
            "bot_ts": np.where(is_bot, events["timestamp"].to_numpy(), np.nan),
            "custom_source": np.where(is_bot, events["source"].astype(object).to_numpy(), None),
            "action_source": np.where(type_name == "action", pd.Series(action).map(ACTION_SOURCES).to_numpy(), None),
            "handoff_queue": events["handoff_queue"].astype(object).to_numpy(),
            "handoff_reason": events["handoff_reason"].astype(object).to_numpy(),
        }
    )
    agg = frame.groupby("turn", sort=True).agg(
        has_bot=("is_bot", "any"),
        fallback_action=("fallback_action", "any"),
        handoff=("handoff", "any"),
        first_bot_ts=("bot_ts", "min"),
        custom_source=("custom_source", "first"),
        action_source=("action_source", "first"),
        handoff_queue=("handoff_queue", "first"),
        handoff_reason=("handoff_reason", "first"),
    )
    user = events.loc[is_user, ["sender_id", "timestamp", "intent_name", "confidence", "sentiment", "text"]]
    turns = user.reset_index(drop=True)
    turns["turn"] = turn_id[is_user]
    turns["conversation"] = conv_id[is_user]
    turns = turns.join(agg, on="turn")
    turns["intent_name"] = turns["intent_name"].astype(object).fillna("").astype("string")
    turns["latency"] = turns["first_bot_ts"] - turns["timestamp"]
    turns["fallback"] = turns["intent_name"].isin(FALLBACK_INTENTS).to_numpy() | turns["fallback_action"].to_numpy()
    src = turns["custom_source"].where(turns["custom_source"].notna(), turns["action_source"])
    turns["answer_source"] = src.fillna("none").astype("string")

    # conversation table
    ts = events["timestamp"].to_numpy()
    conv_frame = pd.DataFrame({"conversation": conv_id, "ts": ts, "bot_ts": frame["bot_ts"].to_numpy()})
    span = conv_frame.groupby("conversation").agg(last_event=("ts", "max"), last_bot=("bot_ts", "max"))
    by_conv = turns.groupby("conversation").agg(
        sender_id=("sender_id", "first"),
        start=("timestamp", "min"),
        last_user=("timestamp", "max"),
        user_turns=("turn", "count"),
        handoff=("handoff", "any"),
        fallbacks=("fallback", "sum"),
    )
    conversations = by_conv.join(span, how="left")
    last_bot = conversations["last_bot"].to_numpy()
    last_user = conversations["last_user"].to_numpy()
    conversations["end"] = np.fmax(last_bot, last_user)  # fmax ignores NaN (no bot reply)
    return Tables(turns, conversations.reset_index())


def intent_groups_of(turns: pd.DataFrame, groups: Mapping[str, str]) -> pd.Series:
    """Intent → group (from `groups`, else the intent itself); empty and fallback intents → NA."""
    intents = turns["intent_name"].astype(object)
    mapped = intents.map(lambda i: groups.get(i, i) if i and i not in FALLBACK_INTENTS else None)
    return mapped.astype("string")


def _empty_turns() -> pd.DataFrame:
    cols = {
        "sender_id": "string", "timestamp": "float64", "intent_name": "string", "confidence": "float64",
        "sentiment": "float64", "text": "string", "turn": "int64", "conversation": "int64", "has_bot": "bool",
        "fallback_action": "bool", "handoff": "bool", "first_bot_ts": "float64", "custom_source": "object",
        "action_source": "object", "handoff_queue": "object", "handoff_reason": "object", "latency": "float64",
        "fallback": "bool", "answer_source": "string",
    }
    return pd.DataFrame({k: pd.Series([], dtype=v) for k, v in cols.items()})


def _empty_conversations() -> pd.DataFrame:
    cols = {
        "conversation": "int64", "sender_id": "string", "start": "float64", "last_user": "float64",
        "user_turns": "int64", "handoff": "bool", "fallbacks": "int64", "last_event": "float64",
        "last_bot": "float64", "end": "float64",
    }
    return pd.DataFrame({k: pd.Series([], dtype=v) for k, v in cols.items()})
