"""Replaying labelled routing snippets through the trained NLU model (shared by training and the bench).

A snippet (data/routing_train/turns.yml, data/routing_eval/turns.yml) is one message or a short
conversation; every message is parsed by the real model (`Agent.parse_message`), frustration runs
through kefu.emotion as the action server would, and the last message becomes the `TurnSignals`
and `TurnContext` routing sees. `kefu routing train` builds its feature table from these;
bench/routing.py routes them with the cascade and the tree side by side.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import yaml

from kefu.emotion import update_frustration
from kefu.errors import ConfigError
from kefu.routing.decision import ROUTES, TurnSignals, is_unclear
from kefu.routing.features import TurnContext
from kefu.routing.settings import RoutingConfig

DEFAULT_AT = "2026-11-25T11:00:00+08:00"  # a Wednesday morning: every queue is open
MAX_TURNS_FILE = 5_000_000


@dataclass(frozen=True)
class Replayed:
    """One snippet after the model read it: its label, the routing inputs and when it happens."""

    turn: dict[str, Any]
    signals: TurnSignals
    context: TurnContext
    at: datetime

    @property
    def label(self) -> str:
        """The route the tree should learn: a callback's underlying route (`needs`), else the route."""
        return str(self.turn.get("needs") or self.turn["route"])


def load_turns(path: Path) -> list[dict[str, Any]]:
    """The labelled snippets of a turns file, each checked (say, lang zh|en, a known route)."""
    path = Path(path)
    if path.stat().st_size > MAX_TURNS_FILE:
        raise ConfigError(f"{path}: larger than {MAX_TURNS_FILE} bytes")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    turns = doc.get("turns") if isinstance(doc, dict) else None
    if not isinstance(turns, list) or not turns:
        raise ConfigError(f"{path}: needs a non-empty `turns` list")
    for number, turn in enumerate(turns, 1):
        if not isinstance(turn, dict) or turn.get("route") not in ROUTES or turn.get("lang") not in ("zh", "en") \
                or not turn.get("say") or turn.get("needs", "specialist") not in ROUTES:
            raise ConfigError(f"{path}: turn {number} needs say, lang (zh|en) and route ({'|'.join(ROUTES)})")
    return turns


def load_agent(model: Path) -> Any:
    """The trained Rasa agent (TensorFlow loads here: ~30 s), quiet."""
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # the per-message parse debug lines would drown the tables
    logging.getLogger("rasa").setLevel(logging.WARNING)
    return Agent.load(str(model))


def _entities(parse: dict[str, Any]) -> int:
    entities = parse.get("entities")
    return len(entities) if isinstance(entities, list) else 0


async def replay(agent: Any, turn: dict[str, Any], config: RoutingConfig) -> Replayed:
    """Parse every message of a snippet; the routing inputs of its last message."""
    messages = turn["say"] if isinstance(turn["say"], list) else [turn["say"]]
    frustration, before, unclear = 0.0, 0.0, 0
    parse: dict[str, Any] = {}
    for index, text in enumerate(messages):
        parse = await agent.parse_message(str(text))
        before = frustration
        frustration = update_frustration(frustration, parse.get("sentiment"))
        if index < len(messages) - 1:
            unclear = unclear + 1 if is_unclear(TurnSignals.from_parse(parse, {}), config) else 0
    signals = TurnSignals.from_parse(parse, {"frustration": frustration, "frustration_before": before},
                                     unclear_before=unclear)
    context = TurnContext(text=str(messages[-1]), entities=_entities(parse), channel="rest",
                          turn_count=len(messages))
    return Replayed(turn, signals, context, datetime.fromisoformat(turn.get("at", DEFAULT_AT)))


async def replay_all(agent: Any, turns: list[dict[str, Any]], config: RoutingConfig,
                     limit: Optional[int] = None) -> list[Replayed]:
    return [await replay(agent, turn, config) for turn in turns[:limit]]
