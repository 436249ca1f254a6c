"""EncoderFeaturizer: one transformer pass per message, shared by every later component.

Writes dense sequence features (one row per token of the pipeline's tokenizer, averaged
over the encoder's sub-tokens that overlap it) and a sentence feature (the encoder's
pooled vector). Training examples are cached by content hash, so retraining after a
small data change re-encodes only what changed.

With ``fine_tune: true`` the encoder itself is fine-tuned on the training data's intents
(TensorFlow, see ``kefu.encoder.finetune``) and the tuned encoder is persisted as ONNX in
Rasa's model storage. Fine-tuning lives here rather than in the intent classifier so that
the classifier, DIET's entity extraction and the sentiment component all read the tuned
features from the one forward pass per message.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from kefu.config import PROJECT_ROOT
from kefu.encoder.cache import EncodingCache
from kefu.encoder.runtime import ENCODING_VERSION, Encoder
from kefu.errors import BadInput

log = logging.getLogger(__name__)

RUNTIMES = ("onnx-int8", "onnx-fp32", "tensorflow")
POOLINGS = ("mean", "cls")
TUNED_DIR = "encoder"


def align(
    token_spans: List[tuple[int, int]], sub_offsets: List[tuple[int, int]], sub_vectors: np.ndarray
) -> np.ndarray:
    """One row per pipeline token: the mean of the encoder sub-tokens overlapping it.

    Tokens the encoder never saw (cut by max_length) or that no sub-token covers get the
    mean of all sub-tokens, so DIET still receives a finite, informative row.
    """
    dim = sub_vectors.shape[1] if sub_vectors.ndim == 2 else 0
    fallback = sub_vectors.mean(axis=0) if len(sub_vectors) else np.zeros(dim, dtype=np.float32)
    rows = np.empty((len(token_spans), dim), dtype=np.float32)
    for i, (start, end) in enumerate(token_spans):
        hits = [j for j, (s, e) in enumerate(sub_offsets) if s < end and e > start]
        rows[i] = sub_vectors[hits].mean(axis=0) if hits else fallback
    return rows


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=True)
class EncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Dense features from a BERT-family encoder (ONNX int8 by default)."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            # a local model directory or a Hugging Face model name (e.g. bert-base-chinese)
            "model": "models/encoder/multilingual-e5-small",
            # sentence feature: the encoder's mean pooling, or the [CLS] vector
            "pooling": "mean",
            # sub-tokens per message; longer messages are truncated, never rejected
            "max_length": 128,
            # onnx-int8 (default, fastest), onnx-fp32, or tensorflow
            "runtime": "onnx-int8",
            # messages per encoder call when featurizing training data
            "batch_size": 32,
            # where training encodings are cached by content hash; null disables
            "cache_dir": ".rasa/kefu-encodings",
            # fine-tune the encoder on the intents of the training data and persist it (ONNX)
            "fine_tune": False,
            # fine-tuning: passes over the data, peak AdamW learning rate, batch, sub-tokens
            "fine_tune_epochs": 3,
            "fine_tune_learning_rate": 5e-5,
            "fine_tune_batch_size": 32,
            "fine_tune_max_length": 64,
        }

    def __init__(
        self,
        config: Dict[str, Any],
        name: str,
        model_storage: Optional[ModelStorage] = None,
        resource: Optional[Resource] = None,
        model_dir: Optional[str] = None,
    ) -> None:
        super().__init__(name, config)
        self._model_storage = model_storage
        self._resource = resource
        self._load_encoder(model_dir or self._resolve(config["model"]))

    def _load_encoder(self, model: str) -> None:
        config = self._config
        try:
            self.encoder = Encoder.load(model, runtime=config["runtime"], max_length=int(config["max_length"]),
                                        batch_independent=True)
        except BadInput as exc:
            raise InvalidConfigException(f"EncoderFeaturizer: {exc}") from exc
        cache_dir = config.get("cache_dir")
        namespace = f"{self.encoder.fingerprint}|{config['max_length']}"
        self.cache = EncodingCache(
            self._resolve_path(cache_dir) / "encodings.sqlite3" if cache_dir else None, namespace
        )

    @staticmethod
    def _resolve_path(value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @classmethod
    def _resolve(cls, model: str) -> str:
        """Relative paths that exist under the project root win over hub names."""
        local = cls._resolve_path(model)
        return str(local) if local.exists() else model

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Re-featurise cached training data when the encoding scheme changes (not only the config)."""
        return f"encoding-{ENCODING_VERSION}"

    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        if config.get("runtime") not in RUNTIMES:
            raise InvalidConfigException(f"EncoderFeaturizer: runtime must be one of {RUNTIMES}")
        if config.get("pooling") not in POOLINGS:
            raise InvalidConfigException(f"EncoderFeaturizer: pooling must be one of {POOLINGS}")
        if not isinstance(config.get("max_length"), int) or not 8 <= config["max_length"] <= 512:
            raise InvalidConfigException("EncoderFeaturizer: max_length must be an integer in [8, 512]")
        if not isinstance(config.get("fine_tune", False), bool):
            raise InvalidConfigException("EncoderFeaturizer: fine_tune must be true or false")
        for key in ("fine_tune_epochs", "fine_tune_batch_size", "fine_tune_max_length"):
            value = config.get(key, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidConfigException(f"EncoderFeaturizer: {key} must be a positive integer")
        rate = config.get("fine_tune_learning_rate", 5e-5)
        if not isinstance(rate, int | float) or not 0 < float(rate) < 1:
            raise InvalidConfigException("EncoderFeaturizer: fine_tune_learning_rate must be in (0, 1)")

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EncoderFeaturizer:
        return cls(config, execution_context.node_name, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> EncoderFeaturizer:
        """The fine-tuned encoder from the model archive when there is one, else `model`."""
        try:
            with model_storage.read_from(resource) as directory:
                tuned = directory / TUNED_DIR
                if (tuned / "config.json").is_file():
                    # ONNX sessions and tokenizers are read into memory here, so the
                    # storage directory may go away after this block.
                    return cls(config, execution_context.node_name, model_storage, resource, str(tuned))
        except ValueError:
            pass  # nothing persisted: the encoder was not fine-tuned
        return cls(config, execution_context.node_name, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tune the encoder on the intents when `fine_tune` is set; otherwise nothing to learn."""
        if not self._config["fine_tune"] or self._model_storage is None or self._resource is None:
            return self._resource  # type: ignore[return-value]
        from kefu.encoder.finetune import FineTuneConfig, fine_tune  # lazy: TensorFlow model code, training only

        pairs = [(m.get(TEXT), m.get(INTENT)) for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
        if len({label for _, label in pairs}) < 2:
            raise InvalidConfigException("EncoderFeaturizer: fine_tune needs training data with at least two intents")
        base = Path(self.encoder.name)
        if not (base / "config.json").is_file():
            raise InvalidConfigException(f"EncoderFeaturizer: fine_tune needs a local model directory, got {base}")
        settings = FineTuneConfig(
            epochs=int(self._config["fine_tune_epochs"]),
            learning_rate=float(self._config["fine_tune_learning_rate"]),
            batch_size=int(self._config["fine_tune_batch_size"]),
            max_length=int(self._config["fine_tune_max_length"]),
            pooling=self._config["pooling"],
        )
        with self._model_storage.write_to(self._resource) as directory:
            try:
                tuned = fine_tune(
                    base, [t for t, _ in pairs], [i for _, i in pairs], directory / TUNED_DIR, settings,
                    runtimes=(self._config["runtime"],),
                )
            except BadInput as exc:
                raise InvalidConfigException(f"EncoderFeaturizer: {exc}") from exc
            self._load_encoder(str(tuned))
        return self._resource

    def _encode(self, texts: List[str], use_cache: bool) -> List[tuple[np.ndarray, list[tuple[int, int]], np.ndarray]]:
        """Encodings for `texts`; only training data goes through the on-disk cache
        (customers' messages are never written to disk here)."""
        cached = self.cache.get_many(texts) if use_cache else {}
        missing = [t for t in dict.fromkeys(texts) if t not in cached]
        if missing:
            fresh = {}
            for text, encoded in zip(
                missing, self.encoder.encode(missing, batch_size=int(self._config["batch_size"])), strict=False
            ):
                sentence = encoded.cls if self._config["pooling"] == "cls" else encoded.sentence
                fresh[text] = (encoded.tokens, list(encoded.offsets), sentence)
            if use_cache:
                self.cache.put_many(fresh)
            cached.update(fresh)
        return [cached[t] for t in texts]

    def _featurize(self, messages: List[Message], use_cache: bool = False) -> None:
        todo = [m for m in messages if isinstance(m.get(TEXT), str) and m.get(TOKENS_NAMES[TEXT])]
        if not todo:
            return
        for message, (sub_vectors, offsets, sentence) in zip(
            todo, self._encode([m.get(TEXT) for m in todo], use_cache), strict=False
        ):
            spans = [(t.start, t.end) for t in message.get(TOKENS_NAMES[TEXT])]
            sequence = align(spans, offsets, sub_vectors)
            self.add_features_to_message(sequence, sentence.reshape(1, -1).astype(np.float32), TEXT, message)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples, use_cache=True)
        log.info("EncoderFeaturizer: %d cached and %d new encodings", self.cache.hits, self.cache.misses)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize(messages)
        return messages
