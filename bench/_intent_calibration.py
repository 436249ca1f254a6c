"""Calibration and automation share of the default intent pipeline, for bench/intent.py.

Rasa-free, but the very code the Rasa components run: texts are encoded with
kefu.encoder.runtime.Encoder exactly as custom_components/encoder_featurizer.py does
(settings read from rasa_project/config.yml: model, runtime, pooling, max_length) and the
head, calibrator and threshold plan come from kefu.intent_head.train_intent_model (LR head,
C from the same config). Training pairs are de-duplicated as Rasa's reader does. The
calibrator and the thresholds are fitted on out-of-fold predictions of the TRAINING split
only; the test split is used for measuring, never for choosing anything.

Per split: ECE (15 bins), Brier, NLL and accuracy of the raw head probabilities (before)
and of the temperature- and isotonic-calibrated ones (after), on the test split; the
automation bands at thresholds chosen for the default targets vs the seed's raw 0.9 / 0.7
rule; one reliability diagram per dataset (PNG).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import yaml
from _intent_data import Split

from kefu.calibration import ECE_BINS, calibration_report, reliability_bins
from kefu.encoder.runtime import Encoder
from kefu.intent_head import HeadOptions, IntentModel, train_intent_model
from kefu.thresholds import Targets, band_stats

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "rasa_project" / "config.yml"
FEATURIZER = "custom_components.encoder_featurizer.EncoderFeaturizer"
CLASSIFIER = "custom_components.bert_intent_classifier.BertIntentClassifier"
# the default targets (data/routing.yml keys auto_precision / specialist_precision / min_band_support)
DEFAULT_TARGETS = Targets(auto_threshold=0.9, specialist_threshold=0.7, auto_precision=0.97,
                          specialist_precision=0.85, min_support=20)
RAW_RULE = (0.9, 0.7)  # the seed's rule: raw top-1 probability >= 0.9 answers, >= 0.7 goes to a specialist
METHODS = ("temperature", "isotonic")
GOAL = ("banking77", 0.75, 0.97)  # dataset, auto share, auto accuracy (temperature, default targets)


@dataclass(frozen=True)
class Settings:
    model: Path
    runtime: str
    pooling: str
    max_length: int
    batch_size: int
    head: Dict[str, Any]

    def describe(self) -> str:
        head = ", ".join(f"{k}={v}" for k, v in self.head.items())
        return (f"encoder {self.model.relative_to(ROOT) if self.model.is_relative_to(ROOT) else self.model}, "
                f"runtime {self.runtime}, pooling {self.pooling}, max_length {self.max_length} (frozen); "
                f"head: {head or 'HeadOptions defaults'}")


def pipeline_settings(config: Path = CONFIG) -> Settings:
    """The EncoderFeaturizer / BertIntentClassifier settings of the project's Rasa config."""
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    steps = {step.get("name"): step for step in doc.get("pipeline") or []}
    enc, clf = steps.get(FEATURIZER), steps.get(CLASSIFIER)
    if enc is None or clf is None:
        raise SystemExit(f"{config}: needs {FEATURIZER} and {CLASSIFIER} in its pipeline")
    model = Path(enc.get("model", "models/encoder/multilingual-e5-small"))
    keys = {"head": "head", "C": "C", "hidden_layers": "hidden_layers", "max_iter": "max_iter",
            "random_seed": "random_seed", "calibration": "calibration", "calibration_folds": "folds",
            "out_of_scope": "out_of_scope", "oos_in_scope_recall": "oos_in_scope_recall"}
    head = {option: clf[key] for key, option in keys.items() if key in clf}
    if "C" in head:
        head["C"] = float(head["C"])
    if "hidden_layers" in head:
        head["hidden_layers"] = tuple(head["hidden_layers"])
    return Settings(model if model.is_absolute() else ROOT / model, str(enc.get("runtime", "onnx-int8")),
                    str(enc.get("pooling", "mean")), int(enc.get("max_length", 128)),
                    int(enc.get("batch_size", 32)), head)


class FeatureCache:
    """Sentence features computed the way the Rasa components compute them.

    onnx-int8 quantises activations dynamically, so a batched vector would depend on its
    batch-mates; like EncoderFeaturizer, the encoder is loaded with batch_independent=True
    (text by text), so training vectors equal parse-time ones. Test messages are encoded one
    per call, as at parse time; every vector is kept for the rest of the run.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._vectors: Dict[str, np.ndarray] = {}  # every text encoded so far in this run
        self._encoder: Any = None
        self.seconds = 0.0

    def _encode(self, texts: List[str], batch_size: int) -> List[np.ndarray]:
        if self._encoder is None:
            s = self.settings
            self._encoder = Encoder.load(str(s.model), runtime=s.runtime, max_length=s.max_length,
                                             batch_independent=True)
        started = time.perf_counter()
        encoded = self._encoder.encode(texts, batch_size=batch_size)
        self.seconds += time.perf_counter() - started
        return [item.cls if self.settings.pooling == "cls" else item.sentence for item in encoded]

    def train_features(self, texts: Sequence[str]) -> np.ndarray:
        """A training split's texts: the new ones in one batched call, kept for later splits."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self._encode(missing, self.settings.batch_size), strict=True))
        return np.vstack([self._vectors[t] for t in texts]).astype(np.float32)

    def features(self, texts: Sequence[str]) -> np.ndarray:
        for text in dict.fromkeys(texts):
            if text not in self._vectors:
                self._vectors[text] = self._encode([text], 1)[0]
        return np.vstack([self._vectors[t] for t in texts]).astype(np.float32)


@dataclass
class SplitResult:
    seed: Optional[int]
    n_train: int
    duplicates: int
    n_test: int
    skipped_test: int  # test messages whose intent the head never saw
    reports: Dict[str, Dict[str, float]]  # raw | temperature | isotonic -> ECE/Brier/NLL/accuracy on test
    oof: Dict[str, Dict[str, float]]  # before / <method> -> on the out-of-fold training predictions
    params: Dict[str, str]  # method -> "T=..." / "n knots"
    bands: Dict[str, Dict[str, Any]]  # rule -> {auto, specialist, source, auto/specialist/below stats}
    bins: Dict[str, List[Dict[str, float]]]
    warnings: List[str] = field(default_factory=list)
    train_seconds: Dict[str, float] = field(default_factory=dict)


def _bands(conf: np.ndarray, ok: np.ndarray, auto: float, specialist: float) -> Dict[str, Any]:
    return {"auto_threshold": auto, "specialist_threshold": specialist,
            "auto": band_stats(conf, ok, auto), "specialist": band_stats(conf, ok, specialist, auto),
            "below": band_stats(conf, ok, -math.inf, specialist)}


def evaluate_split(split: Split, cache: FeatureCache, targets: Targets = DEFAULT_TARGETS) -> SplitResult:
    train = list(dict.fromkeys(split.train))  # Rasa keeps one copy of a repeated (text, intent)
    x_train = cache.train_features([t for t, _ in train])
    x_test_all = cache.features([t for t, _ in split.test])
    labels = [i for _, i in train]
    models: Dict[str, IntentModel] = {}
    seconds: Dict[str, float] = {}
    for method in METHODS:
        started = time.perf_counter()
        options = HeadOptions(**{**cache.settings.head, "calibration": method})
        models[method] = train_intent_model(x_train, labels, options, targets)
        seconds[method] = time.perf_counter() - started
    classes = models["temperature"].head.classes
    index = {name: i for i, name in enumerate(classes)}
    keep = np.array([intent in index for _, intent in split.test])
    x_test = x_test_all[keep]
    truth = np.array([index[intent] for _, intent in split.test if intent in index])
    raw = models["temperature"].head.predict_proba(x_test)
    probs = {"raw": raw, **{m: models[m].predict(x_test)[0] for m in METHODS}}
    warnings = []
    drift = float(np.abs(models["isotonic"].head.predict_proba(x_test) - raw).max())
    if drift > 1e-6:
        warnings.append(f"the two trainings gave different raw heads (max |dp| {drift:.2e}); 'raw' is the first")
    reports = {key: calibration_report(p, truth) for key, p in probs.items()}
    ok = {key: p.argmax(axis=1) == truth for key, p in probs.items()}
    conf = {key: p.max(axis=1) for key, p in probs.items()}
    bands = {"raw": {**_bands(conf["raw"], ok["raw"], *RAW_RULE), "source": "seed rule"}}
    oof: Dict[str, Dict[str, float]] = {}
    params: Dict[str, str] = {"raw": "none"}
    for method, model in models.items():
        plan = model.plan["thresholds"]
        src = plan["source"]
        source = (src["auto"] if src["auto"] == src["specialist"]
                  else f"auto {src['auto']}, specialist {src['specialist']}")
        bands[method] = {**_bands(conf[method], ok[method], plan["auto"], plan["specialist"]), "source": source,
                         "oof": plan["bands"]}
        cal = model.plan["calibration"]
        oof.setdefault("before", cal["before"])
        oof[method] = cal["after"]
        params[method] = (f"T={cal['temperature']:.3f}" if method == "temperature"
                          else f"{len(cal.get('iso_x') or [])} knots")
        params[method] += f", {cal['folds']}-fold"
        warnings += [f"{method}: {w}" for w in plan.get("warnings") or []]
    return SplitResult(
        seed=split.seed, n_train=len(train), duplicates=len(split.train) - len(train), n_test=int(keep.sum()),
        skipped_test=int((~keep).sum()), reports=reports, oof=oof, params=params, bands=bands,
        bins={key: reliability_bins(p, truth) for key, p in probs.items()}, warnings=warnings,
        train_seconds=seconds,
    )


# --- reporting ------------------------------------------------------------------------------


def stat(values: List[float], fmt: Callable[[float], str]) -> str:
    """One value as is; several (10-shot seeds) as mean ± sample std."""
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.mean(values))} ± {fmt(statistics.stdev(values))}"


def pct(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def num(x: float) -> str:
    return f"{x:.4f}"


def table(header: List[str], rows: List[List[str]]) -> List[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _band_cells(runs: List[SplitResult], rule: str, band: str) -> List[str]:
    shares = [r.bands[rule][band]["coverage"] for r in runs]
    accs = [r.bands[rule][band]["accuracy"] for r in runs]
    support = sum(r.bands[rule][band]["support"] for r in runs)
    acc = stat(accs, pct) if not any(math.isnan(a) for a in accs) else ", ".join(pct(a) for a in accs)
    return [stat(shares, pct), f"{acc} (n={support})"]


ROW_NAMES = {"raw": "before: raw LR probabilities", "temperature": "after: temperature (default)",
             "isotonic": "after: isotonic"}
RULE_NAMES = {"raw": "seed rule: raw >= 0.9 / >= 0.7", "temperature": "targets 0.97 / 0.85, temperature (default)",
              "isotonic": "targets 0.97 / 0.85, isotonic"}


def report_lines(dataset: str, runs: List[SplitResult], png: Optional[Path], settings: Settings,
                 encode_seconds: float) -> List[str]:
    first = runs[0]
    lines = ["### Calibration and automation share (default pipeline, Rasa-free path)", "",
             f"- {settings.describe()}; kefu.intent_head.train_intent_model, calibrators and thresholds fitted on "
             "out-of-fold predictions of the training split only; everything below is on the TEST split",
             "- features as Rasa computes them: the encoder loaded with batch_independent=True as in "
             "EncoderFeaturizer (onnx-int8 vectors computed text by text, so training and parse time agree)",
             f"- train {first.n_train} unique (text, intent) pairs ({first.duplicates} duplicates merged), test "
             f"{first.n_test} messages" + (f" ({first.skipped_test} with an intent missing from train skipped)"
                                           if first.skipped_test else "")]
    if len(runs) > 1:
        lines.append(f"- {len(runs)} seeds ({', '.join(str(r.seed) for r in runs)}): mean ± sample std (ddof=1); "
                     "band n pooled over seeds")
    seconds = {m: statistics.mean(r.train_seconds[m] for r in runs) for m in METHODS}
    lines.append(f"- train_intent_model wall time per split: temperature {seconds['temperature']:.1f} s, isotonic "
                 f"{seconds['isotonic']:.1f} s (head + k-fold); encoding so far in this run {encode_seconds:.0f} s")
    lines += ["", f"ECE ({ECE_BINS} equal-width bins of the top-1 score), Brier (multi-class), NLL, accuracy:", ""]
    rows = []
    for key in ("raw", *METHODS):
        params = [r.params[key] for r in runs]
        rows.append([ROW_NAMES[key], params[0] if len(set(params)) == 1 else "per seed: " + "; ".join(params),
                     *(stat([r.reports[key][m] for r in runs], num) for m in ("ece", "brier", "nll")),
                     stat([r.reports[key]["accuracy"] for r in runs], pct),
                     stat([r.oof["before" if key == "raw" else key]["ece"] for r in runs], num)])
    lines += table(["scores", "calibrator", "ECE", "Brier", "NLL", "accuracy", "ECE on train OOF"], rows)
    lines += ["", "Automation bands on the test split (auto: the bot answers; specialist: a skill group; below: "
              "clarify). Target thresholds chosen on out-of-fold TRAINING predictions (auto_precision 0.97, "
              f"specialist_precision 0.85, min_band_support {DEFAULT_TARGETS.min_support}):", ""]
    rows = []
    for rule in ("raw", *METHODS):
        thr = [r.bands[rule] for r in runs]
        sources = list(dict.fromkeys(b["source"] for b in thr))
        source = sources[0] if len(sources) == 1 else "; ".join(f"seed {r.seed}: {b['source']}" for r, b in zip(
            runs, thr, strict=True))
        cells = [RULE_NAMES[rule], source,
                 stat([b["auto_threshold"] for b in thr], num), stat([b["specialist_threshold"] for b in thr], num)]
        cells += _band_cells(runs, rule, "auto") + _band_cells(runs, rule, "specialist")
        cells += _band_cells(runs, rule, "below")
        rows.append(cells)
    lines += table(["rule", "source", "auto thr", "specialist thr", "auto share", "auto accuracy",
                    "specialist share", "specialist accuracy", "below share", "below accuracy"], rows)
    lines += ["", "Where the thresholds were chosen (out-of-fold training predictions, auto band):"]
    for method in METHODS:
        oofs = [r.bands[method]["oof"]["auto"] for r in runs]
        lines.append(f"- {method}: share {stat([o['coverage'] for o in oofs], pct)}, accuracy "
                     f"{stat([o['accuracy'] for o in oofs], pct)}")
    if dataset == GOAL[0]:
        auto = first.bands["temperature"]["auto"]
        met = auto["coverage"] >= GOAL[1] and auto["accuracy"] >= GOAL[2]
        lines += ["", f"Goal: default pipeline on BANKING77 full answers >= {100 * GOAL[1]:.0f}% of test messages "
                  f"automatically at >= {100 * GOAL[2]:.0f}% accuracy among them: {pct(auto['coverage'])} at "
                  f"{pct(auto['accuracy'])} -> {'met' if met else 'NOT met'}"]
    for run in runs:
        lines += [f"- WARNING{'' if run.seed is None or len(runs) == 1 else f' (seed {run.seed})'}: {w}"
                  for w in run.warnings]
    if png is not None:
        lines += ["", f"Reliability diagram{' (seed ' + str(first.seed) + ')' if len(runs) > 1 else ''}: {png}"]
    return lines + [""]


def reliability_png(path: Path, title: str, run: SplitResult) -> Path:
    import matplotlib  # lazy: only for the diagram; the Agg backend must be chosen before pyplot loads

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use("Agg")

    keys = ("raw", *METHODS)
    fig, axes = plt.subplots(2, len(keys), figsize=(5 * len(keys), 6), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1]})
    for col, key in enumerate(keys):
        top, bottom = axes[0][col], axes[1][col]
        bins = run.bins[key]
        lows = np.array([b["low"] for b in bins])
        width = 1.0 / len(bins)
        acc = np.array([b["accuracy"] for b in bins])
        conf = np.array([b["confidence"] for b in bins])
        counts = np.array([b["count"] for b in bins])
        filled = counts > 0
        top.bar(lows[filled], acc[filled], width=width, align="edge", color="tab:blue", edgecolor="black",
                linewidth=0.5, label="accuracy")
        low = np.minimum(acc[filled], conf[filled])
        top.bar(lows[filled], np.abs(conf[filled] - acc[filled]), bottom=low, width=width, align="edge",
                color="tab:red", alpha=0.35, hatch="//", edgecolor="tab:red", linewidth=0.5,
                label="gap |accuracy - mean confidence|")
        top.plot(lows[filled] + width / 2, conf[filled], "k_", markersize=9, label="mean confidence of the bin")
        top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        rep = run.reports[key]
        top.set_title(f"{ROW_NAMES[key]}\nECE {rep['ece']:.4f}  Brier {rep['brier']:.4f}  NLL {rep['nll']:.4f}",
                      fontsize=10)
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("accuracy")
        if col == 0:
            top.legend(loc="upper left", fontsize=8)
        bottom.bar(lows, counts, width=width, align="edge", color="gray", edgecolor="black", linewidth=0.5)
        bottom.set_yscale("log")
        bottom.set_xlabel("top-1 confidence")
        bottom.set_ylabel("messages")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_dataset(dataset: str, title: str, splits: List[Split], cache: FeatureCache, out_dir: Path,
                stamp: str) -> List[str]:
    runs = []
    for split in splits:
        started = time.monotonic()
        print(f"\n=== {dataset}{'' if len(splits) == 1 else f' seed {split.seed}'}: calibration ===", flush=True)
        runs.append(evaluate_split(split, cache))
        rep = runs[-1].reports
        print(f"=== ECE raw {rep['raw']['ece']:.4f} -> temperature {rep['temperature']['ece']:.4f}, isotonic "
              f"{rep['isotonic']['ece']:.4f}; {time.monotonic() - started:.0f} s wall ===", flush=True)
    png = reliability_png(out_dir / f"reliability-{stamp}-{dataset}.png",
                          f"{title}: test split{' (seed ' + str(runs[0].seed) + ')' if len(runs) > 1 else ''}",
                          runs[0])
    return report_lines(dataset, runs, png, cache.settings, cache.seconds)
