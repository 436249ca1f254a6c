"""Datasets and Rasa NLU YAML for bench/intent.py.

Every dataset is read by path from --datasets-dir (never copied into the repository) and
reduced to `Split`s: (text, intent) pairs for training and testing. Texts are
whitespace-normalised (Rasa's YAML examples are one line each); empty texts are dropped.
Training YAML is written with PyYAML and read back with Rasa's own reader: an example
that does not come back as exactly the text and intent written (e.g. markdown entity
syntax such as "[x](y)") is dropped and counted, so Rasa trains on what we think it does.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import yaml
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
from sklearn.model_selection import train_test_split

Example = Tuple[str, str]  # (text, intent)
DATASETS = ("banking77", "banking77_10shot", "smp2019")
TEN_SHOT_SEEDS = (0, 1, 2)
SMP_SEED = 42


@dataclass
class Split:
    dataset: str
    language: str  # "en" -> WhitespaceTokenizer, "zh" -> JiebaTokenizer
    train: List[Example]
    test: List[Example]
    seed: int | None = None
    notes: List[str] = field(default_factory=list)


def normalise(text: str) -> str:
    return " ".join(str(text).split())


def _clean(rows: List[Example], what: str, notes: List[str]) -> List[Example]:
    changed = sum(1 for text, _ in rows if text != normalise(text))
    out = [(normalise(t), i) for t, i in rows if normalise(t)]
    if changed:
        notes.append(f"{what}: {changed} texts whitespace-normalised (newlines/double or edge spaces)")
    if len(out) < len(rows):
        notes.append(f"{what}: {len(rows) - len(out)} empty texts dropped")
    return out


def _banking_csv(path: Path) -> List[Example]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def banking77(root: Path) -> Split:
    notes: List[str] = []
    train = _clean(_banking_csv(root / "banking77" / "train.csv"), "train.csv", notes)
    test = _clean(_banking_csv(root / "banking77" / "test.csv"), "test.csv", notes)
    return Split("banking77", "en", train, test, notes=notes)


def banking77_10shot(root: Path, seed: int, shots: int = 10) -> Split:
    """`shots` examples per intent drawn from train.csv (random.Random(seed) per sorted intent)."""
    full = banking77(root)
    by_intent: Dict[str, List[str]] = defaultdict(list)
    for text, intent in full.train:
        by_intent[intent].append(text)
    rng = random.Random(seed)
    train = [(t, intent) for intent in sorted(by_intent) for t in rng.sample(by_intent[intent], shots)]
    return Split("banking77_10shot", "en", train, full.test, seed=seed, notes=full.notes)


def smp2019(root: Path, seed: int = SMP_SEED) -> Split:
    """SMP2019-ECDT task 1 train.json: a list of {text, domain, intent, slots}.

    The label is "domain.intent" (48 labels): bare intents such as QUERY are shared by
    most domains, so they alone would not say what the customer wants.
    """
    rows = json.loads((root / "smp2019_ecdt" / "train.json").read_text(encoding="utf-8"))
    notes: List[str] = []
    data = _clean([(r["text"], f"{r['domain']}.{r['intent']}") for r in rows], "train.json", notes)
    counts = Counter(label for _, label in data)
    rare = [ex for ex in data if counts[ex[1]] < 2]
    common = [ex for ex in data if counts[ex[1]] >= 2]
    train, test = train_test_split(common, test_size=0.2, random_state=seed, stratify=[label for _, label in common])
    notes.append(f"{len(rare)} examples of {len(rare)} single-example labels kept in train only")
    return Split("smp2019", "zh", list(train) + rare, list(test), seed=seed, notes=notes)


def load_splits(name: str, root: Path) -> List[Split]:
    if name == "banking77":
        return [banking77(root)]
    if name == "banking77_10shot":
        return [banking77_10shot(root, seed) for seed in TEN_SHOT_SEEDS]
    if name == "smp2019":
        return [smp2019(root)]
    raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")


class _Literal(str):
    pass


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


yaml.SafeDumper.add_representer(_Literal, _literal)


def _dump(examples: List[Example], path: Path) -> None:
    by_intent: Dict[str, List[str]] = defaultdict(list)
    for text, intent in examples:
        by_intent[intent].append(text)
    doc = {
        "version": "3.1",
        "nlu": [{"intent": i, "examples": _Literal("".join(f"- {t}\n" for t in ts))} for i, ts in by_intent.items()],
    }
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=10**6), encoding="utf-8")


def write_rasa_nlu(examples: List[Example], path: Path) -> Tuple[int, int, int]:
    """Write `examples` as Rasa NLU YAML at `path`.

    Returns (written, duplicates merged, dropped because Rasa read them back differently).
    """
    unique = list(dict.fromkeys(examples))  # Rasa keeps one copy of a repeated (text, intent)
    _dump(unique, path)
    parsed = RasaYAMLReader().read(str(path))
    back = {(m.get("text"), m.get("intent")) for m in parsed.intent_examples}
    kept = [ex for ex in unique if ex in back]
    if len(kept) < len(unique):
        _dump(kept, path)
    return len(kept), len(examples) - len(unique), len(unique) - len(kept)
