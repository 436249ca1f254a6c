"""Which router decides a turn: the cascade (default) or the learned tree, once approved.

`data/routing.yml` says `router: cascade | tree`. The tree routes live only when its file loads
cleanly AND the file's sha256 equals the approval's digest (`kefu routing approve`); otherwise
the cascade decides and the record says why (`tree_unused`). Guard rails (explicit request,
insult, anger carried over from earlier turns, a form in progress) come before the tree, and
business hours and capacity turn any human route into a callback afterwards, as for the cascade.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Optional

from kefu.routing.decision import RouteDecision, TurnSignals, decide, finish, guard_rail
from kefu.routing.features import Answerability, TurnContext, build_row, classifier_intent
from kefu.routing.settings import GENERAL, SENIOR, RoutingConfig
from kefu.routing.tree import Prediction, RoutingTree, TreeError, load_tree

log = logging.getLogger(__name__)

# the reason (priority, what the customer hears) of a route the tree chose
TREE_REASONS = {"bot": "confident", "specialist": "specialist", "clarify": "low_confidence",
                "senior": "angry", "human": "two_fallbacks", "callback": "callback"}


def tree_path(config: RoutingConfig, routing_file: Path) -> Optional[Path]:
    """The tree file the routing file names, resolved beside it; None when none is named."""
    if not config.tree.file:
        return None
    path = Path(config.tree.file)
    return path if path.is_absolute() else Path(routing_file).parent / path


def approved_tree(config: RoutingConfig, routing_file: Path) -> tuple[Optional[RoutingTree], str]:
    """(the tree allowed to route live, or None; why not). Never raises: a bad tree means the cascade."""
    if config.router != "tree":
        return None, "router: cascade"
    path = tree_path(config, routing_file)
    if path is None:
        return None, "router: tree but no tree.file"
    try:
        tree = load_tree(path)
    except TreeError as exc:
        log.error("routing tree unusable, the cascade routes: %s", exc)
        return None, str(exc)
    approval = config.tree.approval
    if approval is None:
        return None, f"tree {tree.digest[:12]} is not approved"
    if approval.digest != tree.digest:
        return None, f"tree {tree.digest[:12]} differs from the approved {approval.digest[:12]}"
    return tree, "approved"


def _tree_route(signals: TurnSignals, config: RoutingConfig, prediction: Prediction) -> tuple[str, Optional[str]]:
    route = prediction.route
    if route == "specialist":
        group = config.group_of(classifier_intent(signals)[0])  # the topic even when the fallback fired
        return ("specialist", group) if group else ("human", GENERAL)
    if route in ("human", "callback"):
        return route, GENERAL
    if route == "senior":
        return route, SENIOR
    return route, None


def decide_with_tree(signals: TurnSignals, context: TurnContext, config: RoutingConfig, tree: RoutingTree,
                     answer: Optional[Answerability] = None, now: Optional[datetime] = None) -> RouteDecision:
    """Guard rails first, then the tree; the record carries the path through the tree in words."""
    row = build_row(signals, context, config, answer)
    extra = {"router": "tree", "tree": tree.digest[:12], "features": row}
    rail = guard_rail(signals, config)
    if rail is not None:
        return finish(signals, config, *rail, now=now, extra=extra)
    prediction = tree.predict(row, config.tree.pins)
    if prediction.route == "cascade":  # a designer rejected this subtree: the cascade routes its turns
        decision = decide(signals, config, now=now)
        decision.record.update(tree=tree.digest[:12], features=row, path=prediction.explain())  # type: ignore[typeddict-item]
        return decision
    route, queue = _tree_route(signals, config, prediction)
    reason = TREE_REASONS.get(route, "specialist")
    if route == "human" and signals.intent == "complain":
        reason = "complaint"
    extra["path"] = prediction.explain()
    return finish(signals, config, route, queue, reason, prediction.explain(), now=now, extra=extra)


def route_turn(signals: TurnSignals, context: TurnContext, config: RoutingConfig, routing_file: Path,
               answer: Optional[Answerability] = None, now: Optional[datetime] = None) -> RouteDecision:
    """The live decision: the approved tree when routing.yml selects one, else the cascade."""
    tree, why = approved_tree(config, routing_file)
    if tree is None:
        decision = decide(signals, config, now=now)
        if config.router == "tree":
            decision.record["tree_unused"] = why
        return decision
    return decide_with_tree(signals, context, config, tree, answer, now)
