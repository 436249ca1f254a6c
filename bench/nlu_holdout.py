"""Held-out NLU accuracy of the project's own data: a stratified 80/20 split (fixed seed),
train the NLU pipeline on the 80 %, `rasa test nlu` on the 20 %, print a table.

`rasa test nlu` scores the classifier's own top intent (it undoes FallbackClassifier
predictions), so the table adds the share of test messages whose confidence is below
the FallbackClassifier threshold: what customers would get as "please rephrase".

    python bench/nlu_holdout.py [--seed 42] [--config rasa_project/config.yml [other.yml ...]]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def rasa(*args: str) -> None:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "rasa", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"rasa {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def fallback_threshold(config: Path) -> float:
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    for component in doc.get("pipeline", []):
        if component.get("name") == "FallbackClassifier":
            return float(component.get("threshold", 0.3))
    return 0.0


def evaluate(config: Path, split: Path, out: Path) -> tuple[dict, float, float, float]:
    started = time.monotonic()
    rasa("train", "nlu", "--config", str(config), "--nlu", str(split / "training_data.yml"),
         "--out", str(out / "model"), "--fixed-model-name", "holdout")
    train_s = time.monotonic() - started
    rasa("test", "nlu", "--model", str(out / "model" / "holdout.tar.gz"), "--nlu",
         str(split / "test_data.yml"), "--out", str(out / "results"), "--no-plot", "--successes")
    report = json.loads((out / "results" / "intent_report.json").read_text())
    entities = out / "results" / "DIETClassifier_report.json"
    entity_f1 = json.loads(entities.read_text())["macro avg"]["f1-score"] if entities.exists() else float("nan")
    predictions = []
    for name in ("intent_successes.json", "intent_errors.json"):
        path = out / "results" / name
        predictions += json.loads(path.read_text()) if path.exists() else []
    threshold = fallback_threshold(config)
    low = sum(1 for p in predictions if (p.get("intent_prediction") or {}).get("confidence", 1.0) < threshold)
    return report, entity_f1, train_s, low / max(1, len(predictions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--config", nargs="+", default=["rasa_project/config.yml"])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kefu-holdout-") as tmp:
        out = Path(tmp)
        rasa("data", "split", "nlu", "--nlu", "rasa_project/data/nlu", "--training-fraction", "0.8",
             "--random-seed", str(args.seed), "--out", str(out / "split"))
        for i, config in enumerate(args.config):
            report, entity_f1, train_s, fallback_rate = evaluate(ROOT / config, out / "split", out / f"run{i}")
            rows.append((config, report, entity_f1, train_s, fallback_rate))
    print(f"\nNLU held-out evaluation (project data, stratified 80/20 split, seed {args.seed})")
    print("| config | test messages | intent accuracy | intent macro-F1 | below fallback threshold "
          "| entity macro-F1 (DIET) | train time |")
    print("|---|---|---|---|---|---|---|")
    for label, report, entity_f1, train_s, fallback_rate in rows:
        print(f"| {label} | {int(report['macro avg']['support'])} | {report['accuracy']:.3f} "
              f"| {report['macro avg']['f1-score']:.3f} | {fallback_rate:.1%} | {entity_f1:.3f} | {train_s:.0f} s |")


if __name__ == "__main__":
    main()
