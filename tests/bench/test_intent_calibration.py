"""bench/_intent_calibration.py on synthetic features (no encoder): tables, bands and the PNG."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List

import numpy as np

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import _intent_calibration as cal  # noqa: E402
from _intent_data import Split  # noqa: E402


class FakeFeatures(cal.FeatureCache):
    """The real caching and batching, with a lookup table for an encoder."""

    def __init__(self, vectors: Dict[str, np.ndarray]) -> None:
        super().__init__(cal.Settings(BENCH, "onnx-int8", "mean", 128, 32, {"C": 1.0}))
        self.table = vectors
        self.calls: List[int] = []

    def _encode(self, texts: List[str], batch_size: int) -> List[np.ndarray]:
        self.calls.append(len(texts))
        return [self.table[t] for t in texts]


def synthetic(seed: int = 0) -> tuple[Split, Dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 8)) * 1.5
    vectors: Dict[str, np.ndarray] = {}
    rows = []
    for i in range(4 * 90):
        label = i % 4
        text = f"t{i}"
        vectors[text] = centres[label] + rng.normal(size=8)
        rows.append((text, f"intent{label}"))
    return Split("synthetic", "en", rows[:240] + rows[:3], rows[240:], seed=seed), vectors


def test_config_settings_are_the_rasa_pipelines() -> None:
    settings = cal.pipeline_settings()
    assert (settings.runtime, settings.pooling, settings.max_length) == ("onnx-int8", "mean", 128)
    assert settings.head["C"] == 100.0 and settings.model.name == "multilingual-e5-small"


def test_split_report_and_reliability_png(tmp_path: Path) -> None:
    split, vectors = synthetic()
    features = FakeFeatures(vectors)
    result = cal.evaluate_split(split, features)
    assert features.calls == [240] + [1] * 120  # train in one batched call, test one message per call
    assert result.n_train == 240 and result.duplicates == 3 and result.n_test == 120
    accuracies = {key: report["accuracy"] for key, report in result.reports.items()}
    assert len(set(accuracies.values())) == 1  # calibration never changes the predicted intent
    for rule in ("raw", "temperature", "isotonic"):
        shares = sum(result.bands[rule][band]["coverage"] for band in ("auto", "specialist", "below"))
        assert abs(shares - 1.0) < 1e-9
    assert result.bands["raw"]["auto_threshold"] == 0.9
    png = cal.reliability_png(tmp_path / "r.png", "synthetic", result)
    assert png.read_bytes()[:4] == b"\x89PNG"
    lines = cal.report_lines("synthetic", [result, result], png, FakeFeatures(vectors).settings, 0.0)
    text = "\n".join(lines)
    assert "| after: temperature (default) |" in text and "seed rule: raw >= 0.9 / >= 0.7" in text
    assert " ± " in text and str(png) in text
