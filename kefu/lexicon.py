"""The industry lexicon: domain terms → the jieba user dictionary NLU and knowledge search load.

Terms come from the knowledge base (graph node names and aliases: products, fees, limits, card
tiers; rule/policy titles; FAQ tags) and the NLU data (`product` entity values). Each multi-
character Chinese term gets the smallest jieba frequency that keeps it one token
(`jieba.suggest_freq`), so the dictionary never over-merges ordinary words. Output:
`data/lexicons/jieba/kefu_generated.txt` ("term freq tag" lines, sorted, byte-stable); the
hand-kept `kefu_terms.txt` beside it wins for terms it already lists. `kefu lexicon` and the
knowledge-ingestion job regenerate it; the file is part of `ops/modelbuild.py`'s fingerprint,
so a changed lexicon retrains the model.
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import yaml

from kefu.config import PROJECT_ROOT, Settings
from kefu.errors import BadInput

log = logging.getLogger(__name__)

KNOWLEDGE_DIR = PROJECT_ROOT / "data" / "knowledge"
NLU_DIR = PROJECT_ROOT / "rasa_project" / "data" / "nlu"
JIEBA_DIR = PROJECT_ROOT / "data" / "lexicons" / "jieba"
OUTPUT_NAME = "kefu_generated.txt"
TERM_TYPES = {"Product": "nz", "Fee": "n", "Limit": "n", "Category": "n", "Policy": "nz", "Document": "n",
              "Channel": "n", "Service": "nz"}
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_VALID = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fffA-Za-z0-9·]{2,20}$")
_SPLIT = re.compile(r"[（）()、，,/：:；;\s]+")
# aliases that are questions or phrases, not terms
_PHRASE = re.compile(r"多少|怎么|什么|哪|吗|能不能|开个|办个|一天|每天|一次")
_ENTITY = re.compile(r"\[([^\]\n]{1,40})\]\(product\)")


@dataclass
class LexiconResult:
    path: Path
    terms: int
    changed: bool


def _pieces(text: object) -> Iterator[str]:
    for piece in _SPLIT.split(str(text or "")):
        if _CJK.search(piece) and _VALID.match(piece) and not _PHRASE.search(piece):
            yield piece


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def _load(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not readable YAML ({exc.__class__.__name__})") from exc


def collect_terms(knowledge_dir: Path = KNOWLEDGE_DIR, nlu_dir: Path = NLU_DIR) -> dict[str, str]:
    """term → jieba POS tag, from the knowledge base and the NLU data."""
    terms: dict[str, str] = {}
    for path in _yaml_files(knowledge_dir / "graph"):
        doc = _load(path)
        for node in (doc.get("nodes") if isinstance(doc, dict) else None) or []:
            tag = TERM_TYPES.get(node.get("type")) if isinstance(node, dict) else None
            if tag is None:
                continue
            for value in [node.get("name_zh"), *(node.get("aliases") or [])]:
                for term in _pieces(value):
                    terms.setdefault(term, tag)
    for path in _yaml_files(knowledge_dir / "rules"):
        doc = _load(path)
        title = doc.get("title") if isinstance(doc, dict) else None
        for term in _pieces(title.get("zh") if isinstance(title, dict) else None):
            terms.setdefault(term, "nz")
    for path in _yaml_files(knowledge_dir / "faq"):
        doc = _load(path)
        for entry in (doc.get("faq") if isinstance(doc, dict) else None) or []:
            for tag in (entry.get("tags") if isinstance(entry, dict) else None) or []:
                for term in _pieces(tag):
                    terms.setdefault(term, "n")
    for path in _yaml_files(nlu_dir):
        for match in _ENTITY.finditer(path.read_text(encoding="utf-8")):
            for term in _pieces(match.group(1)):
                terms.setdefault(term, "nz")
    return terms


def _manual_terms(jieba_dir: Path, exclude: str) -> set[str]:
    found = set()
    for path in sorted(jieba_dir.glob("*")):
        if path.is_file() and path.name != exclude:
            found.update(line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return found


def render(terms: dict[str, str], jieba_dir: Path, output_name: str = OUTPUT_NAME) -> str:
    """The dictionary text: terms not already hand-kept, with the frequency that keeps each whole."""
    import jieba  # lazy: jieba (0.1 s) stays off `kefu --help`, which imports this module

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    manual = _manual_terms(jieba_dir, output_name)
    for path in sorted(jieba_dir.glob("*")):
        if path.is_file() and path.name != output_name:
            tok.load_userdict(str(path))
    lines = []
    for term in sorted(t for t in terms if t not in manual):
        freq = max(tok.suggest_freq(term, tune=False), 100)  # margin over the bare minimum for context
        lines.append(f"{term} {freq} {terms[term]}")
    return "".join(line + "\n" for line in lines)


def write_lexicon(knowledge_dir: Path = KNOWLEDGE_DIR, nlu_dir: Path = NLU_DIR, jieba_dir: Path = JIEBA_DIR,
                  output_name: str = OUTPUT_NAME) -> LexiconResult:
    """Regenerate the dictionary; the file is rewritten only when its content changes."""
    text = render(collect_terms(knowledge_dir, nlu_dir), jieba_dir, output_name)
    path = jieba_dir / output_name
    changed = not path.is_file() or path.read_text(encoding="utf-8") != text
    if changed:
        jieba_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return LexiconResult(path, text.count("\n"), changed)


def tokenizer_for(jieba_dir: Path = JIEBA_DIR):  # -> jieba.Tokenizer
    """A jieba tokenizer loading every dictionary file of `jieba_dir`, as Rasa's JiebaTokenizer does."""
    import jieba  # lazy: jieba (0.1 s) stays off `kefu --help`, which imports this module

    tok = jieba.Tokenizer()
    for path in sorted(jieba_dir.glob("*")):
        if path.is_file():
            tok.load_userdict(str(path))
    return tok


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lexicon", help="regenerate the jieba user dictionary from the knowledge base")
    p.add_argument("--check", action="store_true", help="exit 1 if the dictionary is out of date (CI)")
    p.add_argument("--knowledge", type=Path, default=KNOWLEDGE_DIR)
    p.add_argument("--out-dir", type=Path, default=JIEBA_DIR)


def main(args: argparse.Namespace, settings: Optional[Settings] = None) -> int:
    if not args.knowledge.is_dir():
        raise BadInput(f"--knowledge {args.knowledge} is not a directory")
    if args.check:
        text = render(collect_terms(args.knowledge), args.out_dir)
        path = args.out_dir / OUTPUT_NAME
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        print("lexicon is up to date" if current == text else f"lexicon is out of date: run `kefu lexicon` ({path})")
        return 0 if current == text else 1
    result = write_lexicon(args.knowledge, NLU_DIR, args.out_dir)
    print(f"{result.terms} generated terms in {result.path} ({'updated' if result.changed else 'unchanged'})")
    return 0

