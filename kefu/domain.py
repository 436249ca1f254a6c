"""The dialogue domain's intent names (rasa_project/domain*.yml), read without importing Rasa.

Agents' corrections in the console and `kefu iterate --intent` must name an intent the model knows;
external intents (`EXTERNAL_*`, sent by programs, never typed by a customer) are left out. Re-read
when a domain file changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml

from kefu.config import PROJECT_ROOT
from kefu.errors import ConfigError

DOMAIN_DIR = PROJECT_ROOT / "rasa_project"
_cache: dict[Path, tuple[tuple, tuple[str, ...]]] = {}


def domain_files(root: Path = DOMAIN_DIR) -> list[Path]:
    """`domain.yml`, `domain/*.yml` and `domain_*.yml` under `root` (Rasa's layouts), sorted."""
    found = [p for p in root.glob("domain*.yml") if p.is_file()]
    found += [p for p in (root / "domain").glob("*.yml") if p.is_file()] if (root / "domain").is_dir() else []
    return sorted(set(found))


def domain_intents(root: Optional[Path] = None) -> tuple[str, ...]:
    """Sorted intent names customers can utter; cached until a file's mtime or size changes."""
    root = Path(root or DOMAIN_DIR)
    files = domain_files(root)
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    cached = _cache.get(root)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    names: set[str] = set()
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the domain file {path}: {exc}") from exc
        for item in (doc.get("intents") or []) if isinstance(doc, dict) else []:
            name = item if isinstance(item, str) else next(iter(item), None) if isinstance(item, dict) else None
            if isinstance(name, str) and name and not name.startswith("EXTERNAL_"):
                names.add(name)
    if not names:
        raise ConfigError(f"no intents found in the domain under {root}")
    result = tuple(sorted(names))
    _cache[root] = (stamp, result)
    return result
