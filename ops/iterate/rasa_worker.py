"""Train and/or evaluate an NLU model in a child process (`python -m ops.iterate.rasa_worker ...`).

Rasa and TensorFlow are imported only here, so `kefu`, the Celery worker and `kefu iterate`
stay Rasa-free and light; the parent reads the JSON this writes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from rasa.core.agent import Agent
from rasa.model_training import train, train_nlu
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.training_data import TrainingData

from ops.iterate.scoring import score


def _merged_training_data(paths: list[str], eval_texts: set[str], out_dir: Path) -> tuple[Path, int]:
    """All training examples minus any whose text is in the frozen evaluation set (never trained on)."""
    data = TrainingData().merge(*[load_data(p) for p in paths])
    kept = [ex for ex in data.training_examples if (ex.get("text") or "").strip().lower() not in eval_texts]
    dropped = len(data.training_examples) - len(kept)
    clean = TrainingData(kept, entity_synonyms=data.entity_synonyms, regex_features=data.regex_features,
                         lookup_tables=data.lookup_tables)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "nlu.yml"
    path.write_text(clean.nlu_as_yaml(), encoding="utf-8")
    return path, dropped


def evaluate(model: str, eval_file: str, threshold: float) -> dict[str, Any]:
    agent = Agent.load(model)
    examples = [ex for ex in load_data(eval_file).intent_examples]
    true, pred, conf = [], [], []
    for ex in examples:
        parsed = asyncio.run(agent.parse_message(ex.get("text")))
        true.append(ex.get("intent"))
        pred.append((parsed.get("intent") or {}).get("name") or "")
        conf.append(float((parsed.get("intent") or {}).get("confidence") or 0.0))
    return {"metrics": score(true, pred, conf, threshold), "examples": len(examples)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--data", action="append", default=[])
    p.add_argument("--eval", required=True)
    p.add_argument("--model", help="evaluate this model instead of training one")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--name", default="candidate")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--result", required=True)
    p.add_argument("--domain", help="train a full model (NLU + dialogue) with this domain")
    p.add_argument("--core-data", action="append", default=[], help="stories/rules for a full model (repeatable)")
    args = p.parse_args(argv)
    logging.getLogger("rasa").setLevel(logging.WARNING)
    result: dict[str, Any] = {}
    model = args.model
    if model is None:
        eval_texts = {(ex.get("text") or "").strip().lower() for ex in load_data(args.eval).intent_examples}
        data_path, dropped = _merged_training_data(args.data, eval_texts, Path(args.out_dir) / f"{args.name}-data")
        if args.domain:  # a model the Rasa server can serve: NLU and dialogue policies
            model = train(args.domain, args.config, [str(data_path), *args.core_data], args.out_dir,
                          fixed_model_name=args.name).model
        else:
            model = train_nlu(args.config, str(data_path), args.out_dir, fixed_model_name=args.name)
        if not model:
            print("training failed", file=sys.stderr)
            return 1
        result.update({"model": str(model), "dropped_eval_overlap": dropped})
    result.update(evaluate(model, args.eval, args.threshold))
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
