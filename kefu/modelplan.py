"""The model Kefu serves and the routing-threshold plan stored in it, read without Rasa.

`kefu run` serves KEFU_MODEL_DIR/kefu.tar.gz (`model_path`). `load_model_plan` reads its
`calibration.json` with `kefu.thresholds.read_plan` and turns every way a model can lack a usable
plan into a `ConfigError` naming the file; `kefu train`, `kefu thresholds` and the agent console's
thresholds panel (`/api/thresholds`) all read the plan through it.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path
from typing import Any, Dict, Union

from kefu.config import Settings
from kefu.errors import ConfigError
from kefu.thresholds import PLAN_FILE, NoPlan, format_plan, read_plan

MODEL_NAME = "kefu"


def model_path(settings: Settings) -> Path:
    """The archive `kefu train` writes and `kefu run` serves."""
    return settings.model_dir / f"{MODEL_NAME}.tar.gz"


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
