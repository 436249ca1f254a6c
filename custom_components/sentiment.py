"""SentimentAnalyzer: label, score, intensity and the cues behind them for every user message.

Writes ``sentiment`` = {label, score, intensity, signals} into the parse result (so it
shows in /model/parse and tracker.latest_message) and an entity ``sentiment`` (value =
label) that fills the ``sentiment`` slot through a plain from_entity mapping.

Two halves, merged by a configurable policy (kefu/sentiment/model.py): Chinese and
English rules with negation, degree, contrast, punctuation, emoji and escalation cues
(kefu/sentiment/lexicon.py, Rasa-free), and a logistic-regression head over the sentence
vector the EncoderFeaturizer already wrote on the message: no second encoder pass at
inference. At train time the head learns from data/sentiment/*.tsv (not the NLU data),
encoded with the same model, runtime, max_length and pooling as the featurizer.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from kefu.config import PROJECT_ROOT
from kefu.contracts import Sentiment
from kefu.errors import KefuError
from kefu.sentiment.encoding import SentenceEncoder
from kefu.sentiment.lexicon import Lexicon, analyze, warm_up
from kefu.sentiment.model import POLICIES, LinearHead, Policy, directory_digest, fit_head, load_labelled

log = logging.getLogger(__name__)

SENTIMENT = "sentiment"
HEAD_FILE = "sentiment_head.npz"
LEXICON_DIR = "lexicons"
SAME_SPACE_COSINE = 0.98


def _resolve(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class SentimentAnalyzer(GraphComponent):
    """Rules + a head over the shared encoder's sentence features."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [DenseFeaturizer]

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            # ensemble (rules + head), lexicon (rules only) or model (head only)
            "policy": "ensemble",
            # share of the head in the ensemble score; the rest is the rules'
            "model_weight": 0.6,
            # score >= positive_threshold → positive, <= negative_threshold → negative
            "positive_threshold": 0.3,
            "negative_threshold": -0.3,
            # |score| at or above this plus an intensity cue (！！, 非常, 😡), or a threat/insult, or
            # |score| >= 0.9 → intensity "strong"; a confident but plain complaint stays "mild"
            "strong_threshold": 0.7,
            # labelled utterances (label<TAB>text) and the lexicon files, relative to the project
            "data_dir": "data/sentiment",
            "lexicon_dir": "data/lexicons/sentiment",
            # inverse L2 regularisation of the logistic-regression head
            "C": 10.0,
            "random_seed": 42,
            # entity written into the parse result (and slot filled from it)
            "entity": SENTIMENT,
            # the EncoderFeaturizer's settings, used only to encode data_dir at train time:
            # keep them equal to the featurizer's so train and inference vectors match
            "model": "models/encoder/multilingual-e5-small",
            "runtime": "onnx-int8",
            "pooling": "mean",
            "max_length": 128,
            "batch_size": 32,
            "cache_dir": ".rasa/kefu-encodings",
        }

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        lexicon: Lexicon,
        head: Optional[LinearHead] = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.lexicon = lexicon
        self.head = head
        self.policy = self._policy(self.config)
        self._warned_dim = False
        if self.policy.name != "model":
            warm_up()

    @staticmethod
    def _policy(config: Dict[str, Any]) -> Policy:
        try:
            return Policy(
                name=str(config["policy"]),
                model_weight=float(config["model_weight"]),
                positive_threshold=float(config["positive_threshold"]),
                negative_threshold=float(config["negative_threshold"]),
                strong_threshold=float(config["strong_threshold"]),
            )
        except (KefuError, TypeError, ValueError) as exc:
            raise InvalidConfigException(f"SentimentAnalyzer: {exc}") from exc

    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        if config.get("policy") not in POLICIES:
            raise InvalidConfigException(f"SentimentAnalyzer: policy must be one of {POLICIES}")
        cls._policy(config)
        if not float(config.get("C", 1.0)) > 0:
            raise InvalidConfigException("SentimentAnalyzer: C must be positive")

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Rasa's training cache must notice edits to the labelled set and the lexicons."""
        config = {**cls.get_default_config(), **config}
        return directory_digest([_resolve(config["data_dir"]), _resolve(config["lexicon_dir"])])

    @classmethod
    def _load_lexicon(cls, directory: Path) -> Lexicon:
        try:
            return Lexicon.load(directory)
        except KefuError as exc:
            raise InvalidConfigException(f"SentimentAnalyzer: {exc}") from exc

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentimentAnalyzer:
        config = {**cls.get_default_config(), **config}
        cls.validate_config(config)
        return cls(config, model_storage, resource, cls._load_lexicon(_resolve(config["lexicon_dir"])))

    def _sentence_encoder(self) -> Any:
        model = _resolve(self.config["model"])
        cache_dir = self.config.get("cache_dir")
        try:
            return SentenceEncoder(
                str(model) if model.exists() else str(self.config["model"]),
                runtime=str(self.config["runtime"]),
                max_length=int(self.config["max_length"]),
                pooling=str(self.config["pooling"]),
                cache_file=_resolve(cache_dir) / "encodings.sqlite3" if cache_dir else None,
                batch_size=int(self.config["batch_size"]),
            )
        except KefuError as exc:
            raise InvalidConfigException(f"SentimentAnalyzer: cannot load the encoder: {exc}") from exc

    @staticmethod
    def _matches_featurizer(encoder: Any, training_data: TrainingData) -> bool:
        """Do our vectors equal the ones the pipeline's featurizer wrote? (A different model,
        pooling or runtime, or a fine-tuned featurizer, would make the head read vectors
        from another space at inference.) Checked on a few NLU examples; True if none."""
        probes = [
            (m.get(TEXT), m.get_dense_features(TEXT)[1])
            for m in training_data.training_examples[:200]
            if isinstance(m.get(TEXT), str) and m.get(TEXT).strip()
        ]
        probes = [(text, features) for text, features in probes if features is not None][:8]
        if not probes:
            return True
        ours = encoder.encode([text for text, _ in probes])
        cosines = []
        for row, (_, features) in zip(ours, probes, strict=True):
            theirs = np.asarray(features.features, dtype=np.float32).reshape(-1)
            if theirs.shape != row.shape:
                return False
            norm = float(np.linalg.norm(theirs) * np.linalg.norm(row))
            cosines.append(float(theirs @ row) / norm if norm > 0 else 0.0)
        # int8 activations are quantised per batch, so the same text encoded in another
        # batch differs slightly (cosine ~0.997); another model or pooling lands far below
        return float(np.mean(cosines)) >= SAME_SPACE_COSINE

    def train(self, training_data: TrainingData) -> Resource:
        """Fit the head on data_dir (the NLU data is not sentiment-labelled) and persist it
        with a copy of the lexicons, so the model archive is self-contained."""
        head = None
        if self.policy.name != "lexicon":
            try:
                pairs = load_labelled(_resolve(self.config["data_dir"]))
            except KefuError as exc:
                raise InvalidConfigException(f"SentimentAnalyzer: {exc}") from exc
            encoder = self._sentence_encoder()
            try:
                if self._matches_featurizer(encoder, training_data):
                    vectors = encoder.encode([text for text, _ in pairs])
                    log.info("SentimentAnalyzer: %d cached, %d new encodings", encoder.cache.hits, encoder.cache.misses)
                    head = fit_head(
                        vectors, [label for _, label in pairs],
                        c=float(self.config["C"]), seed=int(self.config["random_seed"]),
                    )
                else:
                    log.error(
                        "SentimentAnalyzer: the EncoderFeaturizer writes different sentence vectors than this "
                        "component's model/runtime/pooling/max_length produce (or it is fine-tuned); the head "
                        "is not trained and sentiment uses the rules alone. Align the two configs."
                    )
            finally:
                encoder.close()
        with self._model_storage.write_to(self._resource) as directory:
            shutil.copytree(_resolve(self.config["lexicon_dir"]), directory / LEXICON_DIR, dirs_exist_ok=True)
            if head is not None:
                np.savez(directory / HEAD_FILE, **head.to_arrays())
        self.head = head
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SentimentAnalyzer:
        config = {**cls.get_default_config(), **config}
        head, lexicon = None, None
        try:
            with model_storage.read_from(resource) as directory:
                if (directory / LEXICON_DIR).is_dir():
                    lexicon = cls._load_lexicon(directory / LEXICON_DIR)
                if (directory / HEAD_FILE).is_file():
                    with np.load(directory / HEAD_FILE, allow_pickle=False) as data:
                        head = LinearHead.from_arrays({key: data[key] for key in data.files})
        except (ValueError, OSError, KefuError) as exc:
            log.warning("SentimentAnalyzer: no usable trained state in the model (%s); rules only", exc)
        if head is None and config["policy"] != "lexicon":
            log.warning("SentimentAnalyzer: no trained head in the model; using the rules alone")
        return cls(config, model_storage, resource, lexicon or cls._load_lexicon(_resolve(config["lexicon_dir"])), head)

    def _model_score(self, message: Message) -> Optional[float]:
        if self.head is None or self.policy.name == "lexicon":
            return None
        _, sentence = message.get_dense_features(TEXT)
        if sentence is None:
            return None
        vector = np.asarray(sentence.features, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.head.dim or not np.all(np.isfinite(vector)):
            if not self._warned_dim:
                log.warning(
                    "SentimentAnalyzer: sentence features of width %d, head expects %d: "
                    "is the EncoderFeaturizer configured like this component?", vector.shape[0], self.head.dim
                )
                self._warned_dim = True
            return None
        return float(self.head.scores(vector)[0])

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str):
                continue
            value: Sentiment = self.policy.decide(analyze(self.lexicon, text), self._model_score(message))
            message.set(SENTIMENT, value, add_to_output=True)
            entity = {
                "entity": self.config["entity"],
                "value": value["label"],
                "start": 0,
                "end": len(text),
                "confidence": abs(value["score"]) if value["label"] != "neutral" else 1.0 - abs(value["score"]),
                "extractor": type(self).__name__,
            }
            message.set(ENTITIES, [*message.get(ENTITIES, []), entity], add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
