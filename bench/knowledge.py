"""Knowledge benchmark: FAQ retrieval quality per signal, latency, and answer-cache hit rate.

    .venv/bin/python bench/knowledge.py            # embedded PostgreSQL in a temp dir (pgvector)
    KEFU_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/knowledge.py

Test set: data/knowledge/paraphrases/paraphrases.jsonl — customer phrasings not verbatim in the
FAQ, each labelled with its FAQ id or null (no correct answer). Rows alternate dev/test.

Which rows choose what:
  dev half (even rows)   the no-answer threshold of each mode; the fusion (knowledge/search.py
                         FUSION: family by 5-fold cross-validation on the dev half, then its
                         parameters on the whole dev half, as the "fusion selection" table shows);
                         the raw confidence (knowledge/search.py CALIBRATION)
  test half (odd rows)   nothing: reported only
  hold-out set           nothing: reported only (data/knowledge/paraphrases/holdout.jsonl)
Answer calibration (issue 18): the calibrated answer confidence and "no answer" decision
(knowledge/calibrator.py, fitted out-of-fold on the FAQ and the whole paraphrase set by
`kefu kb calibrate`) are evaluated on the hold-out set and data/knowledge_eval/questions.jsonl
only: ECE before/after, risk–coverage and right/wrong/abstain per language (bench/_kb_calibration.py).
`--calibration-only` prints just those tables.
Cache: 10,000 queries drawn Zipf(s=1.1) over the set's questions replayed through the service
with a Redis cache (KEFU_REDIS_URL, else a local redis-server on a free port, else skipped).
Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._kb_calibration import report as calibration_report  # noqa: E402
from kefu.pgserver import EmbeddedPostgres, ensure_database, with_database  # noqa: E402
from knowledge.cache import AnswerCache  # noqa: E402
from knowledge.content import read_faq  # noqa: E402
from knowledge.faq import open_faq_store  # noqa: E402
from knowledge.pg import get_meta  # noqa: E402
from knowledge.search import FUSION, PREVIOUS_FUSION, Fusion, fuse, prepare_query  # noqa: E402
from knowledge.service import KnowledgeService  # noqa: E402
from tests.servers import drop_database, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PARAPHRASES = ROOT / "data" / "knowledge" / "paraphrases" / "paraphrases.jsonl"
# Written after the FAQ alternatives were last edited and never used to choose anything: a check on
# how far the main set's numbers carry over to unseen phrasings.
HOLDOUT = ROOT / "data" / "knowledge" / "paraphrases" / "holdout.jsonl"
# Written for issue 18 independently of the FAQ and both paraphrase files; evaluation only.
EVALUATION = ROOT / "data" / "knowledge_eval" / "questions.jsonl"
MODES = {"full-text": ("fts",), "trigram": ("trgm",), "vector": ("vector",), "hybrid": ("fts", "trgm", "vector")}


def load_set(path: Path = PARAPHRASES) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score_of(result, mode: str) -> float:
    """The number a mode thresholds on for 'no answer': raw signal for ablations, confidence for hybrid."""
    if mode == "hybrid":
        return result.confidence
    return result.scores.get(MODES[mode][0], 0.0)


def evaluate(rows: list[dict], preds: list[list], mode: str, threshold: float) -> dict[str, float]:
    answerable = [(r, p) for r, p in zip(rows, preds, strict=False) if r["faq_id"]]
    top1 = sum(1 for r, p in answerable if p and p[0].entry.id == r["faq_id"])
    served = 0
    for r, p in zip(rows, preds, strict=True):
        answered = bool(p) and score_of(p[0], mode) >= threshold
        served += (answered and p[0].entry.id == r["faq_id"]) or (not answered and not r["faq_id"])
    top3 = sum(1 for r, p in answerable if r["faq_id"] in [x.entry.id for x in p[:3]])
    said_none = [r for r, p in zip(rows, preds, strict=False) if not p or score_of(p[0], mode) < threshold]
    none_total = sum(1 for r in rows if not r["faq_id"])
    none_right = sum(1 for r in said_none if not r["faq_id"])
    return {
        "top1": top1 / max(len(answerable), 1), "top3": top3 / max(len(answerable), 1),
        "na_precision": none_right / len(said_none) if said_none else 0.0,
        "na_recall": none_right / max(none_total, 1), "threshold": threshold, "served": served / max(len(rows), 1),
    }


def choose_threshold(rows: list[dict], preds: list[list], mode: str) -> float:
    """Threshold maximising overall correctness (right top-1 or right 'no answer') on these rows."""
    candidates = sorted({round(score_of(p[0], mode), 4) for p in preds if p} | {0.0})
    best, best_t = -1.0, 0.0
    for t in candidates:
        right = 0
        for r, p in zip(rows, preds, strict=False):
            answered = bool(p) and score_of(p[0], mode) >= t
            right += (answered and p[0].entry.id == r["faq_id"]) or (not answered and not r["faq_id"])
        if right > best:
            best, best_t = right, t
    return best_t


def signal_rankings(store, rows: list[dict]) -> list[dict]:
    """Each question's per-signal candidate rankings, exactly as the store's hybrid search sees them."""
    out = []
    with store.db.connection() as conn:
        version = int(get_meta(conn, "version", "0") or 0)
        for r in rows:
            text, lang = prepare_query(r["question"], r["language"])
            out.append(store.index.rankings(conn, text, lang, store.embedder.embed_query(text), version))
    return out


def top1_rate(fusion: Fusion, items: list[tuple[str, dict]]) -> float:
    """Top-1 accuracy of `fusion` over [(label, rankings)] (answerable rows only)."""
    right = 0
    for label, rankings in items:
        hits = fuse(rankings, fusion)
        right += bool(hits) and hits[0].ref == label
    return right / max(len(items), 1)


LEXICAL = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2)
FAMILIES: dict[str, list[Fusion]] = {
    "vector (best phrase)": [Fusion("score", (("vector", 1.0),))],
    "vector + 2nd phrase": [Fusion("score", (("vector", 1.0),), second=a) for a in (0.1, 0.2, 0.3)],
    "score sum": [Fusion("score", (("vector", 1.0), ("fts", f), ("trgm", t)), second=a)
                  for a in (0.0, 0.1, 0.2, 0.3) for f in LEXICAL for t in LEXICAL],
    "weighted RRF": [Fusion("rrf", (("vector", 1.0), ("fts", f), ("trgm", t)), k=k)
                     for k in (1, 3, 10, 30, 60) for f in (0.0, 0.1, 0.3, 0.5, 1.0) for t in (0.0, 0.1, 0.3, 0.5, 1.0)],
}


def choose(grid: list[Fusion], items: list[tuple[str, dict]]) -> Fusion:
    """The best of `grid` on `items`; ties go to the smallest lexical weights (the simplest fusion)."""
    return max(grid, key=lambda f: (top1_rate(f, items), -sum(w for s, w in f.weights if s != "vector"),
                                    -f.second, -f.k))


def fusion_selection(dev: list[tuple[str, dict]], test: list[tuple[str, dict]], hold: list[tuple[str, dict]]) -> None:
    """Pick the fusion on the dev half only: 5-fold CV per family, then parameters on the whole half."""
    rng = np.random.default_rng(7)
    folds = np.array_split(rng.permutation(len(dev)), 5)
    print("\nfusion selection: the dev half chooses (5-fold CV estimate per family, then the parameters on the "
          "whole dev half); test half and hold-out are only reported (top-1 on answerable questions)")
    print("| fusion | CV top-1 (dev, 5-fold) | chosen on dev | top-1 (dev) | top-1 (test) | top-1 (hold-out) |")
    print("|---|---|---|---|---|---|")
    best_cv, selected = -1.0, None
    for family, grid in FAMILIES.items():
        right = 0.0
        for fold in folds:
            held = set(fold.tolist())
            train = [it for i, it in enumerate(dev) if i not in held]
            right += top1_rate(choose(grid, train), [dev[i] for i in held]) * len(held)
        cv = right / len(dev)
        chosen = choose(grid, dev)
        if cv > best_cv:
            best_cv, selected = cv, chosen
        print(f"| {family} | {cv:.1%} | {chosen.describe()} | {top1_rate(chosen, dev):.1%} | "
              f"{top1_rate(chosen, test):.1%} | {top1_rate(chosen, hold):.1%} |")
    for name, fusion in (("in production (FUSION)", FUSION), ("previous (tuned on the whole set)", PREVIOUS_FUSION)):
        print(f"| {name} | – | {fusion.describe()} | {top1_rate(fusion, dev):.1%} | {top1_rate(fusion, test):.1%} | "
              f"{top1_rate(fusion, hold):.1%} |")
    same = selected is not None and selected == FUSION
    print(f"\nselected by the dev half: {selected.describe() if selected else '-'}; "
          f"production uses {'the same' if same else 'a DIFFERENT fusion: update knowledge/search.py FUSION'}")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q)) if values else float("nan")


def start_redis() -> tuple[str | None, subprocess.Popen | None, str]:
    if os.environ.get("KEFU_REDIS_URL"):
        return os.environ["KEFU_REDIS_URL"], None, "KEFU_REDIS_URL"
    binary = shutil.which("redis-server")
    if not binary:
        return None, None, "no redis-server on PATH"
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0", proc, f"local redis-server :{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replay", type=int, default=10_000)
    parser.add_argument("--dump", type=Path, help="write per-query features (for calibration) as JSONL")
    parser.add_argument("--calibration-only", action="store_true",
                        help="only the answer-calibration tables on the hold-out and evaluation sets")
    args = parser.parse_args()
    server = None
    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-kb-"))
    configured = os.environ.get("KEFU_POSTGRES_URL")
    if configured:
        url = with_database(configured, f"kefu_bench_{uuid.uuid4().hex[:6]}")
    else:
        server = EmbeddedPostgres(tmp / "pg", delete_on_stop=True)
        url = with_database(server.start(), "kefu_bench")
    ensure_database(url)
    redis_proc = None
    try:
        store = open_faq_store(url)
        t0 = time.perf_counter()
        counts = store.upsert(read_faq(ROOT / "data" / "knowledge"))
        load_s = time.perf_counter() - t0
        rows = load_set()
        if args.calibration_only:
            calibration_report(store, {"hold-out": load_set(HOLDOUT), "knowledge_eval": load_set(EVALUATION)})
            store.close()
            return 0
        print(f"PostgreSQL: {'configured server' if configured else 'embedded'}; pgvector: {store.db.has_vector}; "
              f"FAQ entries: {counts}; load {load_s:.1f} s")
        print(f"test set: {len(rows)} questions, {sum(1 for r in rows if not r['faq_id'])} without an answer "
              f"(dev half = even rows picks each threshold, test half = odd rows)\n")
        dev = [i for i in range(len(rows)) if i % 2 == 0]
        test = [i for i in range(len(rows)) if i % 2 == 1]
        print("| mode | top-1 (test) | top-3 (test) | no-answer precision (test) | no-answer recall (test) "
              "| right answer or right 'none' (test) | top-1 (all) | threshold (dev) |")
        print("|---|---|---|---|---|---|---|---|")
        hybrid_preds = None
        thresholds: dict[str, float] = {}
        for mode, signals in MODES.items():
            preds = [store.search(r["question"], r["language"], limit=3, signals=signals) for r in rows]
            t = choose_threshold([rows[i] for i in dev], [preds[i] for i in dev], mode)
            m = evaluate([rows[i] for i in test], [preds[i] for i in test], mode, t)
            a = evaluate(rows, preds, mode, t)
            print(f"| {mode} | {m['top1']:.1%} | {m['top3']:.1%} | {m['na_precision']:.1%} | {m['na_recall']:.1%} "
                  f"| {m['served']:.1%} | {a['top1']:.1%} | {t:.3f} |")
            if mode == "hybrid":
                hybrid_preds = preds
            thresholds[mode] = t
        holdout = load_set(HOLDOUT)
        if holdout:
            print(f"\nhold-out set: {len(holdout)} questions ({sum(1 for r in holdout if not r['faq_id'])} without "
                  "an answer), thresholds from the dev half above")
            print("| mode | top-1 | top-3 | no-answer precision | no-answer recall | right answer or right 'none' |")
            print("|---|---|---|---|---|---|")
            for mode, signals in MODES.items():
                preds = [store.search(r["question"], r["language"], limit=3, signals=signals) for r in holdout]
                m = evaluate(holdout, preds, mode, thresholds[mode])
                print(f"| {mode} | {m['top1']:.1%} | {m['top3']:.1%} | {m['na_precision']:.1%} | "
                      f"{m['na_recall']:.1%} | {m['served']:.1%} |")
        answerable = [i for i, r in enumerate(rows) if r["faq_id"]]
        ranked = signal_rankings(store, rows)
        hold_ranked = signal_rankings(store, holdout)
        fusion_selection([(rows[i]["faq_id"], ranked[i]) for i in answerable if i % 2 == 0],
                         [(rows[i]["faq_id"], ranked[i]) for i in answerable if i % 2 == 1],
                         [(r["faq_id"], rk) for r, rk in zip(holdout, hold_ranked, strict=True) if r["faq_id"]])
        calibration_report(store, {"hold-out": holdout, "knowledge_eval": load_set(EVALUATION)})
        if args.dump and hybrid_preds is not None:
            with args.dump.open("w", encoding="utf-8") as f:
                for i, (r, p) in enumerate(zip(rows, hybrid_preds, strict=False)):
                    f.write(json.dumps({"i": i, "label": r["faq_id"], "hits": [
                        {"id": x.entry.id, "scores": x.scores, "ranks": x.ranks, "confidence": x.confidence}
                        for x in p]}, ensure_ascii=False) + "\n")
        # Latency of store.search (hybrid), no answer cache: cold = new query text (encoder runs),
        # warm = the same texts again (query vector from the in-process LRU, PostgreSQL pages cached).
        store.embedder._lru.clear()
        questions = [r["question"] for r in rows]
        cold, warm = [], []
        for q in questions:
            t1 = time.perf_counter()
            store.search(q, limit=3)
            cold.append(time.perf_counter() - t1)
        for q in questions:
            t1 = time.perf_counter()
            store.search(q, limit=3)
            warm.append(time.perf_counter() - t1)
        print("\n| latency of FAQ search (hybrid, no cache) | p50 ms | p95 ms | n |")
        print("|---|---|---|---|")
        print(f"| cold (encoder runs) | {pct(cold, 50):.1f} | {pct(cold, 95):.1f} | {len(cold)} |")
        print(f"| warm (query vector cached) | {pct(warm, 50):.1f} | {pct(warm, 95):.1f} | {len(warm)} |")
        redis_url, redis_proc, how = start_redis()
        if redis_url is None:
            print(f"\ncache replay skipped: {how}")
            return 0
        cache = AnswerCache(redis_url, prefix=f"kefu:bench:{uuid.uuid4().hex[:6]}")
        cache.invalidate()
        service = KnowledgeService(faq=store, cache=cache)
        rng = np.random.default_rng(11)
        order = rng.permutation(len(questions))  # popularity rank → question, random but fixed
        ranks = np.arange(1, len(questions) + 1, dtype=float)
        probs = ranks ** -1.1
        probs /= probs.sum()
        draws = rng.choice(len(questions), size=args.replay, p=probs)
        served = []
        for d in draws:
            t1 = time.perf_counter()
            service.faq_answers(questions[order[d]])
            served.append(time.perf_counter() - t1)
        stats = cache.stats()
        print(f"\ncache replay ({how}): {args.replay} queries, Zipf(s=1.1) over {len(questions)} distinct questions, "
              f"{len(set(draws.tolist()))} distinct drawn")
        print("| hit rate | hits | misses | errors | p50 ms (all) | p95 ms (all) |")
        print("|---|---|---|---|---|---|")
        print(f"| {stats['hit_rate']:.1%} | {stats['hits']} | {stats['misses']} | {stats['errors']} "
              f"| {pct(served, 50):.2f} | {pct(served, 95):.2f} |")
        print(f"\nmean hybrid search {statistics.mean(warm) * 1000:.1f} ms warm; encoder {store.embedder.runtime}")
        cache.invalidate()
        store.close()
        return 0
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        if configured:
            drop_database(with_database(configured, "postgres"), url.rsplit("/", 1)[-1].split("?")[0])
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
