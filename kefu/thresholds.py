"""Routing thresholds chosen by target precision on out-of-fold predictions (no Rasa imports).

Designers write what they want ("the bot answers alone only where it is right 97 % of the
time") in the routing YAML; training turns that into numbers for the calibrated confidence:
for each target, the lowest threshold whose in-band accuracy meets it, with a minimum
number of out-of-fold predictions in the band. When a target cannot be met the numeric
default is used and a warning says so. The result (`ThresholdPlan`) is persisted with the
model, printed after training, by `kefu thresholds` and in the agent console.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from kefu.errors import ConfigError

PLAN_FILE = "calibration.json"
TARGET_KEYS = ("auto_precision", "specialist_precision")
INTENT_KEYS = {"auto_precision", "specialist_precision", "auto_threshold", "specialist_threshold"}
DEFAULT_MIN_SUPPORT = 20
MAX_PLAN_BYTES = 20_000_000


@dataclass(frozen=True)
class IntentTargets:
    auto_precision: Optional[float] = None
    specialist_precision: Optional[float] = None
    auto_threshold: Optional[float] = None
    specialist_threshold: Optional[float] = None


@dataclass(frozen=True)
class Targets:
    """The threshold part of the routing YAML."""

    auto_threshold: float = 0.9
    specialist_threshold: float = 0.7
    auto_precision: Optional[float] = None
    specialist_precision: Optional[float] = None
    min_support: int = DEFAULT_MIN_SUPPORT
    intents: Mapping[str, IntentTargets] = field(default_factory=dict)

    @property
    def uses_targets(self) -> bool:
        return self.auto_precision is not None


def _fraction(raw: Mapping[str, Any], key: str, where: str = "") -> Optional[float]:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:  # noqa: UP038
        raise ConfigError(f"routing: {where}{key} must be a number in (0, 1], got {value!r}")
    return float(value)


def _threshold(raw: Mapping[str, Any], key: str, default: Optional[float], where: str = "") -> Optional[float]:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:  # noqa: UP038
        raise ConfigError(f"routing: {where}{key} must be a number in [0, 1], got {value!r}")
    return float(value)


def _pair(auto: Optional[float], specialist: Optional[float], names: tuple[str, str], where: str) -> None:
    if (auto is None) != (specialist is None):
        missing = names[1] if specialist is None else names[0]
        given = names[0] if specialist is None else names[1]
        raise ConfigError(f"routing: {where}{missing} is missing ({where}{given} is set; give both)")
    if auto is not None and specialist is not None and specialist > auto:
        raise ConfigError(f"routing: {where}{names[1]} ({specialist}) must not exceed {where}{names[0]} ({auto})")


def parse_targets(raw: Mapping[str, Any]) -> Targets:
    """Validate the threshold keys of the routing document (a ConfigError names the key)."""
    auto = _threshold(raw, "auto_threshold", 0.9)
    specialist = _threshold(raw, "specialist_threshold", 0.7)
    _pair(auto, specialist, ("auto_threshold", "specialist_threshold"), "")
    auto_p = _fraction(raw, "auto_precision")
    spec_p = _fraction(raw, "specialist_precision")
    _pair(auto_p, spec_p, TARGET_KEYS, "")
    support = raw.get("min_band_support", DEFAULT_MIN_SUPPORT)
    if isinstance(support, bool) or not isinstance(support, int) or support < 1:
        raise ConfigError(f"routing: min_band_support must be a whole number >= 1, got {support!r}")
    overrides = raw.get("intent_thresholds") or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError("routing: intent_thresholds must map intent names to {auto_precision: ...} settings")
    intents: Dict[str, IntentTargets] = {}
    for name, spec in overrides.items():
        where = f"intent_thresholds.{name}."
        if not isinstance(name, str) or not name or not isinstance(spec, Mapping) or not spec:
            raise ConfigError(f"routing: intent_thresholds.{name} must be a non-empty mapping")
        unknown = set(spec) - INTENT_KEYS
        if unknown:
            raise ConfigError(f"routing: {where[:-1]} has unknown keys {sorted(unknown)}")
        entry = IntentTargets(
            _fraction(spec, "auto_precision", where),
            _fraction(spec, "specialist_precision", where),
            _threshold(spec, "auto_threshold", None, where),
            _threshold(spec, "specialist_threshold", None, where),
        )
        if entry.auto_precision is not None and entry.auto_threshold is not None:
            raise ConfigError(f"routing: {where}auto_precision and {where}auto_threshold: give one of them")
        if entry.specialist_precision is not None and entry.specialist_threshold is not None:
            raise ConfigError(f"routing: {where}specialist_precision and {where}specialist_threshold: give one")
        if entry.auto_precision and entry.specialist_precision and entry.specialist_precision > entry.auto_precision:
            raise ConfigError(f"routing: {where}specialist_precision must not exceed {where}auto_precision")
        if entry.auto_threshold is not None and entry.specialist_threshold is not None:
            _pair(entry.auto_threshold, entry.specialist_threshold, ("auto_threshold", "specialist_threshold"), where)
        if (entry.auto_precision or entry.specialist_precision) and auto_p is None:
            raise ConfigError(f"routing: {where}*_precision needs auto_precision and specialist_precision at the top"
                              " level (precision targets); in numbers mode give auto_threshold/specialist_threshold")
        intents[name] = entry
    return Targets(auto, specialist, auto_p, spec_p, int(support), intents)


# --- the search ---------------------------------------------------------------------------


def lowest_threshold(
    confidence: np.ndarray, correct: np.ndarray, target: float, min_support: int, upper: float = math.inf
) -> Optional[float]:
    """The lowest t with accuracy >= target among predictions with t <= confidence < upper.

    Candidates are the observed confidences; a band needs at least min_support predictions.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    inside = confidence < upper
    conf, ok = confidence[inside], correct[inside]
    if len(conf) < min_support:
        return None
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    hits = np.cumsum(ok)
    counts = np.arange(1, len(conf) + 1)
    # a candidate t = conf[i] admits every prediction with confidence >= t, i.e. up to the last tie
    last_of_tie = np.r_[conf[1:] != conf[:-1], True]
    good = last_of_tie & (counts >= min_support) & (hits / counts >= target - 1e-12)
    if not good.any():
        return None
    return float(conf[np.nonzero(good)[0][-1]])


def band_stats(confidence: np.ndarray, correct: np.ndarray, low: float, high: float = math.inf) -> Dict[str, float]:
    confidence, correct = np.asarray(confidence), np.asarray(correct, dtype=bool)
    inside = (confidence >= low) & (confidence < high)
    count = int(inside.sum())
    return {
        "coverage": count / max(1, len(confidence)),
        "accuracy": float(correct[inside].mean()) if count else float("nan"),
        "support": count,
    }


def _search(conf: np.ndarray, ok: np.ndarray, key: str, target: float, fallback: float, min_support: int,
            label: str, warnings: List[str], upper: float = math.inf) -> tuple[float, str]:
    """(threshold, "target") or, when the target cannot be met, (fallback, "fallback") and a warning."""
    found = lowest_threshold(conf, ok, target, min_support, upper)
    if found is not None:
        return found, "target"
    where = "" if math.isinf(upper) else f" below auto {upper:.3f}"
    warnings.append(f"{label}{key} {target}: no threshold{where} reaches it with >= {min_support} out-of-fold"
                    f" predictions; using {fallback:.3f}")
    return fallback, "fallback"


def _choose(conf: np.ndarray, ok: np.ndarray, targets: Targets, warnings: List[str]) -> Dict[str, Any]:
    numbers = (targets.auto_threshold, targets.specialist_threshold)
    auto, auto_src = _search(conf, ok, "auto_precision", targets.auto_precision, numbers[0], targets.min_support,
                             "", warnings)
    specialist, spec_src = _search(conf, ok, "specialist_precision", targets.specialist_precision,
                                   min(numbers[1], auto), targets.min_support, "", warnings, upper=auto)
    return {"auto": auto, "specialist": specialist, "source": {"auto": auto_src, "specialist": spec_src}}


def _intent_entry(conf: np.ndarray, ok: np.ndarray, spec: IntentTargets, chosen: Dict[str, Any], targets: Targets,
                  label: str, warnings: List[str]) -> Dict[str, Any]:
    """An intent's own thresholds: overridden keys searched on its predictions, the rest inherited."""
    entry: Dict[str, Any] = {"support": len(conf), "auto": chosen["auto"], "specialist": chosen["specialist"],
                             "source": dict(chosen["source"])}
    if spec.auto_precision is not None:
        # when the stricter target cannot be met: the stricter of the numeric default and the global choice
        fallback = max(targets.auto_threshold, chosen["auto"])
        entry["auto"], entry["source"]["auto"] = _search(conf, ok, "auto_precision", spec.auto_precision, fallback,
                                                         targets.min_support, label, warnings)
    if spec.auto_threshold is not None:
        entry["auto"], entry["source"]["auto"] = spec.auto_threshold, "number"
    if spec.specialist_precision is not None:
        fallback = min(max(targets.specialist_threshold, chosen["specialist"]), entry["auto"])
        entry["specialist"], entry["source"]["specialist"] = _search(
            conf, ok, "specialist_precision", spec.specialist_precision, fallback, targets.min_support, label,
            warnings, upper=entry["auto"])
    if spec.specialist_threshold is not None:
        entry["specialist"], entry["source"]["specialist"] = spec.specialist_threshold, "number"
    entry["specialist"] = min(entry["specialist"], entry["auto"])
    entry["bands"] = _bands(conf, ok, entry["auto"], entry["specialist"])
    return entry


def choose_thresholds(
    confidence: Sequence[float], correct: Sequence[bool], predicted: Sequence[str], targets: Targets,
    data: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """The persisted threshold plan: global and per-intent thresholds, bands, warnings."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    pred = np.asarray(predicted, dtype=object)
    warnings: List[str] = []
    numbers = (targets.auto_threshold, targets.specialist_threshold)
    if targets.uses_targets:
        chosen = _choose(conf, ok, targets, warnings)
    else:
        chosen = {"auto": numbers[0], "specialist": numbers[1], "source": {"auto": "number", "specialist": "number"}}
    plan: Dict[str, Any] = {
        "mode": "targets" if targets.uses_targets else "numbers",
        "targets": {"auto_precision": targets.auto_precision, "specialist_precision": targets.specialist_precision,
                    "min_band_support": targets.min_support},
        "numbers": {"auto_threshold": numbers[0], "specialist_threshold": numbers[1]},
        **chosen,
        "bands": _bands(conf, ok, chosen["auto"], chosen["specialist"]),
        "intents": {},
        "warnings": warnings,
        "data": data or {},
    }
    for name, spec in sorted(targets.intents.items()):
        mask = pred == name
        plan["intents"][name] = _intent_entry(conf[mask], ok[mask], spec, chosen, targets,
                                              f"intent_thresholds.{name}.", warnings)
    return plan


def _bands(conf: np.ndarray, ok: np.ndarray, auto: float, specialist: float) -> Dict[str, Dict[str, float]]:
    return {
        "auto": band_stats(conf, ok, auto),
        "specialist": band_stats(conf, ok, specialist, auto),
        "below": band_stats(conf, ok, -math.inf, specialist),
    }


def thresholds_for(plan: Mapping[str, Any], intent: Optional[str]) -> Dict[str, Any]:
    """What the parse result carries for one predicted intent: {auto, specialist, source}."""
    entry = (plan.get("intents") or {}).get(intent or "") or plan
    source = entry.get("source") or {}
    kind = "intent" if entry is not plan else plan.get("mode", "numbers")
    return {"auto": round(float(entry["auto"]), 6), "specialist": round(float(entry["specialist"]), 6),
            "source": kind, "fallback": "fallback" in source.values()}


# --- reading and showing a trained model's plan -----------------------------------------------


class NoPlan(ConfigError):
    """There is no model file, or the model carries no threshold plan (trained before calibration)."""


def json_safe(value: Any) -> Any:
    """The plan with NaN / infinities (an empty band's accuracy) as null, so it is standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # noqa: UP038
        return [json_safe(v) for v in value]
    return value


def read_plan(model: Path) -> Dict[str, Any]:
    """The calibration plan inside a model archive (.tar.gz) or an unpacked model directory."""
    model = Path(model)
    if not str(model).strip() or str(model) == ".":
        raise ConfigError("the model path is empty")
    try:
        if model.is_dir():
            found = sorted(model.glob(f"components/*/{PLAN_FILE}")) or sorted(model.glob(f"*/{PLAN_FILE}")) or sorted(
                model.glob(PLAN_FILE))
            if not found:
                raise NoPlan(f"{model}: no {PLAN_FILE} (train with the BertIntentClassifier)")
            if found[0].stat().st_size > MAX_PLAN_BYTES:
                raise ConfigError(f"{found[0]} is larger than {MAX_PLAN_BYTES} bytes")
            return json.loads(found[0].read_text(encoding="utf-8"))
        with tarfile.open(model, "r:*") as archive:
            for member in archive:
                if member.isfile() and member.name.endswith("/" + PLAN_FILE):
                    if member.size > MAX_PLAN_BYTES:
                        raise ConfigError(f"{model}: {member.name} is {member.size} bytes, more than the "
                                          f"{MAX_PLAN_BYTES} a plan may have (corrupted model?)")
                    handle = archive.extractfile(member)
                    if handle is not None:
                        return json.load(io.TextIOWrapper(handle, encoding="utf-8"))
    except ConfigError:
        raise
    except (OSError, EOFError, zlib.error, tarfile.TarError, ValueError, RecursionError) as exc:
        # ValueError covers JSON and UTF-8 errors; EOFError / zlib.error a truncated or damaged archive
        raise ConfigError(f"{model}: cannot read the model or its {PLAN_FILE} ({exc.__class__.__name__}: {exc})"
                          ) from exc
    raise NoPlan(f"{model}: no {PLAN_FILE} in the model (trained before calibration or without"
                 " BertIntentClassifier)")


def _pct(value: Any) -> str:
    return "   -  " if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:5.1f}%"


def format_plan(plan: Mapping[str, Any]) -> str:
    """The human-readable table printed after training and by `kefu thresholds`."""
    th = plan.get("thresholds") or plan
    cal = plan.get("calibration") or {}
    lines = []
    if cal:
        before, after = cal.get("before") or {}, cal.get("after") or {}
        lines.append(f"Calibration: {cal.get('method')} (T={cal.get('temperature', 1.0):.3f}) fitted on "
                     f"{cal.get('examples')} out-of-fold predictions ({cal.get('folds')}-fold)")
        if before and after:
            lines.append(f"  ECE {before['ece']:.4f} -> {after['ece']:.4f}   Brier {before['brier']:.4f} -> "
                         f"{after['brier']:.4f}   NLL {before['nll']:.4f} -> {after['nll']:.4f}")
    targets = th.get("targets") or {}
    mode = th.get("mode")
    lines.append(f"Routing thresholds ({mode}"
                 + (f": auto_precision {targets.get('auto_precision')}, specialist_precision "
                    f"{targets.get('specialist_precision')}, min_band_support {targets.get('min_band_support')}"
                    if mode == "targets" else "") + ")")
    lines.append(f"  {'band':<12}{'threshold':>10}{'source':>10}{'coverage':>10}{'accuracy':>10}{'support':>9}")
    bands = th.get("bands") or {}
    for band, thr, src in (("auto", th.get("auto"), (th.get("source") or {}).get("auto")),
                           ("specialist", th.get("specialist"), (th.get("source") or {}).get("specialist")),
                           ("below", None, "")):
        stats = bands.get(band) or {}
        lines.append(f"  {band:<12}{'' if thr is None else f'{thr:.3f}':>10}{src or '':>10}"
                     f"{_pct(stats.get('coverage')):>10}{_pct(stats.get('accuracy')):>10}{stats.get('support', 0):>9}")
    for name, entry in (th.get("intents") or {}).items():
        lines.append(f"  intent {name}: auto {entry['auto']:.3f} ({entry['source'].get('auto')}), specialist "
                     f"{entry['specialist']:.3f} ({entry['source'].get('specialist')}), {entry['support']} predictions")
    oos = plan.get("oos") or {}
    if oos:
        lines.append(f"Out of scope: {oos.get('method')} distance + calibrated confidence, flagged above "
                     f"{oos.get('threshold', float('nan')):.3f} (in-scope recall {oos.get('in_scope_recall')})")
    data = th.get("data") or {}
    if data:
        lines.append("  from " + ", ".join(f"{k} {v}" for k, v in data.items()))
    for warning in th.get("warnings") or []:
        lines.append(f"  WARNING: {warning}")
    return "\n".join(lines)
