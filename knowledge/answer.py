"""What every knowledge source returns to the actions: text, where it came from, how sure we are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

Source = Literal["faq", "graph", "case", "rule"]


@dataclass(frozen=True)
class Answer:
    """One candidate answer. `confidence` is in [0, 1] and comparable across sources (routing uses it)."""

    text: str
    source: Source
    confidence: float
    ref: str  # FAQ id, graph node id/query name, case id or rule process name
    language: str = "zh"
    scores: dict[str, float] = field(default_factory=dict)  # per-signal scores, for `kefu kb search` and audits
    extra: dict[str, Any] = field(default_factory=dict)
    # FAQ answers carry the calibrated "no answer" decision (knowledge/calibrator.py); None for
    # sources without one, which are judged by `confidence` against the fixed threshold.
    answerable: Optional[bool] = None
    abstained_reason: Optional[str] = None

    def clears(self, threshold: float) -> bool:
        """Whether this answer may be given: its own decision when it has one, else the threshold."""
        return self.answerable if self.answerable is not None else self.confidence >= threshold
