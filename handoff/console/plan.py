"""The supervisor's thresholds panel: the routing-threshold plan of the model Kefu serves.

`GET /api/thresholds` answers `plan_summary` of the plan `kefu.modelplan.load_model_plan`
reads from the console's model (`ConsoleConfig.model_path`, KEFU_MODEL_DIR/kefu.tar.gz like
`kefu run`). Reading the archive takes about a second, so the answer (or the error) is kept
until the file changes (size, mtime, inode) and the read runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from kefu.errors import ConfigError
from kefu.modelplan import load_model_plan
from kefu.thresholds import NoPlan

MAX_INTENTS = 500
MAX_WARNINGS = 200
MAX_TEXT = 500


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):  # noqa: UP038
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value: Any) -> Optional[str]:
    return None if value is None else str(value)[:MAX_TEXT]


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _band(raw: Any) -> Dict[str, Any]:
    raw = _dict(raw)
    return {"coverage": _num(raw.get("coverage")), "accuracy": _num(raw.get("accuracy")),
            "support": _count(raw.get("support"))}


def _bands(raw: Any) -> Dict[str, Dict[str, Any]]:
    return {name: _band(_dict(raw).get(name)) for name in ("auto", "specialist", "below")}


def _sources(raw: Any) -> Dict[str, Optional[str]]:
    return {name: _text(_dict(raw).get(name)) for name in ("auto", "specialist")}


def plan_summary(plan: Dict[str, Any], model: Dict[str, Any]) -> Dict[str, Any]:
    """The threshold part of a plan, with every value type-checked (numbers finite or null)."""
    th = _dict(plan.get("thresholds"))
    cal = _dict(plan.get("calibration"))
    oos = _dict(plan.get("oos"))
    targets = _dict(th.get("targets"))
    intents: List[Dict[str, Any]] = []
    for name, entry in list(_dict(th.get("intents")).items())[:MAX_INTENTS]:
        entry = _dict(entry)
        intents.append({"intent": _text(name), "auto": _num(entry.get("auto")),
                        "specialist": _num(entry.get("specialist")), "source": _sources(entry.get("source")),
                        "support": _count(entry.get("support")), "bands": _bands(entry.get("bands"))})
    warnings = th.get("warnings") if isinstance(th.get("warnings"), list) else []
    return {
        "model": model,
        "mode": _text(th.get("mode")),
        "targets": {key: _num(targets.get(key)) for key in ("auto_precision", "specialist_precision")}
        | {"min_band_support": _count(targets.get("min_band_support"))},
        "auto": _num(th.get("auto")),
        "specialist": _num(th.get("specialist")),
        "source": _sources(th.get("source")),
        "bands": _bands(th.get("bands")),
        "intents": intents,
        "warnings": [_text(w) for w in warnings[:MAX_WARNINGS]],
        "oos": {"method": _text(oos.get("method")), "threshold": _num(oos.get("threshold")),
                "in_scope_recall": _num(oos.get("in_scope_recall"))} if oos else None,
        "calibration": {
            "method": _text(cal.get("method")), "temperature": _num(cal.get("temperature")),
            "ece_before": _num(_dict(cal.get("before")).get("ece")),
            "ece_after": _num(_dict(cal.get("after")).get("ece")),
            "examples": _count(cal.get("examples")), "folds": _count(cal.get("folds")),
        } if cal else None,
        "data": {_text(k): _count(v) if isinstance(v, int) else _text(v) if isinstance(v, str) else _num(v)
                 for k, v in list(_dict(th.get("data")).items())[:50]},
    }


def _read(path: Path, stat: os.stat_result) -> Dict[str, Any]:
    plan = load_model_plan(path)
    modified = datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat(timespec="seconds")
    return plan_summary(plan, {"path": str(path), "file": path.name, "modified_at": modified, "bytes": stat.st_size})


class PlanCache:
    """The summary of one model file's plan, re-read only when the file changes."""

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path
        self._key: Optional[Tuple[int, int, int]] = None
        self._value: Optional[Dict[str, Any]] = None
        self._error: Optional[Tuple[type, str]] = None
        self._lock = asyncio.Lock()

    async def get(self) -> Dict[str, Any]:
        """The summary; NoPlan (no model, no plan) or ConfigError (unreadable) otherwise."""
        if self.path is None or not str(self.path).strip():
            raise NoPlan("the console has no model configured (KEFU_MODEL_DIR)")
        path = self.path
        async with self._lock:
            try:
                stat = path.stat()
            except OSError:
                self._key = None
                raise NoPlan(f"{path}: no trained model; train one with `make model`") from None
            key = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
            if key != self._key:
                try:
                    self._value, self._error = await asyncio.get_running_loop().run_in_executor(
                        None, _read, path, stat), None
                except ConfigError as exc:
                    self._value, self._error = None, (NoPlan if isinstance(exc, NoPlan) else ConfigError, str(exc))
                self._key = key
            if self._error is not None:
                raise self._error[0](self._error[1])
            assert self._value is not None
            return self._value
