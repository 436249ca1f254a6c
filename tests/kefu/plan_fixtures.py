"""A real threshold plan without `rasa train`: a tiny IntentModel on synthetic features, archived the
way Rasa archives a model (components/<node>/calibration.json + head.npz). Used by the
`kefu thresholds` tests and the console's /api/thresholds tests."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from kefu.intent_head import HeadOptions, IntentModel, train_intent_model
from kefu.thresholds import IntentTargets, Targets

NODE = "train_custom_components.bert_intent_classifier.BertIntentClassifier8"
TARGETS = Targets(auto_precision=0.9, specialist_precision=0.6, min_support=5,
                  intents={"intent_0": IntentTargets(auto_precision=0.999),
                           "intent_1": IntentTargets(auto_threshold=0.95, specialist_threshold=0.5),
                           "intent_2": IntentTargets(specialist_precision=0.99)})


def tiny_model(seed: int = 0) -> IntentModel:
    """4 intents × 15 examples of 16-d blobs: trains (with 5-fold calibration) in about a second."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (4, 16))
    x = np.vstack([c + rng.normal(0, 2.0, (15, 16)) for c in centres]).astype(np.float32)
    y = [f"intent_{i}" for i in range(4) for _ in range(15)]
    return train_intent_model(x, y, HeadOptions(), TARGETS, {"routing_file": "data/routing.yml"})


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def write_archive(out: Path, files: Dict[str, bytes]) -> Path:
    """A .tar.gz laid out like Rasa's model archive, written atomically (tmp file + rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as archive:
        _add(archive, "metadata.json", json.dumps({"trained_at": "2026-12-03T23:13:00"}).encode())
        _add(archive, "components/domain_provider/domain.yml", b"version: '3.1'\n")
        for name, data in files.items():
            _add(archive, name, data)
    os.replace(tmp, out)
    return out


def archive_model(out: Path, model: Optional[IntentModel] = None, plan: Any = None) -> Path:
    """Archive `model` (or a tiny one); `plan` replaces calibration.json's content (bytes/str as is)."""
    model = model or tiny_model()
    buffer = io.BytesIO()
    np.savez(buffer, **model.head.to_arrays())
    files = {f"components/{NODE}/head.npz": buffer.getvalue()}
    content = model.plan if plan is None else plan
    if isinstance(content, str):
        content = content.encode()
    if not isinstance(content, bytes):
        content = json.dumps(content, ensure_ascii=False, indent=1).encode()
    files[f"components/{NODE}/calibration.json"] = content
    return write_archive(out, files)


def archive_without_plan(out: Path) -> Path:
    """A model trained before calibration: the classifier's directory has weights only."""
    return write_archive(out, {f"components/{NODE}/head.npz": b"weights"})
