"""Rule-based sentiment for Chinese and English customer messages.

Why rules next to a learned head: they explain themselves (the `signals` list tells an
agent why a customer was routed to the senior queue), need no training data, and
catch escalation cues (投诉, 12315, "I'll sue") that a classifier trained on a few
hundred utterances may miss. Chinese is scanned by forward maximum matching over the
lexicon (so 不错 wins over 不 + 错), English word by word plus TextBlob's polarity.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from kefu.config import PROJECT_ROOT
from kefu.errors import BadInput

DEFAULT_DIR = PROJECT_ROOT / "data" / "lexicons" / "sentiment"
MAX_CHARS = 2000  # same cap as KEFU_MAX_MESSAGE_CHARS: rules on a 10,000-char paste stay cheap
NEGATED_POSITIVE = -0.8  # 不好: clearly negative
NEGATED_NEGATIVE = -0.4  # 不差: only mildly positive
CONTRAST_BEFORE, CONTRAST_AFTER = 0.5, 1.5
EXCLAMATION = 1.3
SCALE = 2.0  # score = tanh(total / SCALE)
TEXTBLOB_WEIGHT = 2.0  # TextBlob polarity -1..1 counts like a lexicon word of weight -2..2
TEXTBLOB_POSITIVE, TEXTBLOB_NEGATIVE = 0.5, -0.3  # the seed article's thresholds
STRONG_CUE_SCORE = -0.8

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ud800-\udfff\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_DIGITS = re.compile(r"\d+")
_BOUNDARY = set(",，。.;；:：!！?？~～\n、")
_REPEATED = re.compile(r"[!！?？]{2,}|[。.]{3,}|…{2,}|~{3,}|～{3,}")
_LATIN_WORDS = re.compile(r"[A-Za-z]{2,}")


@dataclass
class LexiconResult:
    """What the rules saw in one message."""

    score: float = 0.0  # tanh-squashed, in [-1, 1]
    total: float = 0.0  # raw weighted sum before squashing
    signals: List[str] = field(default_factory=list)
    strong_cue: bool = False  # a threat or insult fired
    hits: int = 0  # polarity words, emoji and TextBlob opinions that fired

    def add(self, signal: str) -> None:
        if signal not in self.signals:
            self.signals.append(signal)


def _read_rows(path: Path, columns: int) -> List[List[str]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: unreadable lexicon file") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != columns or not parts[0].strip():
            raise BadInput(f"{path}:{number}: expected {columns} tab-separated column(s)")
        rows.append([p.strip() for p in parts])
    return rows


def _weights(path: Path) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for term, value in _read_rows(path, 2):
        try:
            weight = float(value)
        except ValueError as exc:
            raise BadInput(f"{path}: weight of {term!r} is not a number") from exc
        if not math.isfinite(weight) or abs(weight) > 5:
            raise BadInput(f"{path}: weight of {term!r} must be a finite number in [-5, 5]")
        out[term.lower()] = weight
    return out


@dataclass
class Lexicon:
    """Every term the rules know, by kind. Build with ``Lexicon.load``."""

    polarity: Dict[str, float]
    negators: set
    degree: Dict[str, float]
    contrast: set
    cues: Dict[str, str]  # threat / insult
    emoji: Dict[str, float]
    max_len: int = 1
    emoji_pattern: Optional[re.Pattern] = None

    def __post_init__(self) -> None:
        terms = [*self.polarity, *self.negators, *self.degree, *self.contrast, *self.cues]
        self.max_len = max((len(t) for t in terms), default=1)
        if self.emoji:
            alternation = "|".join(re.escape(e) for e in sorted(self.emoji, key=len, reverse=True))
            self.emoji_pattern = re.compile(rf"(?<![A-Za-z])(?:{alternation})(?![A-Za-z])")

    @classmethod
    def load(cls, directory: Path = DEFAULT_DIR) -> Lexicon:
        """Read the zh_*, en_* and emoji files of `directory` (see its SOURCES.md)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise BadInput(f"{directory}: no sentiment lexicon directory")
        polarity = {**_weights(directory / "zh_polarity.tsv"), **_weights(directory / "en_polarity.tsv")}
        negators = {r[0] for r in _read_rows(directory / "zh_negation.txt", 1)}
        contrast = {r[0] for r in _read_rows(directory / "zh_contrast.txt", 1)}
        degree = _weights(directory / "zh_degree.tsv")
        cues = {term.lower(): kind for term, kind in _read_rows(directory / "zh_threat.tsv", 2)}
        for term, kind in _read_rows(directory / "en_cues.tsv", 2):
            term = term.lower()
            if kind == "negation":
                negators.add(term)
            elif kind == "contrast":
                contrast.add(term)
            elif kind.startswith("degree:"):
                try:
                    degree[term] = float(kind.split(":", 1)[1])
                except ValueError as exc:
                    raise BadInput(f"en_cues.tsv: bad degree multiplier for {term!r}") from exc
            elif kind in ("threat", "insult"):
                cues[term] = kind
            else:
                raise BadInput(f"en_cues.tsv: unknown cue kind {kind!r} for {term!r}")
        for term, kind in cues.items():
            if kind not in ("threat", "insult"):
                raise BadInput(f"zh_threat.tsv: unknown cue kind {kind!r} for {term!r}")
        return cls(polarity, negators, degree, contrast, cues, _emoji(directory / "emoji.tsv"))


def _emoji(path: Path) -> Dict[str, float]:
    """Emoticons keep their case (T_T, :D), unlike words."""
    out: Dict[str, float] = {}
    for term, value in _read_rows(path, 2):
        try:
            out[term] = float(value)
        except ValueError as exc:
            raise BadInput(f"{path}: weight of {term!r} is not a number") from exc
    return out


Token = Tuple[str, str]  # (kind, term): kind in pol, neg, deg, contrast, threat, insult, end, end!


def _tokens(lexicon: Lexicon, text: str) -> List[Token]:
    """Forward maximum matching for CJK, whole words (and 2-3 word phrases) for Latin."""
    out: List[Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in _BOUNDARY:
            out.append(("end!" if char in "!！" else "end", char))
            i += 1
            continue
        if "a" <= char <= "z":
            words = []
            j = i
            for _ in range(3):
                match = _WORD.match(text, j)
                if not match:
                    break
                words.append((match.group(), match.end()))
                j = match.end()
                while j < n and text[j] == " ":
                    j += 1
            for size in range(len(words), 0, -1):
                phrase = " ".join(w for w, _ in words[:size])
                kind = _kind(lexicon, phrase)
                if kind:
                    out.append((kind, phrase))
                    i = words[size - 1][1]
                    break
            else:
                word = words[0][0] if words else char
                if word.endswith("n't"):
                    out.append(("neg", word))
                i = words[0][1] if words else i + 1
            continue
        if char.isdigit():
            match = _DIGITS.match(text, i)
            assert match is not None
            kind = _kind(lexicon, match.group())
            if kind:
                out.append((kind, match.group()))
            i = match.end()
            continue
        if _CJK.match(char):
            for size in range(min(lexicon.max_len, n - i), 0, -1):
                piece = text[i : i + size]
                kind = _kind(lexicon, piece)
                if kind:
                    out.append((kind, piece))
                    i += size
                    break
            else:
                i += 1
            continue
        i += 1
    return out


def _kind(lexicon: Lexicon, term: str) -> Optional[str]:
    if term in lexicon.cues:
        return lexicon.cues[term]
    if term in lexicon.degree:  # 好 is both: _score_tokens decides from what follows
        return "deg"
    if term in lexicon.polarity:
        return "pol"
    if term in lexicon.negators:
        return "neg"
    if term in lexicon.contrast:
        return "contrast"
    return None


def clean(text: str) -> str:
    """NFKC (full-width → ASCII), no control or direction characters, lower case, capped."""
    text = unicodedata.normalize("NFKC", text[: MAX_CHARS * 2])
    return _CONTROL.sub("", text)[:MAX_CHARS]


def _score_tokens(lexicon: Lexicon, tokens: List[Token], result: LexiconResult) -> float:
    total, clause = 0.0, 0.0
    negations, degree, after_contrast = 0, 1.0, False
    for index, (kind, term) in enumerate(tokens):
        if kind in ("end", "end!"):
            if kind == "end!" and clause:
                clause *= EXCLAMATION
            total += clause
            clause, negations, degree = 0.0, 0, 1.0
        elif kind == "neg":
            negations += 1
        elif kind == "deg":
            # 好 is both an adverb (好贵) and an adjective (好): an adverb only before an opinion
            following = tokens[index + 1][0] if index + 1 < len(tokens) else None
            if term in lexicon.polarity and following not in ("pol", "neg"):
                kind = "pol"
            else:
                degree = min(degree * lexicon.degree[term], 3.0)
                result.add("degree")
        elif kind == "contrast":
            total, clause = (total + clause) * CONTRAST_BEFORE, 0.0
            after_contrast = True
            negations, degree = 0, 1.0
            result.add("contrast")
        elif kind in ("threat", "insult"):
            result.add(kind)
            result.strong_cue = True
        if kind == "pol":
            weight = lexicon.polarity[term] * degree
            if negations % 2:
                weight *= NEGATED_POSITIVE if weight > 0 else NEGATED_NEGATIVE
                result.add("negation")
            clause += weight * (CONTRAST_AFTER if after_contrast else 1.0)
            result.hits += 1 if weight else 0  # zero-weight entries only block (你好 is not 好)
            negations, degree = 0, 1.0
    return total + clause


def textblob_polarity(text: str) -> Optional[float]:
    """TextBlob's English polarity, None when the text has no English words to judge."""
    if not _LATIN_WORDS.search(text):
        return None
    return float(_pattern_analyzer().analyze(text).polarity)


def warm_up() -> None:
    """Load TextBlob now (about a second: NLTK imports) instead of on the first English message."""
    _pattern_analyzer()


@functools.lru_cache(maxsize=1)
def _pattern_analyzer():  # noqa: ANN202 - textblob has no type hints
    """Imported and built on first use: TextBlob pulls in NLTK (~1 s), not needed for Chinese."""
    from textblob.en.sentiments import PatternAnalyzer  # lazy: NLTK (~1 s); only English text needs it

    return PatternAnalyzer()


def analyze(lexicon: Lexicon, text: str, use_textblob: bool = True) -> LexiconResult:
    """Score one message with the rules; never raises on odd text."""
    result = LexiconResult()
    if not isinstance(text, str):
        return result
    text = clean(text)
    if not text.strip():
        return result
    emoji_total = 0.0
    if lexicon.emoji_pattern is not None:
        for match in lexicon.emoji_pattern.finditer(text):
            emoji_total += lexicon.emoji[match.group()]
            result.hits += 1
            result.add("emoji")
        text = lexicon.emoji_pattern.sub(" ", text)
    lowered = text.lower()
    words = _score_tokens(lexicon, _tokens(lexicon, lowered), result)
    if words:
        result.add("zh_lexicon" if _CJK.search(lowered) else "en_lexicon")
    total = words + emoji_total
    if use_textblob:
        polarity = textblob_polarity(text)
        if polarity:
            total += TEXTBLOB_WEIGHT * polarity
            result.hits += 1
            if polarity > TEXTBLOB_POSITIVE:
                result.add("textblob_positive")
            elif polarity < TEXTBLOB_NEGATIVE:
                result.add("textblob_negative")
    if any(ch in "!！" for ch in text):
        result.add("exclamation")
    if _REPEATED.search(text):
        result.add("repeated_punctuation")
        # "在吗？？？" on its own already reads as impatience; otherwise it amplifies
        total = total * EXCLAMATION if total > 0 else total * EXCLAMATION - 0.5
    result.total = total
    result.score = math.tanh(total / SCALE)
    if result.strong_cue:
        result.score = min(result.score, STRONG_CUE_SCORE)
    return result
