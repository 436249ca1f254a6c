"""Train the Rasa model only when its inputs changed (a fingerprint beside the model)."""

from __future__ import annotations

import hashlib
import logging
import math
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Iterable

from kefu.config import PROJECT_ROOT, Settings
from kefu.errors import KefuError
from kefu.modelplan import MODEL_NAME, load_model_plan, model_path
from kefu.thresholds import format_plan
from ops.runner import child_env

log = logging.getLogger("kefu.train")

RASA_DIR = PROJECT_ROOT / "rasa_project"
# What the trained model depends on: the Rasa project, the NLU components (not the
# channel connectors, which are loaded at run time), shared text code, the jieba
# dictionary; plus the versions of the libraries that train it (TRAINING_LIBRARIES).
INPUTS = [
    RASA_DIR / "config.yml",
    RASA_DIR / "domain",
    RASA_DIR / "data",
    *sorted((PROJECT_ROOT / "custom_components").glob("*.py")),
    PROJECT_ROOT / "kefu" / "text.py",
    PROJECT_ROOT / "kefu" / "encoder" / "runtime.py",
    # the intent model: calibration, thresholds from the routing YAML's targets, out-of-scope score
    *(PROJECT_ROOT / "kefu" / f"{name}.py" for name in ("calibration", "thresholds", "oos", "intent_head")),
    PROJECT_ROOT / "data" / "routing.yml",
    PROJECT_ROOT / "data" / "lexicons" / "jieba",
    # sentiment: its labelled set, its lexicons and its Rasa-free logic
    PROJECT_ROOT / "data" / "sentiment",
    PROJECT_ROOT / "data" / "lexicons" / "sentiment",
    PROJECT_ROOT / "kefu" / "sentiment",
    PROJECT_ROOT / "models" / "encoder" / "multilingual-e5-small" / "kefu_encoder.json",
]
TRAINING_LIBRARIES = ("rasa", "tensorflow", "scikit-learn", "jieba", "numpy", "textblob")


def _files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(
                p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
            )
    return sorted(found)


def fingerprint(paths: Iterable[Path] = INPUTS) -> str:
    """SHA-256 over library versions and the relative names and contents of every training input."""
    digest = hashlib.sha256()
    for name in TRAINING_LIBRARIES:
        try:
            digest.update(f"{name}=={metadata.version(name)}\n".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name} missing\n".encode())
    for path in _files(paths):
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def train(settings: Settings, force: bool = False) -> Path:
    """Train into models/kefu.tar.gz unless its stored fingerprint matches the inputs."""
    target = model_path(settings)
    stamp = settings.model_dir / f"{MODEL_NAME}.fingerprint"
    current = fingerprint()
    if not force and target.is_file() and stamp.is_file() and stamp.read_text().strip() == current:
        print(f"Model {target} is up to date (fingerprint {current[:12]}); skipping training.", flush=True)
        print_thresholds(target, table=False)
        return target
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable, "-m", "ops.quiet", "rasa", "train",
        "--config", str(RASA_DIR / "config.yml"),
        "--domain", str(RASA_DIR / "domain"),
        "--data", str(RASA_DIR / "data"),
        "--out", str(settings.model_dir),
        "--fixed-model-name", MODEL_NAME,
    ]
    print(f"Training the Rasa model (inputs changed, fingerprint {current[:12]}) ...", flush=True)
    started = time.monotonic()
    result = subprocess.run(args, cwd=PROJECT_ROOT, env=child_env(settings))
    if result.returncode != 0 or not target.is_file():
        raise KefuError(f"rasa train failed with exit code {result.returncode}")
    stamp.write_text(current + "\n")
    print(f"Trained {target} in {time.monotonic() - started:.0f} s.", flush=True)
    print_thresholds(target, table=True)
    return target


def print_thresholds(model: Path, table: bool) -> None:
    """The model's calibration/threshold plan: the `kefu thresholds` table after training, one line
    for an up-to-date model. Never fails the build: a model without a plan gets a note."""
    try:
        plan = load_model_plan(model)
    except KefuError as exc:
        print(f"No routing threshold plan to show: {exc}", flush=True)
        return
    print(format_plan(plan) if table else summary_line(plan), flush=True)


def _num(value: Any) -> str:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)  # noqa: UP038
    return f"{value:.3f}" if ok else "-"


def summary_line(plan: Dict[str, Any]) -> str:
    """One line for an up-to-date model: the two global thresholds and the number of warnings."""
    th = plan.get("thresholds") or {}
    warnings = th.get("warnings") or []
    extra = f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""
    return (f"Routing thresholds ({th.get('mode')}): auto {_num(th.get('auto'))}, specialist "
            f"{_num(th.get('specialist'))}{extra}; `kefu thresholds` prints the table.")
