"""`kefu thresholds`: the calibration and routing-threshold plan persisted with a trained model.

Reads the plan from the model archive with `kefu.modelplan.load_model_plan` (which turns every way
a model can lack a usable plan into a `ConfigError` naming the file) and prints the table training
prints (`format_plan`), or the plan as JSON with `--json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Union

from kefu.config import Settings
from kefu.modelplan import load_model_plan, model_path
from kefu.thresholds import format_plan, json_safe


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "thresholds", help="show the calibration and routing thresholds stored with a trained model"
    )
    p.add_argument("--model", default=None, metavar="PATH",
                   help="model archive (default: the one `kefu run` serves, KEFU_MODEL_DIR/kefu.tar.gz)")
    p.add_argument("--json", action="store_true", help="print the stored plan as JSON (NaN as null)")


def main(args: argparse.Namespace, settings: Optional[Settings] = None) -> int:
    if args.model is not None:
        model: Union[str, Path] = args.model
    else:
        model = model_path(settings or Settings())
    plan = load_model_plan(model)
    if args.json:
        print(json.dumps(json_safe(plan), ensure_ascii=False, indent=1, allow_nan=False))
    else:
        print(f"Model: {model}")
        print(format_plan(plan))
    return 0
