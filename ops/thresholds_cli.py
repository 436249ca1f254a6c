"""`kefu thresholds`: the calibration and routing-threshold plan persisted with a trained model.

Reads `calibration.json` from the model archive with `kefu.thresholds.read_plan` and prints the
table training prints (`format_plan`), or the plan as JSON with `--json`. `load_model_plan` turns
every way a model can lack a usable plan into a `ConfigError` naming the file; the agent console
(`/api/thresholds`) and `kefu train` use it too.
"""

from __future__ import annotations

import argparse
import json
import math
import tarfile
import zlib
from pathlib import Path
from typing import Any, Dict, Optional, Union

from kefu.config import Settings
from kefu.errors import ConfigError
from kefu.thresholds import PLAN_FILE, NoPlan, format_plan, json_safe, read_plan


def _is_archive(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, zlib.error):
        return False


def load_model_plan(model: Union[str, Path]) -> Dict[str, Any]:
    """The plan of a model archive (or unpacked model directory), checked to be a threshold plan.

    Raises NoPlan for a missing file or a model without a plan, ConfigError for anything unreadable.
    """
    if not str(model).strip():
        raise ConfigError("the model path is empty (give --model PATH, or set KEFU_MODEL_DIR)")
    path = Path(model)
    if not path.exists():
        raise NoPlan(f"{path}: no such model file; train one with `make model` (or `kefu train`)")
    if path.is_file() and not _is_archive(path):
        raise ConfigError(f"{path}: not a model archive (expected the .tar.gz that `rasa train` writes)")
    if not path.is_file() and not path.is_dir():
        raise ConfigError(f"{path}: not a file")
    plan = read_plan(path)  # NoPlan when the model has none; ConfigError when it cannot be read
    if not isinstance(plan, dict) or not isinstance(plan.get("thresholds"), dict):
        raise ConfigError(f"{path}: {PLAN_FILE} is not a threshold plan (it has no thresholds section)")
    try:
        format_plan(plan)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ConfigError(f"{path}: {PLAN_FILE} is malformed ({exc.__class__.__name__}: {exc})") from exc
    return plan


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
        from ops.modelbuild import model_path

        model = model_path(settings or Settings())
    plan = load_model_plan(model)
    if args.json:
        print(json.dumps(json_safe(plan), ensure_ascii=False, indent=1, allow_nan=False))
    else:
        print(f"Model: {model}")
        print(format_plan(plan))
    return 0
