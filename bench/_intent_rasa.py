"""Train one Rasa NLU pipeline on a split and evaluate it through the real Rasa processor.

`rasa.model_training.train_nlu` writes a model archive; `rasa.core.agent.Agent.load`
loads it; every test message goes through `await agent.parse_message(text)`, one message
per call, timed individually. No FallbackClassifier: the raw classifier is measured.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import yaml
from _intent_data import Split, write_rasa_nlu
from sklearn.metrics import accuracy_score, f1_score

ENCODER = "custom_components.encoder_featurizer.EncoderFeaturizer"
CLASSIFIER = "custom_components.bert_intent_classifier.BertIntentClassifier"
DIET_SEED = 42
WARMUP = ("hello", "你好", "my card", "查询天气", "thanks")


@dataclass
class Variant:
    key: str  # stock | encoder-int8 | encoder-fp32
    pipeline: str  # label printed in the tables
    runtime: str
    diet_epochs: int = 100
    fine_tune_epochs: int = 0  # > 0: EncoderFeaturizer fine_tune: true
    fine_tune_lr: float = 1e-4


@dataclass
class RunResult:
    accuracy: float
    macro_f1: float
    train_s: float
    p50_ms: float
    p95_ms: float
    archive_bytes: int
    n_train: int
    n_test: int
    duplicates: int
    dropped: int
    confidences: np.ndarray
    correct: np.ndarray


def variants(pipelines: List[str], diet_epochs: int, ft_epochs: int = 5, ft_lr: float = 1e-4) -> List[Variant]:
    out: List[Variant] = []
    if "stock" in pipelines:
        out.append(
            Variant(
                "stock", "(a) stock: CountVectors word + char_wb 1-4, DIET", f"DIET {diet_epochs} epochs", diet_epochs
            )
        )
    if "encoder" in pipelines:
        for runtime in ("onnx-int8", "onnx-fp32"):
            out.append(
                Variant(f"encoder-{runtime[5:]}", "(b) EncoderFeaturizer + BertIntentClassifier (frozen)", runtime)
            )
    if "finetune" in pipelines:
        label = f"(c) same, fine_tune: true ({ft_epochs} epochs, lr {ft_lr:g})"
        out.append(Variant("finetune-int8", label, "onnx-int8", fine_tune_epochs=ft_epochs, fine_tune_lr=ft_lr))
    return out


def tokenizer(language: str) -> Dict[str, Any]:
    return {"name": "JiebaTokenizer"} if language == "zh" else {"name": "WhitespaceTokenizer"}


def rasa_config(variant: Variant, language: str) -> Dict[str, Any]:
    if variant.key == "stock":
        pipeline = [
            tokenizer(language),
            {"name": "CountVectorsFeaturizer"},
            {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
            {"name": "DIETClassifier", "epochs": variant.diet_epochs, "random_seed": DIET_SEED},
        ]
    else:
        # cache_dir null: every training run encodes its data cold, so training times compare fairly
        pipeline = [
            tokenizer(language),
            {"name": ENCODER, "runtime": variant.runtime, "cache_dir": None, **fine_tune_settings(variant)},
            {"name": CLASSIFIER},
        ]
    return {
        "recipe": "default.v1",
        "language": language,
        "assistant_id": "kefu-bench-intent",
        "pipeline": pipeline,
        "policies": [],
    }


def fine_tune_settings(variant: Variant) -> Dict[str, Any]:
    if not variant.fine_tune_epochs:
        return {}
    return {
        "fine_tune": True,
        "fine_tune_epochs": variant.fine_tune_epochs,
        "fine_tune_learning_rate": variant.fine_tune_lr,
    }


def percentile(values: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


async def _parse_all(agent: Any, texts: List[str]) -> tuple[List[Dict[str, Any]], List[float]]:
    for text in WARMUP:  # first calls build lazy state (jieba dictionary, TF graph, ORT arenas)
        await agent.parse_message(text)
    parsed: List[Dict[str, Any]] = []
    timings: List[float] = []
    for text in texts:
        started = time.perf_counter()
        parsed.append(await agent.parse_message(text))
        timings.append((time.perf_counter() - started) * 1000.0)
    return parsed, timings


def run(split: Split, variant: Variant, workdir: Path, latency_samples: int) -> RunResult:
    from rasa.core.agent import Agent  # lazy: TensorFlow, after the bench sets its environment
    from rasa.model_training import train_nlu  # lazy: TensorFlow, after the bench sets its environment

    workdir.mkdir(parents=True, exist_ok=True)
    nlu_path = workdir / "nlu.yml"
    n_train, duplicates, dropped = write_rasa_nlu(split.train, nlu_path)
    config_path = workdir / "config.yml"
    config_path.write_text(yaml.safe_dump(rasa_config(variant, split.language), allow_unicode=True), encoding="utf-8")
    started = time.monotonic()
    archive = train_nlu(str(config_path), str(nlu_path), str(workdir / "models"), fixed_model_name=variant.key)
    train_s = time.monotonic() - started
    if not archive:
        raise RuntimeError(f"rasa train nlu produced no model for {split.dataset}/{variant.key}")
    agent: Optional[Agent] = Agent.load(archive)
    texts = [text for text, _ in split.test]
    gold = [intent for _, intent in split.test]
    parsed, timings = asyncio.run(_parse_all(agent, texts))
    del agent
    gc.collect()
    predicted = [str((p.get("intent") or {}).get("name")) for p in parsed]
    confidences = np.array([float((p.get("intent") or {}).get("confidence") or 0.0) for p in parsed])
    labels = sorted(set(gold))  # macro over the test set's intents
    return RunResult(
        accuracy=float(accuracy_score(gold, predicted)),
        macro_f1=float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        train_s=train_s,
        p50_ms=percentile(timings[:latency_samples], 50),
        p95_ms=percentile(timings[:latency_samples], 95),
        archive_bytes=Path(archive).stat().st_size,
        n_train=n_train,
        n_test=len(texts),
        duplicates=duplicates,
        dropped=dropped,
        confidences=confidences,
        correct=np.array([g == p for g, p in zip(gold, predicted, strict=True)]),
    )
