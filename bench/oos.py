"""Out-of-scope detection benchmark: held-out intents, no out-of-scope training examples.

Protocol. Datasets are read by path from --datasets-dir (never copied): BANKING77
train.csv / test.csv and SMP2019-ECDT train.json with bench/_intent_data.py's fixed
stratified 80/20 split (seed 42). For each intent split seed (0, 1, 2) 25 % of the
training labels are hidden (random.Random(seed).sample over the sorted labels): models
train on the training examples of the other 75 % and score the FULL test split, whose
messages of hidden intents are out of scope (OOS, the positive class).

Detectors:
- ours: sentence vectors from the project's encoder exactly as EncoderFeaturizer makes
  them (settings read from rasa_project/config.yml), kefu.intent_head.train_intent_model
  (BertIntentClassifier's settings from the same config, Targets() defaults); three
  scores: the shipped combined score (`model.predict`), the Mahalanobis distance alone
  (`model.oos.distances.distance`) and 1 - calibrated top-1 confidence alone;
- baseline: Rasa's stock DIET pipeline trained and parsed through real Rasa
  (bench/_intent_rasa.py), score 1 - DIET's intent confidence, which is what
  FallbackClassifier thresholds. DIET runs fewer epochs than its default 100 (--diet-epochs).

Metrics per dataset, mean ± sample std over the 3 splits: AUROC; FPR at 95 % in-scope
recall (share of OOS messages not flagged when the threshold keeps 95 % of in-scope test
messages); in-scope accuracy at 60 % OOS recall (share of in-scope messages that are
accepted AND correctly classified, threshold flags 60 % of OOS messages) and the accuracy
among accepted in-scope messages; and what a threshold fixed WITHOUT test data gives (ours:
model.oos.threshold, chosen on out-of-fold training scores; DIET: the FallbackClassifier
threshold of rasa_project/config.yml). The 95 % / 60 % operating points are measured on the
test split by definition of the metric; nothing is chosen or tuned on it.

    python bench/oos.py --datasets-dir ../shared/datasets [--datasets banking77,smp2019] \
        [--seeds 0,1,2] [--detectors ours,diet] [--diet-epochs banking77=6,smp2019=20] \
        [--fallback-threshold 0.5] [--out bench/out/oos]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import yaml  # noqa: E402
from _intent_calibration import CONFIG, FeatureCache, pipeline_settings  # noqa: E402
from _intent_data import banking77, smp2019  # noqa: E402
from _oos_eval import (  # noqa: E402
    IN_SCOPE_RECALL,
    KNOWN_SHARE,
    OOS_RECALL,
    Task,
    make_task,
    run_diet,
    run_ours,
)
from rasa.utils.log_utils import configure_structlog  # noqa: E402

DATASETS = ("banking77", "smp2019")
TARGETS = "kefu.thresholds.Targets() defaults"
TITLES = {"banking77": "BANKING77 (train.csv / test.csv)",
          "smp2019": "SMP2019-ECDT train.json (label domain.intent, fixed stratified 80/20 split, seed 42)"}
DEFAULT_DIET_EPOCHS = {"banking77": 6, "smp2019": 20}
ROWS = ("combined", "distance", "unconfidence", "diet")


def row_name(key: str, epochs: int) -> str:
    return {"combined": "ours, shipped: combined rank (distance + 1 − calibrated confidence)",
            "distance": "ours: Mahalanobis distance only",
            "unconfidence": "ours: 1 − calibrated confidence only",
            "diet": f"baseline: 1 − stock DIET confidence ({epochs} epochs; FallbackClassifier)"}[key]


def fixed_name(key: str, recall: float, fallback: float) -> str:
    q = f"{100 * recall:.0f}% quantile"
    return {"combined": f"shipped model.oos.threshold ({q} of out-of-fold training scores)",
            "distance": f"{q} of out-of-fold training distances",
            "unconfidence": f"{q} of out-of-fold training 1 − confidence",
            "diet": f"FallbackClassifier threshold {fallback:g} (confidence < {fallback:g} flagged)"}[key]


def fallback_from_config(config: Path = CONFIG) -> float:
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    for step in doc.get("pipeline") or []:
        if step.get("name") == "FallbackClassifier":
            return float(step.get("threshold", 0.3))
    return 0.3  # Rasa's default


def load_tasks(dataset: str, root: Path, seeds: List[int]) -> List[Task]:
    split = banking77(root) if dataset == "banking77" else smp2019(root)
    return [make_task(split, seed) for seed in seeds]


# --- reporting ------------------------------------------------------------------------------------


def stat(values: List[float], fmt: Callable[[float], str]) -> str:
    values = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "-"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.mean(values))} ± {fmt(statistics.stdev(values))}"


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def num(x: float) -> str:
    return f"{x:.4f}"


def table(header: List[str], rows: List[List[str]]) -> List[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def summarise(runs: List[Dict[str, Any]], key: str) -> Dict[str, List[float]]:
    """metric -> [mean, sample std] over the splits that have this row."""
    found = [r["results"][key] for r in runs if key in r.get("results", {})]
    out: Dict[str, List[float]] = {}
    for metric in found[0] if found else {}:
        values = [f[metric] for f in found]
        out[metric] = [statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0]
    return out


def report(dataset: str, tasks: List[Task], state: Dict[str, Any], args: argparse.Namespace) -> List[str]:
    info = [t.describe() for t in tasks]
    lines = [f"## {TITLES[dataset]}", ""]
    lines.append(f"- intent splits (seeds {', '.join(str(t.seed) for t in tasks)}): {len(tasks[0].known)} known / "
                 f"{len(tasks[0].hidden)} hidden intents ({100 * KNOWN_SHARE:.0f}% / {100 - 100 * KNOWN_SHARE:.0f}% "
                 "of the training labels); mean ± sample std (ddof=1) over the splits")
    per_split = "; ".join(f"seed {i['seed']}: train {i['n_train']}, test {i['n_test_in_scope']} in-scope + "
                          f"{i['n_test_oos']} OOS ({i['hidden_with_test_messages']} hidden intents with test "
                          "messages)" for i in info)
    lines.append(f"- {per_split}")
    ours = state.get("ours", {}).get(dataset, [])
    diet = state.get("diet", {}).get(dataset, [])
    epochs = args.diet_epochs[dataset]
    if ours:
        lines.append(f"- ours: train_intent_model {stat([r['train_s'] for r in ours], lambda x: f'{x:.0f}')} s per "
                     f"split ({ours[0]['folds']}-fold out-of-fold), temperature per split: "
                     + ", ".join(f"{r['temperature']:.3f}" for r in ours if r.get("temperature") is not None))
    if diet:
        lines.append(f"- DIET: stock pipeline (CountVectors word + char_wb 1-4, DIETClassifier {epochs} epochs, "
                     f"not the default 100), rasa train nlu {stat([r['train_s'] for r in diet], lambda x: f'{x:.0f}')}"
                     f" s per split; {diet[0]['duplicates']} duplicate pairs merged, {diet[0]['dropped']} dropped "
                     "by Rasa's reader (first split)")
    for what, runs in (("ours", ours), ("diet", diet)):
        for run in runs:
            if "error" in run:
                lines.append(f"- {what} seed {run['seed']} FAILED: {run['error']}")
    rows, fixed_rows = [], []
    for key in ROWS:
        runs = diet if key == "diet" else ours
        found = [r["results"][key] for r in runs if key in r.get("results", {})]
        if not found:
            continue

        def col(metric: str, fmt: Callable[[float], str], found: List[Dict[str, float]] = found) -> str:
            return stat([x[metric] for x in found], fmt)

        rows.append([row_name(key, epochs), col("auroc", num), col("fpr_at_95", pct),
                     col("in_scope_accuracy_at_60", pct), col("accepted_accuracy_at_60", pct),
                     col("accepted_share_at_60", pct), col("oos_recall_at_60", pct), col("closed_set_accuracy", pct)])
        fixed_rows.append([row_name(key, epochs), fixed_name(key, IN_SCOPE_RECALL, args.fallback_threshold),
                           col("fixed_threshold", num), col("fixed_in_scope_recall", pct), col("fixed_oos_recall", pct),
                           col("fixed_in_scope_accuracy", pct)])
    lines += ["", f"OOS = positive class; flagged when score > threshold. Operating points on the test split: "
              f"FPR at {100 * IN_SCOPE_RECALL:.0f}% in-scope recall; in-scope accuracy (accepted AND correct, over "
              f"all in-scope messages) when {100 * OOS_RECALL:.0f}% of OOS messages are flagged.", ""]
    lines += table(["detector / score", "AUROC", f"FPR@{100 * IN_SCOPE_RECALL:.0f}",
                    f"in-scope acc @{100 * OOS_RECALL:.0f}% OOS recall", "acc among accepted in-scope",
                    "in-scope accepted", "OOS recall achieved", "closed-set in-scope acc (no rejection)"], rows)
    lines += ["", "Thresholds fixed without test data (ours: from out-of-fold training predictions; DIET: the "
              "project's FallbackClassifier setting), measured on the test split:", ""]
    lines += table(["detector / score", "threshold chosen as", "threshold", "in-scope recall", "OOS recall",
                    "in-scope acc (accepted AND correct)"], fixed_rows)
    return lines + [""]


# --- orchestration --------------------------------------------------------------------------------


def parse_epochs(value: str) -> Dict[str, int]:
    if value.strip().isdigit():
        return dict.fromkeys(DATASETS, int(value))
    epochs = dict(DEFAULT_DIET_EPOCHS)
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, _, number = part.partition("=")
        if name not in DATASETS or not number.isdigit() or int(number) < 1:
            raise argparse.ArgumentTypeError(f"bad --diet-epochs part {part!r}")
        epochs[name] = int(number)
    return epochs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0,1,2", help="intent split seeds")
    parser.add_argument("--detectors", default="ours,diet", help="comma list of ours, diet")
    parser.add_argument("--diet-epochs", type=parse_epochs, default=dict(DEFAULT_DIET_EPOCHS),
                        help="N for every dataset, or dataset=N pairs (default banking77=6,smp2019=20)")
    parser.add_argument("--fallback-threshold", type=float, default=None,
                        help="DIET's fixed threshold (default: FallbackClassifier's in rasa_project/config.yml)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "oos")
    args = parser.parse_args()
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    bad = [d for d in args.datasets if d not in DATASETS] + [d for d in args.detectors if d not in ("ours", "diet")]
    if bad or not args.datasets or not args.detectors or not args.seeds:
        parser.error(f"bad --datasets/--detectors/--seeds {bad or ''}")
    if args.fallback_threshold is None:
        args.fallback_threshold = fallback_from_config()
    return args


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"oos-{stamp}-{'_'.join(args.datasets)}-{'_'.join(args.detectors)}.json"
    settings = pipeline_settings()
    state: Dict[str, Any] = {"command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%d %H:%M"),
                             "settings": f"{settings.describe()}; {TARGETS}", "diet_epochs": args.diet_epochs,
                             "fallback_threshold": args.fallback_threshold, "tasks": {}, "summary": {}}
    tasks = {d: load_tasks(d, args.datasets_dir.resolve(), args.seeds) for d in args.datasets}
    state["tasks"] = {d: [t.describe() for t in ts] for d, ts in tasks.items()}

    def save() -> None:
        for dataset in args.datasets:
            runs = {"ours": state.get("ours", {}).get(dataset, []), "diet": state.get("diet", {}).get(dataset, [])}
            state["summary"][dataset] = {key: summarise(runs["diet" if key == "diet" else "ours"], key)
                                         for key in ROWS}
        state["wall_s"] = round(time.monotonic() - started, 1)
        json_path.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")

    with tempfile.TemporaryDirectory(prefix="kefu-oos-") as tmp:
        os.environ.update(RASA_TELEMETRY_ENABLED="false", HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2",
                          RASA_MAX_CACHE_SIZE="0", RASA_CACHE_DIRECTORY=str(Path(tmp) / "cache"))
        if "diet" in args.detectors:
            configure_structlog(logging.WARNING)
        warnings.filterwarnings("ignore")  # after importing rasa, which installs its own filters
        features = FeatureCache(settings)
        for detector in ("ours", "diet"):  # ours first: minutes, DIET: most of the run
            if detector not in args.detectors:
                continue
            for dataset in args.datasets:
                for task in tasks[dataset]:
                    label = f"{dataset} seed {task.seed}: {detector}"
                    print(f"\n=== {label} ===", flush=True)
                    t0 = time.monotonic()
                    try:
                        if detector == "ours":
                            run = run_ours(task, features)
                        else:
                            work = Path(tmp) / f"{dataset}-{task.seed}"
                            try:
                                run = run_diet(task, args.diet_epochs[dataset], work, args.fallback_threshold)
                            finally:
                                shutil.rmtree(work, ignore_errors=True)
                    except Exception as exc:  # reported in the output, never as a number
                        traceback.print_exc()
                        run = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                    run["seed"] = task.seed
                    state.setdefault(detector, {}).setdefault(dataset, []).append(run)
                    save()
                    aucs = ", ".join(f"{k} {v['auroc']:.4f}" for k, v in run.get("results", {}).items())
                    print(f"=== {label}: AUROC {aucs or 'FAILED'}; {time.monotonic() - t0:.0f} s wall ===", flush=True)
    lines = [f"# Out-of-scope detection: held-out intents ({state['started']})", "",
             f"Command: `{state['command']}`", "", f"- ours: {settings.describe()}; {TARGETS}; encoding "
             f"{features.seconds:.0f} s for all texts of the run",
             "- DIET epochs (default 100 not affordable on 2 cores): "
             + ", ".join(f"{d} {args.diet_epochs[d]}" for d in args.datasets), ""]
    for dataset in args.datasets:
        lines += report(dataset, tasks[dataset], state, args)
    lines.append(f"Total wall time: {time.monotonic() - started:.0f} s")
    save()
    text = "\n".join(lines)
    print("\n" + text)
    md_path = json_path.with_suffix(".md")
    md_path.write_text(text + "\n", encoding="utf-8")
    print(f"\nwritten to {json_path} and {md_path}")


if __name__ == "__main__":
    main()
