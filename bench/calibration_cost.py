"""What calibration costs at training time on the project's own NLU data.

Issue 10 asks that retraining stay within 1.5x of the uncalibrated training time. The
encoder's sentence vectors are computed once (the EncoderFeaturizer caches them by content
hash, so the k folds never re-encode); this measures the intent model's training itself,
through kefu.intent_head.train_intent_model (the code BertIntentClassifier.train runs):

- head only: logistic regression on all examples (what training did before calibration);
- calibrated: head + k-fold out-of-fold predictions + temperature (or isotonic) calibrator +
  thresholds for the routing YAML's targets + the out-of-scope scorer.

    python bench/calibration_cost.py [--repeats 3] [--nlu rasa_project/data/nlu]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from _intent_calibration import pipeline_settings  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402

from kefu.encoder.runtime import Encoder  # noqa: E402
from kefu.intent_head import HeadOptions, train_intent_model  # noqa: E402
from kefu.routing.settings import load_routing  # noqa: E402


def load_examples(nlu: Path) -> tuple[List[str], List[str]]:
    data = load_data(str(nlu))
    pairs = sorted({(e.get("text"), e.get("intent")) for e in data.intent_examples if e.get("text")})
    return [t for t, _ in pairs], [i for _, i in pairs]


def timed(run: Callable[[], object], repeats: int) -> List[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nlu", type=Path, default=ROOT / "rasa_project" / "data" / "nlu")
    parser.add_argument("--routing", type=Path, default=ROOT / "data" / "routing.yml")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = pipeline_settings()
    texts, labels = load_examples(args.nlu)
    encoder = Encoder.load(str(settings.model), runtime=settings.runtime, max_length=settings.max_length,
                                        batch_independent=True)
    started = time.perf_counter()
    encoded = encoder.encode(texts, batch_size=settings.batch_size)
    encode_s = time.perf_counter() - started
    x = np.vstack([e.cls if settings.pooling == "cls" else e.sentence for e in encoded]).astype(np.float32)
    targets = load_routing(args.routing).targets
    base = HeadOptions(**{k: v for k, v in settings.head.items() if k in HeadOptions.__dataclass_fields__})
    plain = HeadOptions(**{**base.__dict__, "calibration": "none", "out_of_scope": False})
    rows = [
        ("head only (before issue 10)", timed(lambda: train_intent_model(x, labels, plain, None), args.repeats)),
        ("head + temperature + thresholds + OOS",
         timed(lambda: train_intent_model(x, labels, base, targets), args.repeats)),
        ("head + isotonic + thresholds + OOS", timed(lambda: train_intent_model(
            x, labels, HeadOptions(**{**base.__dict__, "calibration": "isotonic"}), targets), args.repeats)),
    ]
    model = train_intent_model(x, labels, base, targets)
    print(f"\nProject NLU data: {len(texts)} examples, {len(set(labels))} intents, "
          f"{model.plan['calibration']['folds']}-fold; encoding once: {encode_s:.1f} s "
          f"({settings.runtime}, cached by content hash inside Rasa)\n")
    print("| training | median s | min s | vs head only | with encoding, vs head only |")
    print("|---|---:|---:|---:|---:|")
    head = statistics.median(rows[0][1])
    for name, times in rows:
        median = statistics.median(times)
        print(f"| {name} | {median:.2f} | {min(times):.2f} | {median / head:.2f}x | "
              f"{(median + encode_s) / (head + encode_s):.2f}x |")
    print("\n(the whole `rasa train` also trains DIET for entities, sentiment and the dialogue policies;"
          " the classifier is a small part of it)")


if __name__ == "__main__":
    main()
