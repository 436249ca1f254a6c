"""Rasa-free sentiment logic shared by the NLU component and the benchmark."""

from kefu.sentiment.lexicon import Lexicon, LexiconResult, analyze
from kefu.sentiment.model import LABELS, POLICIES, LinearHead, Policy, fit_head, load_labelled

__all__ = [
    "LABELS", "POLICIES", "Lexicon", "LexiconResult", "LinearHead", "Policy", "analyze", "fit_head", "load_labelled",
]
