"""Fit the FAQ answer calibrator out-of-fold on the repo's own FAQ phrases and paraphrases.

Examples, each grouped by its FAQ entry (`kefu kb calibrate`, docs/knowledge.md):
  * every FAQ phrase (question or alternative) searched with that one phrase removed from the
    index (leave-one-phrase-out: a question never scores against itself);
  * every row of data/knowledge/paraphrases/paraphrases.jsonl with an FAQ id, searched as is;
  * every phrase and paraphrase of an entry searched with the WHOLE entry removed: a question the
    FAQ cannot answer, against the rest ("unanswerable");
  * the paraphrase rows labelled null (no entry), searched as is.
A hit is right when the top entry is the labelled one. Rankings are computed exactly as
`PhraseIndex.rankings` would for the reduced index: the per-phrase signal scores come from the
loaded PostgreSQL store once, then phrases are masked in-process (same candidate cut-offs).

Per language, 5 folds grouped by entry: a logistic regression fitted on four folds scores the
fifth, and the threshold is chosen on those out-of-fold probabilities as the lowest that gives at
most `TARGET_WRONG` wrong answers on answerable questions and answers at most
`TARGET_NONE_ANSWERED` of the unanswerable ones (both rates per group, so their mix does not
matter). The shipped model is then fitted on all examples. The hold-out and evaluation sets
(bench/knowledge.py) take no part.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from knowledge.calibrator import FEATURES, LANGUAGES, AnswerCalibrator, LanguageModel, feature_row
from knowledge.errors import BadInput
from knowledge.pg import CANDIDATES
from knowledge.search import SECOND, best_per_ref, best_two_per_ref, fts_terms, prepare_query, rank_and_calibrate

TARGET_WRONG = 0.05  # wrong answers on answerable questions (issue 18's target)
TARGET_NONE_ANSWERED = 0.15  # answers on unanswerable questions (abstention >= 85 %)
FOLDS = 5
C = 1.0  # L2 strength of the logistic regression: a few features, keep it smooth
PhraseKey = tuple[str, str]  # (faq id, phrase)


@dataclass
class Example:
    language: str
    group: str
    kind: str  # "leave-one-out", "paraphrase", "held-out entry", "no entry"
    answerable: bool
    right: bool
    row: list[float]
    raw: float  # the uncalibrated confidence of the top hit


class PairScores:
    """Per-phrase signal scores of one query over every phrase of its language, maskable."""

    def __init__(self, fts: dict[PhraseKey, float], trgm: dict[PhraseKey, float], vec: dict[PhraseKey, float]):
        self.fts, self.trgm, self.vec = fts, trgm, vec

    def rankings(self, excluded: set[PhraseKey], limit: int = CANDIDATES) -> dict[str, list[tuple[str, float]]]:
        def ordered(scores: dict[PhraseKey, float], positive: bool) -> list[tuple[str, float]]:
            rows = [(k[0], s) for k, s in scores.items() if k not in excluded and (s > 0 or not positive)]
            return sorted(rows, key=lambda r: -r[1])[: limit * 4]

        out: dict[str, list[tuple[str, float]]] = {
            "fts": best_per_ref(ordered(self.fts, False), limit),
            "trgm": best_per_ref(ordered(self.trgm, True), limit),
        }
        out["vector"], out[SECOND] = best_two_per_ref(ordered(self.vec, False), limit)
        return out


def pair_scores(store: Any, queries: list[tuple[str, str]]) -> list[PairScores]:
    """PairScores of each (text, language) against the store's phrase table (`store` a loaded
    PostgresFaqStore): full-text and trigram from PostgreSQL, cosine from the stored vectors."""
    table = store.index.table
    with store.db.connection() as conn:
        rows = conn.execute(f"SELECT faq_id, language, phrase, embedding FROM {table}").fetchall()
        keys = {lang: [(r[0], r[2]) for r in rows if r[1] == lang] for lang in LANGUAGES}
        mats = {lang: np.array([np.asarray(r[3], dtype=np.float32) for r in rows if r[1] == lang])
                for lang in LANGUAGES}
        for lang in LANGUAGES:
            mats[lang] /= np.maximum(np.linalg.norm(mats[lang], axis=1, keepdims=True), 1e-12)
        out = []
        for text, lang in queries:
            cfg = "english" if lang == "en" else "simple"
            terms = fts_terms(text)
            fts = {}
            if terms:
                fts = {(r[0], r[1]): float(r[2]) for r in conn.execute(
                    f"SELECT faq_id, phrase, ts_rank_cd(tsv, q, 32) FROM {table}, "
                    "websearch_to_tsquery(%s::regconfig, %s) AS q WHERE language = %s AND tsv @@ q",
                    (cfg, terms, lang)).fetchall()}
            trgm = {(r[0], r[1]): float(r[2]) for r in conn.execute(
                f"SELECT faq_id, phrase, similarity(norm, %s) FROM {table} WHERE language = %s",
                (text.lower(), lang)).fetchall()}
            q = np.asarray(store.embedder.embed_query(text), dtype=np.float32)
            sims = mats[lang] @ (q / max(float(np.linalg.norm(q)), 1e-12))
            out.append(PairScores(fts, trgm, dict(zip(keys[lang], map(float, sims), strict=True))))
    return out


def example_specs(entries: Iterable[Any], paraphrases: list[dict]) -> list[dict]:
    """What to search and how: (text, language, group, kind, label, excluded phrase keys)."""
    specs: list[dict] = []
    by_entry: dict[str, list[str]] = {}
    for r in paraphrases:
        if r.get("faq_id"):
            by_entry.setdefault(r["faq_id"], []).append(r["question"])
        else:
            specs.append({"text": r["question"], "language": r["language"], "group": f"none:{r['id']}",
                          "kind": "no entry", "label": None, "excluded": set()})
    for e in entries:
        if e.status != "published":
            continue
        own = {(e.id, p) for p in e.phrases}
        if len(e.phrases) > 1:
            specs += [{"text": p, "language": e.language, "group": e.id, "kind": "leave-one-out", "label": e.id,
                       "excluded": {(e.id, p)}} for p in e.phrases]
        specs += [{"text": q, "language": e.language, "group": e.id, "kind": "paraphrase", "label": e.id,
                   "excluded": set()} for q in by_entry.get(e.id, [])]
        specs += [{"text": q, "language": e.language, "group": e.id, "kind": "held-out entry", "label": None,
                   "excluded": own} for q in [*e.phrases, *by_entry.get(e.id, [])]]
    return specs


def build_examples(store: Any, entries: list[Any], paraphrases: list[dict]) -> list[Example]:
    specs = example_specs(entries, paraphrases)
    prepared = [prepare_query(s["text"], s["language"]) for s in specs]
    unique = list(dict.fromkeys(prepared))
    scores = dict(zip(unique, pair_scores(store, unique), strict=True))
    out = []
    for spec, key in zip(specs, prepared, strict=True):
        hits = rank_and_calibrate(scores[key].rankings(spec["excluded"]), 3)
        if not hits:
            continue
        row = feature_row(hits[0], hits[1] if len(hits) > 1 else None)
        out.append(Example(key[1], spec["group"], spec["kind"], spec["label"] is not None,
                           hits[0].ref == spec["label"], row, hits[0].confidence))
    return out


def rates(probs: np.ndarray, examples: list[Example], t: float) -> dict[str, float]:
    """At threshold t: right and wrong answers among answerable examples, answers among unanswerable."""
    answered = probs >= t
    ans = np.array([e.answerable for e in examples], dtype=bool)
    right = np.array([e.right for e in examples], dtype=bool)
    return {"right": float((answered & ans & right).sum() / max(ans.sum(), 1)),
            "wrong": float((answered & ans & ~right).sum() / max(ans.sum(), 1)),
            "none_answered": float((answered & ~ans).sum() / max((~ans).sum(), 1))}


def ece(probs: Sequence[float], labels: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: bin-weighted |mean probability - accuracy|, equal-width bins."""
    p = np.asarray(probs, dtype=float)
    y = np.asarray(labels, dtype=float)
    if p.size == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(p[idx == b].mean() - y[idx == b].mean()) * (idx == b).sum()
                     for b in range(bins) if (idx == b).any()) / p.size)


def choose_threshold(probs: np.ndarray, examples: list[Example]) -> float:
    """The lowest threshold (most answers) with at most `TARGET_WRONG` wrong answers on answerable
    questions and at most `TARGET_NONE_ANSWERED` answers on unanswerable ones; 1.0 if none does."""
    for t in sorted({round(float(p), 4) for p in probs}):
        r = rates(probs, examples, t)
        if r["wrong"] <= TARGET_WRONG and r["none_answered"] <= TARGET_NONE_ANSWERED:
            return t
    return 1.0


def fit_model(examples: list[Example]) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], float]:
    """(mean, scale, coef, bias) of a logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression  # lazy: only `kefu kb calibrate` fits

    x = np.array([e.row for e in examples], dtype=float)
    y = np.array([e.right for e in examples], dtype=int)
    mean = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    model = LogisticRegression(C=C, max_iter=1000).fit((x - mean) / scale, y)
    return (tuple(map(float, mean)), tuple(map(float, scale)), tuple(map(float, model.coef_[0])),
            float(model.intercept_[0]))


def oof_probabilities(examples: list[Example], folds: int = FOLDS, seed: int = 7) -> np.ndarray:
    """Each example scored by a model fitted on the folds its entry is not in."""
    groups = sorted({e.group for e in examples})
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = {groups[i]: n % folds for n, i in enumerate(order)}
    probs = np.zeros(len(examples))
    for f in range(folds):
        train = [e for e in examples if fold_of[e.group] != f]
        if len({e.right for e in train}) < 2:  # one class only: its rate is all a model could say
            for i, e in enumerate(examples):
                if fold_of[e.group] == f:
                    probs[i] = float(bool(train and train[0].right))
            continue
        mean, scale, coef, bias = fit_model(train)
        model = LanguageModel(mean, scale, coef, bias, 0.5)
        for i, e in enumerate(examples):
            if fold_of[e.group] == f:
                probs[i] = model.probability(e.row)
    return probs


def fit(examples: list[Example], meta: Optional[dict] = None) -> tuple[AnswerCalibrator, dict[str, Any]]:
    """The calibrator (all examples) with out-of-fold thresholds, and the OOF figures per language."""
    models, report = {}, {}
    for lang in LANGUAGES:
        mine = [e for e in examples if e.language == lang]
        groups = {e.group for e in mine}
        for label in (True, False):
            if len({e.group for e in mine if e.right == label}) < FOLDS:
                raise BadInput(f"too few examples to fit {lang} out-of-fold: need top hits that are "
                               f"{'right' if label else 'not right'} in at least {FOLDS} FAQ entries "
                               f"({len(mine)} examples, {len(groups)} entries)")
        probs = oof_probabilities(mine)
        t = choose_threshold(probs, mine)
        mean, scale, coef, bias = fit_model(mine)
        models[lang] = LanguageModel(mean, scale, coef, bias, t)
        report[lang] = {"examples": len(mine), "right_top": sum(e.right for e in mine),
                        "unanswerable": sum(not e.answerable for e in mine), "threshold": t,
                        **{f"oof_{k}": round(v, 4) for k, v in rates(probs, mine, t).items()},
                        "ece_raw": round(ece([e.raw for e in mine], [e.right for e in mine]), 4),
                        "ece_oof": round(ece(probs, [e.right for e in mine]), 4),
                        "oof_probabilities": probs.tolist()}
    public = {lang: {k: v for k, v in r.items() if k != "oof_probabilities"} for lang, r in report.items()}
    return AnswerCalibrator(models, {**(meta or {}), "features": list(FEATURES), "oof": public}), report


MAX_PARAPHRASE_BYTES = 5 * 1024 * 1024


def read_paraphrases(path: Path) -> list[dict]:
    """Rows {id, question, language, faq_id} of a paraphrase JSONL file; BadInput names the line."""
    try:
        if path.stat().st_size > MAX_PARAPHRASE_BYTES:
            raise BadInput(f"{path} is larger than {MAX_PARAPHRASE_BYTES} bytes")
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read paraphrases {path}: {str(exc)[:120]}") from exc
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise BadInput(f"{path.name} line {n}: not JSON") from exc
        ok = (isinstance(row, dict) and isinstance(row.get("question"), str) and 0 < len(row["question"]) <= 500
              and row.get("language") in LANGUAGES and (row.get("faq_id") is None or isinstance(row["faq_id"], str)))
        if not ok:
            raise BadInput(f"{path.name} line {n}: need question (text, 1-500 chars), language zh/en, "
                           "faq_id text or null")
        rows.append({"id": str(row.get("id", n)), "question": row["question"], "language": row["language"],
                     "faq_id": row.get("faq_id")})
    return rows


def calibrate_command(faq_url: str, paraphrases: Path, out: Path) -> int:
    """`kefu kb calibrate`: fit on the stored FAQ (load it first) + `paraphrases`, write `out`."""
    from knowledge.faq import open_faq_store

    store = open_faq_store(faq_url, calibrator=None)
    try:
        entries = store.export()
        if not entries:
            print("kefu kb calibrate: the FAQ store is empty; run `kefu kb load` first", file=sys.stderr)
            return 1
        examples = build_examples(store, entries, read_paraphrases(paraphrases))
        calibrator, report = fit(examples, {"encoder": store.embedder.fingerprint, "entries": len(entries),
                                            "paraphrases": paraphrases.name})
    finally:
        store.close()
    out.write_text(calibrator.to_json(), encoding="utf-8")
    print("| language | examples | top hit right | unanswerable | ECE raw | ECE calibrated (OOF) | threshold (OOF) "
          "| OOF right answer | OOF wrong answer | OOF answered unanswerable |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for lang, r in report.items():
        print(f"| {lang} | {r['examples']} | {r['right_top']} | {r['unanswerable']} | {r['ece_raw']:.3f} | "
              f"{r['ece_oof']:.3f} | {r['threshold']:.3f} | {r['oof_right']:.1%} | {r['oof_wrong']:.1%} | "
              f"{r['oof_none_answered']:.1%} |")
    print(f"wrote {out}")
    return 0
