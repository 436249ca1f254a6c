"""Grouping unanswered ticket questions: encoder embeddings + DBSCAN (cosine), seeded and deterministic.

The seed's update loop: tickets the FAQ cannot answer are embedded, DBSCAN finds dense groups of
similar questions (noise stays out), and each group becomes a suggestion whose representative is
the member closest to the group's centroid. No randomness is involved, so a fixed input gives the
same clusters every run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

DEFAULT_EPS = 0.10  # cosine distance; chosen on the seed tickets: 0.08 splits groups, 0.12 chains three into one
DEFAULT_MIN_SAMPLES = 4
# Salutations carry no meaning but are shared by many tickets, so they chain unrelated questions together.
_GREETING = re.compile(
    r"^(?:(?:客服)?(?:你好|您好)|请问|麻烦(?:问下|问一下)?|急[！!]?|hi|hello|hey|quick question|excuse me)"
    r"[\s,，:：!！、]*",
    re.IGNORECASE,
)


def strip_greeting(text: str) -> str:
    """The question without leading salutations ("客服你好，请问…" → "…"), for embedding and display."""
    previous = None
    text = text.strip()
    while previous != text:
        previous, text = text, _GREETING.sub("", text, count=1).strip()
    return text or previous


@dataclass
class Group:
    """One cluster: member indices (into the input), its representative and how tight it is."""

    members: list[int]
    representative: int
    mean_similarity: float
    languages: dict[str, int] = field(default_factory=dict)


def cluster(vectors: np.ndarray, eps: float = DEFAULT_EPS, min_samples: int = DEFAULT_MIN_SAMPLES,
            languages: Sequence[str] = ()) -> list[Group]:
    """DBSCAN over unit vectors; groups ordered by size (largest first), then by first member."""
    if len(vectors) == 0:
        return []
    from sklearn.cluster import DBSCAN  # lazy: scikit-learn (0.4 s) only to cluster, off `kefu --help`

    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="cosine").fit_predict(vectors)
    groups: list[Group] = []
    for label in sorted(set(labels.tolist()) - {-1}):
        members = [int(i) for i in np.flatnonzero(labels == label)]
        sub = vectors[members]
        centroid = sub.mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        sims = sub @ centroid
        counts: dict[str, int] = {}
        for i in members:
            if languages:
                counts[languages[i]] = counts.get(languages[i], 0) + 1
        groups.append(Group(members, members[int(np.argmax(sims))], round(float(sims.mean()), 4), counts))
    return sorted(groups, key=lambda g: (-len(g.members), g.members[0]))
