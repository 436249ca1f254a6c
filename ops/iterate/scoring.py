"""Guarded metrics of the frozen evaluation set, computed from (true intent, predicted intent, confidence).

- accuracy: share of examples whose predicted intent is the true one.
- macro_f1: unweighted mean over the true intents of the evaluation set of per-intent F1.
- auto_share: share of examples whose confidence is at or above the auto-answer threshold
  (what the bot would answer without asking or handing over).
- routing_precision: of the examples predicted as a routing intent (ask_human, complain,
  insult: those that hand over to a person), the share that truly are one (1.0 when none is
  predicted: no customer was misrouted).
A candidate is promoted only if it is no worse than the current model on every one of them.
"""

from __future__ import annotations

from typing import Sequence

GUARDED = ("accuracy", "macro_f1", "auto_share", "routing_precision")
ROUTING_INTENTS = frozenset({"ask_human", "complain", "insult"})


def score(true: Sequence[str], pred: Sequence[str], conf: Sequence[float], threshold: float = 0.5,
          routing: frozenset[str] = ROUTING_INTENTS) -> dict[str, float]:
    if not (len(true) == len(pred) == len(conf)) or not true:
        raise ValueError("score needs equally long, non-empty sequences")
    n = len(true)
    f1s = []
    for intent in sorted(set(true)):
        tp = sum(1 for t, p in zip(true, pred, strict=True) if t == intent and p == intent)
        fp = sum(1 for t, p in zip(true, pred, strict=True) if t != intent and p == intent)
        fn = sum(1 for t, p in zip(true, pred, strict=True) if t == intent and p != intent)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    routed = [(t, p) for t, p in zip(true, pred, strict=True) if p in routing]
    return {
        "accuracy": sum(t == p for t, p in zip(true, pred, strict=True)) / n,
        "macro_f1": sum(f1s) / len(f1s),
        "auto_share": sum(c >= threshold for c in conf) / n,
        "routing_precision": sum(t == p for t, p in routed) / len(routed) if routed else 1.0,
    }


def compare(candidate: dict[str, float], current: dict[str, float], tolerance: float = 0.0) -> list[str]:
    """Reasons to refuse the candidate: every guarded metric where it is worse than the current model."""
    return [f"{m}: {candidate[m]:.3f} < {current[m]:.3f}" for m in GUARDED
            if candidate[m] < current[m] - tolerance]
