"""One model iteration: collect → (designer review) → train candidate → evaluate → promote or refuse.

Collection reads the reviewed conversations since the current model was made: agent corrections
(`ops.iterate.proposals`), misrouted handoffs and approved knowledge-review suggestions
(`ops.iterate.sources`, which need the routing file for skill groups and FAQ intents).

The frozen evaluation set is a Rasa NLU file that is never trained on (overlapping examples are
dropped from the training data). The candidate is promoted only if it is no worse than the
current model on every guarded metric (`ops.iterate.scoring`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from analytics.database import tracker_database
from kefu.config import PROJECT_ROOT, Settings
from kefu.errors import ConfigError, KefuError
from ops.iterate.proposals import Proposals, collect_corrections
from ops.iterate.registry import Registry
from ops.iterate.scoring import compare
from ops.iterate.serving import Serving, install, project_serving
from ops.iterate.sources import collect_knowledge, collect_misroutes

log = logging.getLogger("kefu.iterate")


@dataclass
class IterationConfig:
    registry: Path
    config: Path  # Rasa pipeline config
    data: list[Path]  # base NLU data (files or directories)
    eval_file: Path  # frozen evaluation set
    threshold: float = 0.5
    tolerance: float = 0.0
    env: dict[str, str] = field(default_factory=dict)
    domain: Optional[Path] = None  # with a domain, candidates are full models (NLU + dialogue policies)
    core_data: list[Path] = field(default_factory=list)  # stories and rules of a full model
    serving: Optional[Serving] = None  # where a promoted model goes into service (None: registry only)
    routing_file: Optional[Path] = None  # skill groups / FAQ intents; None: only agent corrections are collected


def _hash_paths(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for base in paths:
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for f in files:
            digest.update(str(f.name).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def _run_worker(cfg: IterationConfig, args: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "ops.iterate.rasa_worker", "--config", str(cfg.config), "--eval",
               str(cfg.eval_file), "--threshold", str(cfg.threshold), "--result", str(result), *args]
        proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True,
                              env={**os.environ, "RASA_TELEMETRY_ENABLED": "false", **cfg.env})
        if proc.returncode != 0 or not result.is_file():
            raise KefuError(f"model training/evaluation failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
        return json.loads(result.read_text(encoding="utf-8"))


def collect(cfg: IterationConfig, proposals: Proposals, since: float, url: Optional[str],
            kb_url: Optional[str] = None) -> list[dict[str, Any]]:
    """New proposals from every source since `since`; corrections first, so a corrected ticket is theirs."""
    collected = collect_corrections(url, since, proposals) if url else []
    if cfg.routing_file is not None:
        if url:
            collected += collect_misroutes(url, since, proposals, cfg.routing_file)
        if kb_url:
            collected += collect_knowledge(kb_url, since, proposals, cfg.routing_file)
    return collected


def run_iteration(cfg: IterationConfig, url: Optional[str] = None, kb_url: Optional[str] = None) -> dict[str, Any]:
    """Collect new proposals (tickets from `url`, knowledge review from `kb_url`), then train and judge
    a candidate if the data changed."""
    for path in (cfg.config, cfg.eval_file, *cfg.data, *cfg.core_data, *([cfg.domain] if cfg.domain else [])):
        if not path.exists():
            raise ConfigError(f"iteration input {path} does not exist")
    registry, proposals = Registry(cfg.registry), Proposals(cfg.registry)
    current = registry.current()
    collected = []
    if url is not None or kb_url is not None:
        since = current["created"] if current else 0.0
        collected = collect(cfg, proposals, since, url, kb_url)
        log.info("collected %d new proposals for review", len(collected))
    accepted = proposals.accepted_file()
    train_paths = [*cfg.data, *([accepted] if accepted else [])]
    eval_hash = _hash_paths([cfg.eval_file])
    dialogue = [cfg.domain, *cfg.core_data] if cfg.domain else []
    data_hash = _hash_paths([cfg.config, *train_paths, *dialogue]) + "-" + eval_hash
    seen = registry.find_by_hash(data_hash)
    if seen is not None:
        log.info("nothing new to train: data %s is model %s (%s)", data_hash, seen["version"], seen["status"])
        return {"status": "unchanged", "version": seen["version"], "collected": len(collected)}
    if current is not None and current.get("eval_hash") != eval_hash:
        res = _run_worker(cfg, ["--model", current["model"], "--out-dir", str(cfg.registry / "models")])
        registry.update_metrics(current["version"], res["metrics"], eval_hash)
        current = registry.current()
    version = registry.next_version()
    models = cfg.registry / "models"
    args = ["--out-dir", str(models), "--name", version]
    for p in train_paths:
        args += ["--data", str(p)]
    if cfg.domain:
        args += ["--domain", str(cfg.domain)]
        for p in cfg.core_data:
            args += ["--core-data", str(p)]
    res = _run_worker(cfg, args)
    metrics = res["metrics"]
    reasons = compare(metrics, current["metrics"], cfg.tolerance) if current else []
    status = "refused" if reasons else "promoted"
    shutil.rmtree(models / f"{version}-data", ignore_errors=True)
    # serve first: a model that cannot go into service is not recorded as the current one
    served = install(res["model"], cfg.serving) if status == "promoted" else {"installed": False}
    registry.record(version, model=res["model"], data_hash=data_hash, metrics=metrics, status=status,
                    reasons=reasons, eval_hash=eval_hash)
    line = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
    if current is None:
        log.info("promote %s (first model): %s", version, line)
    elif reasons:
        log.warning("refuse %s: worse than %s on %s", version, current["version"], "; ".join(reasons))
    else:
        log.info("promote %s over %s: %s", version, current["version"], line)
    return {"status": status, "version": version, "metrics": metrics, "reasons": reasons, "served": served,
            "previous": current["version"] if current else None,
            "previous_metrics": current["metrics"] if current else None, "collected": len(collected),
            "dropped_eval_overlap": res.get("dropped_eval_overlap", 0)}


def rollback(cfg: IterationConfig, to: Optional[str] = None) -> dict[str, Any]:
    """Make the previous promoted model (or `to`) current again and put its archive into service."""
    served: dict[str, Any] = {}

    def serve(entry: dict[str, Any]) -> None:  # inside the registry's lock: a failure changes nothing
        served.update(install(entry["model"], cfg.serving))

    target = Registry(cfg.registry).rollback(to, before_commit=serve)
    log.info("rolled back to %s", target)
    return {"current": target, "served": served}


def project_config(settings: Settings, registry: Optional[str] = None) -> IterationConfig:
    """The project's iteration: the real pipeline, NLU and dialogue data (candidates are full models the
    Rasa server can serve), the frozen set in data/iterate/, and the archive `kefu run` serves."""
    rasa = PROJECT_ROOT / "rasa_project"
    return IterationConfig(
        registry=Path(registry) if registry else settings.model_dir / "registry",
        config=rasa / "config.yml",
        data=[rasa / "data" / "nlu"],
        eval_file=PROJECT_ROOT / "data" / "iterate" / "eval_nlu.yml",
        domain=rasa / "domain",
        core_data=sorted((rasa / "data").glob("*.yml")),
        serving=project_serving(settings),
        routing_file=settings.routing_file,
    )


def run_from_settings(settings: Settings, registry: Optional[str] = None) -> dict[str, Any]:
    cfg = project_config(settings, registry)
    with tracker_database(settings) as url:
        return run_iteration(cfg, url, settings.faq_url)
