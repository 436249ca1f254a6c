"""Held-out NLU accuracy of the project's own data: a stratified 80/20 split (fixed seed),
train the NLU pipeline on the 80 %, `rasa test nlu` on the 20 %, print a table.

    python bench/nlu_holdout.py [--seed 42] [--config rasa_project/config.yml]
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

ROOT = Path(__file__).resolve().parents[1]


def rasa(*args: str) -> None:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "rasa", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"rasa {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--config", default="rasa_project/config.yml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kefu-holdout-") as tmp:
        out = Path(tmp)
        rasa("data", "split", "nlu", "--nlu", "rasa_project/data/nlu", "--training-fraction", "0.8",
             "--random-seed", str(args.seed), "--out", str(out / "split"))
        started = time.monotonic()
        rasa("train", "nlu", "--config", args.config, "--nlu", str(out / "split" / "training_data.yml"),
             "--out", str(out / "model"), "--fixed-model-name", "holdout")
        train_s = time.monotonic() - started
        rasa("test", "nlu", "--model", str(out / "model" / "holdout.tar.gz"), "--nlu",
             str(out / "split" / "test_data.yml"), "--out", str(out / "results"), "--no-plot")
        report = json.loads((out / "results" / "intent_report.json").read_text())
        entities = out / "results" / "DIETClassifier_report.json"
        entity_f1 = json.loads(entities.read_text())["macro avg"]["f1-score"] if entities.exists() else float("nan")
    support = int(report["macro avg"]["support"])
    print(f"\nNLU held-out evaluation (project data, stratified 80/20 split, seed {args.seed})")
    print("| config | test messages | intent accuracy | intent macro-F1 | entity macro-F1 (DIET) | train time |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.config} | {support} | {report['accuracy']:.3f} | {report['macro avg']['f1-score']:.3f} "
          f"| {entity_f1:.3f} | {train_s:.0f} s |")


if __name__ == "__main__":
    main()
