"""The knowledge bench's answer-calibration tables (issue 18 part 0), on sets nothing was fitted on.

Evaluation sets: data/knowledge/paraphrases/holdout.jsonl and data/knowledge_eval/questions.jsonl
(written for this; answerable and unanswerable, zh and en). The calibrator was fitted by
`kefu kb calibrate` on the FAQ phrases and paraphrases.jsonl only.

Per language: ECE (10 equal-width bins) of the raw hybrid score and of the calibrated probability
as estimates of "the top hit is the right answer"; a risk–coverage table; and the right / wrong /
abstain rates at the shipped threshold next to the old fixed 0.5 on the raw score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from knowledge.calibration_fit import ece

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Scored:
    language: str
    answerable: bool
    right: bool  # the top hit is the labelled entry
    raw: float
    calibrated: float
    answered: bool  # the store's own decision


def score_rows(store: Any, rows: Sequence[dict]) -> list[Scored]:
    out = []
    for r in rows:
        found = store.search(r["question"], r["language"], limit=3)
        top = found[0] if found else None
        out.append(Scored(r["language"], bool(r["faq_id"]), bool(top) and top.entry.id == r["faq_id"],
                          top.raw_confidence if top else 0.0, top.confidence if top else 0.0,
                          bool(top) and top.answerable))
    return out


def rates(items: Sequence[Scored], answered: Sequence[bool]) -> dict[str, float]:
    """right / wrong / abstain on answerable questions, abstain on unanswerable, overall coverage and risk."""
    ans = [(s, a) for s, a in zip(items, answered, strict=True) if s.answerable]
    none = [(s, a) for s, a in zip(items, answered, strict=True) if not s.answerable]
    given = sum(answered)
    wrong = sum(1 for s, a in zip(items, answered, strict=True) if a and not s.right)
    return {
        "right": sum(1 for s, a in ans if a and s.right) / max(len(ans), 1),
        "wrong": sum(1 for s, a in ans if a and not s.right) / max(len(ans), 1),
        "abstain": sum(1 for _, a in ans if not a) / max(len(ans), 1),
        "none_abstain": sum(1 for _, a in none if not a) / max(len(none), 1),
        "coverage": given / max(len(items), 1), "risk": wrong / given if given else 0.0,
        "n_ans": len(ans), "n_none": len(none),
    }


def print_tables(name: str, items: list[Scored], thresholds: dict[str, float]) -> None:
    print(f"\nanswer calibration on {name} ({len(items)} questions; fitted on nothing here)")
    print("| language | n (answerable / none) | top-1 right | ECE raw score | ECE calibrated |")
    print("|---|---|---|---|---|")
    for lang in ("zh", "en"):
        mine = [s for s in items if s.language == lang]
        n_ans = sum(s.answerable for s in mine)
        print(f"| {lang} | {n_ans} / {len(mine) - n_ans} | {sum(s.right for s in mine) / max(n_ans, 1):.1%} | "
              f"{ece([s.raw for s in mine], [s.right for s in mine]):.3f} | "
              f"{ece([s.calibrated for s in mine], [s.right for s in mine]):.3f} |")
    print("\nrisk–coverage (calibrated probability ≥ threshold answers; risk = wrong answers / answers given)")
    print("| language | threshold | coverage | risk | right (answerable) | wrong (answerable) "
          "| abstain (unanswerable) |")
    print("|---|---|---|---|---|---|---|")
    for lang in ("zh", "en"):
        mine = [s for s in items if s.language == lang]
        for t in sorted({*THRESHOLDS, thresholds[lang]}):
            r = rates(mine, [s.calibrated >= t for s in mine])
            mark = " (shipped)" if t == thresholds[lang] else ""
            print(f"| {lang} | {t:.3f}{mark} | {r['coverage']:.1%} | {r['risk']:.1%} | {r['right']:.1%} | "
                  f"{r['wrong']:.1%} | {r['none_abstain']:.1%} |")
    print("\ndecision: before = raw score ≥ 0.5, after = the store's calibrated decision (shipped threshold)")
    print("| language | decision | right answer | wrong answer | abstain (answerable) | abstain (unanswerable) |")
    print("|---|---|---|---|---|---|")
    for lang in ("zh", "en"):
        mine = [s for s in items if s.language == lang]
        for label, answered in (("before: raw ≥ 0.50", [s.raw >= 0.5 for s in mine]),
                                ("after: calibrated", [s.answered for s in mine])):
            r = rates(mine, answered)
            print(f"| {lang} | {label} | {r['right']:.1%} | {r['wrong']:.1%} | {r['abstain']:.1%} | "
                  f"{r['none_abstain']:.1%} |")


def report(store: Any, sets: dict[str, list[dict]]) -> None:
    """Print the tables for each named evaluation set and for all of them together."""
    calibrator = store.calibrator
    if calibrator is None:
        print("\nanswer calibration: no calibrator loaded (see the warning above); tables skipped")
        return
    thresholds = {lang: calibrator.threshold(lang) for lang in ("zh", "en")}
    print(f"\ncalibrator thresholds (chosen out-of-fold by `kefu kb calibrate`): {thresholds}")
    everything: list[Scored] = []
    for name, rows in sets.items():
        if rows:
            scored = score_rows(store, rows)
            everything += scored
            print_tables(name, scored, thresholds)
    if len(sets) > 1:
        print_tables("all evaluation sets together", everything, thresholds)
