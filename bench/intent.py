"""Intent classification benchmark: Rasa's stock DIET pipeline vs EncoderFeaturizer +
BertIntentClassifier (frozen encoder, onnx-int8 and onnx-fp32) vs the same with the
encoder fine-tuned (`fine_tune: true`, int8), trained and evaluated through real Rasa on
the same splits in one run.

Datasets (read by path, never copied): BANKING77 full (train.csv / test.csv), BANKING77
10-shot (10 per intent from train.csv, seeds 0, 1, 2, full test.csv), SMP2019-ECDT
(train.json, stratified 80/20, seed 42). Each model is trained with
rasa.model_training.train_nlu, loaded with Agent.load and every test message is parsed
with `await agent.parse_message(text)`, one message per call. Nothing is tuned on a test split.

With --calibration (on by default) each dataset also gets the calibration section of
bench/_intent_calibration.py: ECE / Brier / NLL before and after calibration, reliability
diagrams (PNG under --out) and automation shares at thresholds chosen for target precisions
on out-of-fold training predictions, for the default pipeline through kefu.intent_head.
`--only-calibration` (or `--pipelines none`) runs that section alone, without Rasa.

    python bench/intent.py --datasets-dir ../shared/datasets \
        [--datasets banking77,banking77_10shot,smp2019] [--pipelines stock,encoder,finetune] \
        [--diet-epochs 100] [--fine-tune-epochs 5] [--fine-tune-lr 1e-4] \
        [--latency-samples 500] [--out bench/out/intent] [--no-calibration | --only-calibration]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import _intent_calibration as calibration  # noqa: E402
from _intent_data import DATASETS, Split, load_splits  # noqa: E402
from _intent_rasa import RunResult, Variant, run, variants  # noqa: E402
from rasa.utils.log_utils import configure_structlog  # noqa: E402

ENCODER_DIR = ROOT / "models" / "encoder" / "multilingual-e5-small"
TITLES = {
    "banking77": "BANKING77 full (train.csv / test.csv)",
    "banking77_10shot": "BANKING77 10-shot (10 per intent from train.csv, seeds 0, 1, 2; full test.csv)",
    "smp2019": "SMP2019-ECDT train.json (label domain.intent, stratified 80/20, seed 42)",
}
ANCHORS = {
    "banking77": ("BANKING77 full: accuracy >= 93.7% (BERT-tuned 93.66, Casanueva et al. 2020)", 0.937),
    "banking77_10shot": ("BANKING77 10-shot: accuracy >= 85.2% (USE+ConveRT 85.19, Casanueva et al. 2020)", 0.852),
    "smp2019": ("SMP2019-ECDT: no published anchor for this split (our own 80/20 split of train.json)", None),
}
P95_TARGET_MS = 20.0
def mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"


def stat(values: List[float], fmt: Callable[[float], str]) -> str:
    """One value as is; several (10-shot seeds) as mean ± sample std."""
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.mean(values))} ± {fmt(statistics.stdev(values))}"


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def table(header: List[str], rows: List[List[str]]) -> List[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def band_rows(results: Dict[str, List[RunResult]], names: Dict[str, Variant]) -> List[List[str]]:
    rows = []
    for key, runs in results.items():
        conf = np.concatenate([r.confidences for r in runs])
        correct = np.concatenate([r.correct for r in runs])
        cells = [
            names[key].pipeline,
            names[key].runtime,
            pct(float(np.mean(conf >= 0.9))),
            pct(float(np.mean(conf >= 0.7))),
        ]
        for mask in (conf >= 0.9, (conf >= 0.7) & (conf < 0.9), conf < 0.7):
            n = int(mask.sum())
            cells.append(f"{pct(float(correct[mask].mean()))} (n={n})" if n else "- (n=0)")
        rows.append(cells)
    return rows


def report(
    dataset: str,
    splits: List[Split],
    results: Dict[str, List[RunResult]],
    failures: Dict[str, str],
    names: Dict[str, Variant],
    args: argparse.Namespace,
) -> List[str]:
    first = splits[0]
    lines = [f"## {TITLES[dataset]}", ""]
    some = next(iter(results.values()), [None])[0]
    lines.append(
        f"- train {len(first.train)} / test {len(first.test)} messages, "
        f"{len({i for _, i in first.train})} train intents, {len({i for _, i in first.test})} test intents"
        + (
            f"; Rasa YAML{' (first seed)' if len(splits) > 1 else ''}: {some.duplicates} duplicate "
            f"(text, intent) pairs merged, {some.dropped} examples dropped because Rasa's reader did not "
            "return them unchanged"
            if some
            else ""
        )
    )
    lines += [f"- {note}" for note in dict.fromkeys(n for s in splits for n in s.notes)]
    if len(splits) > 1:
        lines.append(
            f"- {len(splits)} seeds ({', '.join(str(s.seed) for s in splits)}): mean ± sample std "
            "(ddof=1) across seeds; per-seed accuracies in brackets"
        )
    lines.append(
        f"- macro-F1 over the test set's intents; parse latency over the first {args.latency_samples} test "
        "messages, one `agent.parse_message` call each (after 5 warm-up calls)"
    )
    lines.append("")
    header = [
        "pipeline",
        "runtime",
        "accuracy",
        "macro-F1",
        "training time (s)",
        "parse p50 (ms)",
        "parse p95 (ms)",
        "model .tar.gz",
    ]
    rows = []
    for key, runs in results.items():
        acc = stat([r.accuracy for r in runs], pct)
        if len(runs) > 1:
            acc += " [" + ", ".join(pct(r.accuracy) for r in runs) + "]"
        rows.append(
            [
                names[key].pipeline,
                names[key].runtime,
                acc,
                stat([r.macro_f1 for r in runs], lambda x: f"{x:.4f}"),
                stat([r.train_s for r in runs], lambda x: f"{x:.1f}"),
                stat([r.p50_ms for r in runs], lambda x: f"{x:.1f}"),
                stat([r.p95_ms for r in runs], lambda x: f"{x:.1f}"),
                stat([float(r.archive_bytes) for r in runs], lambda x: mb(int(x))),
            ]
        )
    for key, error in failures.items():
        rows.append([names[key].pipeline, names[key].runtime, f"FAILED: {error}", *["-"] * 5])
    lines += table(header, rows)
    if "encoder" in args.pipelines:
        lines += [
            "",
            "(b) archives hold the pipeline config and the classifier head only; the encoder is "
            f"referenced by path ({ENCODER_DIR.relative_to(ROOT)}): {encoder_sizes()}.",
        ]
    if "finetune" in args.pipelines:
        lines += [
            "",
            "(c) archives contain the fine-tuned encoder itself (int8 ONNX + tokenizer), so their size is the "
            "whole deployable model; its training time includes fine-tuning, ONNX export and quantisation.",
        ]
    lines += ["", "Published anchors vs this run:", f"- {ANCHORS[dataset][0]}"]
    lines += [f"- {line}" for line in anchor_checks(dataset, results, names)]
    enc = {k: v for k, v in results.items() if names[k].key.startswith(("encoder", "finetune"))}
    stock = {k: v for k, v in results.items() if names[k].key == "stock"}
    if enc or stock:
        lines += [
            "",
            "Risk-coverage (top-intent confidence; pooled over seeds where there are several; the stock "
            "row is for reference):",
            "",
        ]
        lines += table(
            [
                "pipeline",
                "runtime",
                "coverage conf >= 0.9",
                "coverage conf >= 0.7",
                "accuracy conf >= 0.9",
                "accuracy 0.7 <= conf < 0.9",
                "accuracy conf < 0.7",
            ],
            band_rows({**enc, **stock}, names),
        )
    return lines + [""]


def encoder_sizes() -> str:
    int8, fp32 = ENCODER_DIR / "model.int8.onnx", ENCODER_DIR / "model.onnx"
    if not (int8.exists() and fp32.exists()):
        return "encoder files missing"
    a, b = int8.stat().st_size, fp32.stat().st_size
    return f"model.int8.onnx {mb(a)} vs model.onnx {mb(b)} ({100 * (1 - a / b):.1f}% smaller)"


def anchor_checks(dataset: str, results: Dict[str, List[RunResult]], names: Dict[str, Variant]) -> List[str]:
    out: List[str] = []
    target = ANCHORS[dataset][1]
    mean_acc = {k: statistics.mean(r.accuracy for r in v) for k, v in results.items()}
    for key, acc in mean_acc.items():
        if target is not None:
            verdict = "met" if acc >= target else f"NOT met ({100 * (acc - target):+.2f} points)"
            out.append(f"{names[key].runtime}: accuracy {pct(acc)} -> {verdict}")
    if "encoder-int8" in results:
        p95 = statistics.mean(r.p95_ms for r in results["encoder-int8"])
        out.append(
            f"parse p95 <= {P95_TARGET_MS:.0f} ms with int8: {p95:.1f} ms -> "
            f"{'met' if p95 <= P95_TARGET_MS else 'NOT met'}"
        )
    if "encoder-int8" in mean_acc and "encoder-fp32" in mean_acc:
        int8, fp32 = ENCODER_DIR / "model.int8.onnx", ENCODER_DIR / "model.onnx"
        smaller = 1 - int8.stat().st_size / fp32.stat().st_size
        loss = 100 * (mean_acc["encoder-fp32"] - mean_acc["encoder-int8"])
        ok = smaller >= 0.6 and loss <= 1.0
        out.append(
            f"int8 >= 60% smaller than fp32 with <= 1 point accuracy loss: {100 * smaller:.1f}% smaller, "
            f"{loss:+.2f} points (fp32 - int8) -> {'met' if ok else 'NOT met'}"
        )
    return out


def component_settings() -> str:
    from custom_components.bert_intent_classifier import BertIntentClassifier  # lazy: TensorFlow, after main's env
    from custom_components.encoder_featurizer import EncoderFeaturizer  # lazy: TensorFlow, after main's env

    enc = EncoderFeaturizer.get_default_config()
    head = BertIntentClassifier.get_default_config()
    return (
        f"EncoderFeaturizer model={enc['model']}, pooling={enc['pooling']}, max_length={enc['max_length']}, "
        f"cache_dir=null; BertIntentClassifier head={head['head']}, C={head['C']}, max_iter={head['max_iter']}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--pipelines", default="stock,encoder,finetune", help="comma list, or none")
    parser.add_argument("--diet-epochs", type=int, default=100)
    parser.add_argument("--fine-tune-epochs", type=int, default=5)
    parser.add_argument("--fine-tune-lr", type=float, default=1e-4)
    parser.add_argument("--latency-samples", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "intent")
    parser.add_argument(
        "--calibration",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="calibration / reliability / automation-share section (default pipeline, Rasa-free)",
    )
    parser.add_argument("--only-calibration", action="store_true", help="the calibration section only (no Rasa)")
    args = parser.parse_args()
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip() and p.strip() != "none"]
    if args.only_calibration:
        args.pipelines, args.calibration = [], True
    bad = [d for d in args.datasets if d not in DATASETS] + [
        p for p in args.pipelines if p not in ("stock", "encoder", "finetune")
    ]
    nothing = not args.pipelines and not args.calibration
    if bad or not args.datasets or nothing or args.diet_epochs < 1 or args.latency_samples < 1:
        parser.error(f"bad --datasets/--pipelines/--diet-epochs/--latency-samples {bad or ''}")
    return args


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="kefu-intent-") as tmp:
        # no Rasa training cache: every model trains from scratch, so training times are honest
        os.environ.update(
            RASA_TELEMETRY_ENABLED="false",
            HF_HUB_OFFLINE="1",
            TF_CPP_MIN_LOG_LEVEL="2",
            RASA_MAX_CACHE_SIZE="0",
            RASA_CACHE_DIRECTORY=str(Path(tmp) / "cache"),
        )
        if args.pipelines:
            configure_structlog(logging.WARNING)
        warnings.filterwarnings("ignore")  # after importing rasa, which installs its own filters
        features = calibration.FeatureCache(calibration.pipeline_settings()) if args.calibration else None
        names = {v.key: v for v in variants(args.pipelines, args.diet_epochs, args.fine_tune_epochs, args.fine_tune_lr)}
        lines = [f"# Intent benchmark ({time.strftime('%Y-%m-%d %H:%M')})", "", f"Command: `{' '.join(sys.argv)}`", ""]
        if "encoder" in args.pipelines:
            lines += [f"(b) component settings at run time (working tree defaults): {component_settings()}", ""]
        for dataset in args.datasets:
            splits = load_splits(dataset, args.datasets_dir.resolve())
            results: Dict[str, List[RunResult]] = {}
            failures: Dict[str, str] = {}
            for variant in names.values():
                for split in splits:
                    if variant.key in failures:
                        break
                    label = f"{dataset}{'' if split.seed is None or len(splits) == 1 else f' seed {split.seed}'}"
                    print(f"\n=== {label}: {variant.key} ({variant.runtime}) ===", flush=True)
                    work = Path(tmp) / f"{dataset}-{split.seed}-{variant.key}"
                    t0 = time.monotonic()
                    result: Optional[RunResult] = None
                    try:
                        result = run(split, variant, work, args.latency_samples)
                    except Exception as exc:  # report the failure in the table, never a number
                        traceback.print_exc()
                        failures[variant.key] = f"{type(exc).__name__}: {exc}"[:200]
                        results.pop(variant.key, None)
                    finally:
                        shutil.rmtree(work, ignore_errors=True)
                    if result is not None:
                        results.setdefault(variant.key, []).append(result)
                        print(
                            f"=== {label}: {variant.key}: accuracy {pct(result.accuracy)}, "
                            f"{time.monotonic() - t0:.0f} s wall ===",
                            flush=True,
                        )
            if names:
                lines += report(dataset, splits, results, failures, names, args)
            else:
                lines += [f"## {TITLES[dataset]}", ""]
            if features is not None:
                lines += calibration.run_dataset(dataset, TITLES[dataset], splits, features, args.out, stamp)
        lines.append(f"Total wall time: {time.monotonic() - started:.0f} s")
    text = "\n".join(lines)
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    parts = args.pipelines + (["calibration"] if args.calibration else [])
    path = args.out / f"intent-{stamp}-{'_'.join(args.datasets)}-{'_'.join(parts)}.md"
    path.write_text(text + "\n", encoding="utf-8")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
