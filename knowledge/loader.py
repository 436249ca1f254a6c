"""`kefu kb load`: validate all seed content first, then upsert each store in one transaction.

Also what `kefu run` calls on start: `load_seed(..., only_if_changed=True)` skips the work when the
content hash recorded in the database matches the files (idempotent and fast on later starts).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from knowledge.cases import open_case_store
from knowledge.content import content_hash, read_cases, read_faq
from knowledge.errors import KefuError, ValidationFailed
from knowledge.faq import open_faq_store
from knowledge.pg import get_meta, set_meta

log = logging.getLogger(__name__)
SEED_KEY = "seed_hash"


@dataclass
class LoadReport:
    skipped: bool = False
    content_hash: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _optional(module: str, name: str) -> Any:
    """Engineer B's graph/rules entry points, or None while they do not exist."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def validate(directory: Path) -> tuple[list, list]:
    """Parse every content kind; raise one ValidationFailed listing all problems across files."""
    problems: list[tuple[str, str]] = []
    faq, cases = [], []
    for reader, sink in ((read_faq, "faq"), (read_cases, "cases")):
        try:
            result = reader(directory)
            if sink == "faq":
                faq = result
            else:
                cases = result
        except ValidationFailed as exc:
            problems.extend(exc.problems)
    for module, part in (("knowledge.rules", "rules"), ("knowledge.graph", "graph")):
        check = _optional(module, "validate_dir")
        if check is not None and (directory / part).is_dir():
            try:
                check(directory / part)
            except ValidationFailed as exc:
                problems.extend(exc.problems)
    if problems:
        raise ValidationFailed(problems)
    return faq, cases


def load_seed(faq_url: str, cases_url: Optional[str], directory: Path, *, graph_url: Optional[str] = None,
              only_if_changed: bool = False, progress: bool = False, embedder: Any = None,
              cache: Any = None) -> LoadReport:
    """Load `directory` (data/knowledge) into the FAQ, case and graph stores."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValidationFailed([(str(directory), "not a directory")])
    # the PostgreSQL part of the seed; the graph loader keeps its own digest (and is idempotent itself)
    report = LoadReport(content_hash=content_hash(directory, ("faq", "cases")))
    kwargs = {"embedder": embedder} if embedder is not None else {}
    faq_store = open_faq_store(faq_url, **kwargs)
    try:
        if only_if_changed:
            faq_store.ensure_schema()
            with faq_store.db.connection() as conn:
                if get_meta(conn, SEED_KEY) == report.content_hash:
                    report.skipped = True
                    return report
        faq, cases = validate(directory)
        report.counts["faq"] = faq_store.upsert(faq, note=f"seed {report.content_hash[:8]}", progress=progress)
        case_store = open_case_store(cases_url or faq_url, **kwargs)
        try:
            report.counts["cases"] = case_store.upsert(cases, progress=progress)
        finally:
            case_store.close()
        with faq_store.db.connection() as conn:
            set_meta(conn, SEED_KEY, report.content_hash)
        if cache is not None:
            report.counts["cache_invalidated"] = cache.invalidate()
        load_graph = _optional("knowledge.graph", "load_graph")
        if load_graph is not None and graph_url and (directory / "graph").is_dir():
            try:
                report.counts["graph"] = load_graph(graph_url, directory / "graph")
            except KefuError as exc:  # graph down or invalid: FAQ and cases are loaded regardless
                report.warnings.append(f"graph not loaded: {exc}")
        elif (directory / "graph").is_dir():
            report.warnings.append("graph not loaded: no graph URL or knowledge.graph.load_graph")
        return report
    finally:
        faq_store.close()
