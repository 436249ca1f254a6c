"""BertIntentClassifier: an intent head over the EncoderFeaturizer's sentence features.

Regularised logistic regression by default (the encoder already separates intents well;
a linear head trains in seconds and calibrates better than a deep one), an optional
small MLP. The head's weights are persisted as plain numpy arrays in Rasa's model
storage, so `rasa train` yields one self-contained archive and loading runs no pickle.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import RANKING_LENGTH

log = logging.getLogger(__name__)

HEADS = ("logistic_regression", "mlp")
WEIGHTS_FILE = "head.npz"


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class Head:
    """A fitted classifier head reduced to arrays: linear layers with ReLU between."""

    def __init__(self, classes: List[str], weights: List[np.ndarray], biases: List[np.ndarray]) -> None:
        self.classes = classes
        self.weights = weights
        self.biases = biases

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        hidden = features
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=False)):
            hidden = hidden @ w + b
            if i < len(self.weights) - 1:
                hidden = np.maximum(hidden, 0.0)
        if hidden.shape[1] == 1:  # sklearn's binary case: one logit for classes[1]
            hidden = np.hstack([-hidden, hidden]) / 2.0
        return softmax(hidden)

    def to_arrays(self) -> Dict[str, np.ndarray]:
        arrays: Dict[str, np.ndarray] = {"classes": np.asarray(self.classes, dtype=np.str_)}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=False)):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> Head:
        layers = sum(1 for key in arrays if key.startswith("w"))
        return cls(
            [str(c) for c in arrays["classes"]],
            [arrays[f"w{i}"] for i in range(layers)],
            [arrays[f"b{i}"] for i in range(layers)],
        )


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class BertIntentClassifier(IntentClassifier, GraphComponent):
    """Intent classification from dense sentence features."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [DenseFeaturizer]

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            # logistic_regression (default) or mlp
            "head": "logistic_regression",
            # inverse L2 regularisation strength of the logistic regression
            "C": 100.0,
            # hidden layer sizes of the mlp head
            "hidden_layers": [256],
            # iteration cap of either head's optimiser
            "max_iter": 1000,
            # intents listed in intent_ranking; 0 lists all
            RANKING_LENGTH: LABEL_RANKING_LENGTH,
            "random_seed": 42,
            # fine-tuning the encoder is configured on EncoderFeaturizer (fine_tune: true), so the
            # classifier, DIET and sentiment share one tuned forward pass; true here is an error
            "fine_tune": False,
        }

    def __init__(
        self, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, head: Optional[Head] = None
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.head = head

    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        if config.get("head") not in HEADS:
            raise InvalidConfigException(f"BertIntentClassifier: head must be one of {HEADS}")
        if not float(config.get("C", 1.0)) > 0:
            raise InvalidConfigException("BertIntentClassifier: C must be positive")
        if config.get("fine_tune"):
            raise InvalidConfigException(
                "BertIntentClassifier: set `fine_tune: true` on custom_components.encoder_featurizer.EncoderFeaturizer;"
                " the tuned encoder then feeds this classifier and every other component from one forward pass"
            )

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> BertIntentClassifier:
        config = {**cls.get_default_config(), **config}
        cls.validate_config(config)
        return cls(config, model_storage, resource)

    @staticmethod
    def _features(messages: List[Message]) -> np.ndarray:
        rows = []
        for message in messages:
            _, sentence = message.get_dense_features(TEXT)
            if sentence is None:
                raise InvalidConfigException(
                    "BertIntentClassifier needs dense sentence features: put EncoderFeaturizer before it"
                )
            rows.append(sentence.features.reshape(-1))
        return np.vstack(rows).astype(np.float32)

    def _fit(self, features: np.ndarray, labels: List[str]) -> Head:
        seed = int(self.config["random_seed"])
        if self.config["head"] == "mlp":
            from sklearn.neural_network import MLPClassifier

            mlp = MLPClassifier(
                hidden_layer_sizes=tuple(self.config["hidden_layers"]),
                max_iter=int(self.config["max_iter"]),
                early_stopping=len(labels) >= 200,
                random_state=seed,
            ).fit(features, labels)
            return Head(list(mlp.classes_), list(mlp.coefs_), list(mlp.intercepts_))
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(
            C=float(self.config["C"]), max_iter=int(self.config["max_iter"]), class_weight="balanced", random_state=seed
        ).fit(features, labels)
        return Head(list(lr.classes_), [lr.coef_.T.astype(np.float32)], [lr.intercept_.astype(np.float32)])

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        labels = [e.get(INTENT) for e in examples]
        if len(set(labels)) < 2:
            log.warning("BertIntentClassifier: fewer than two intents in the training data; not trained")
            return self._resource
        self.head = self._fit(self._features(examples), labels)
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(directory / WEIGHTS_FILE, **self.head.to_arrays())
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BertIntentClassifier:
        try:
            with model_storage.read_from(resource) as directory:
                with np.load(directory / WEIGHTS_FILE, allow_pickle=False) as data:
                    head = Head.from_arrays({key: data[key] for key in data.files})
        except (ValueError, FileNotFoundError, OSError):
            log.warning("BertIntentClassifier: no trained head in the model; it will predict nothing")
            head = None
        return cls({**cls.get_default_config(), **config}, model_storage, resource, head)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.head is None:  # untrained guard: leave messages unclassified
            return messages
        todo = [m for m in messages if m.get(TEXT) is not None and m.get_dense_features(TEXT)[1] is not None]
        if not todo:
            return messages
        probabilities = self.head.predict_proba(self._features(todo))
        limit = int(self.config[RANKING_LENGTH])
        for message, row in zip(todo, probabilities, strict=False):
            order = np.argsort(-row)
            ranking = [{"name": self.head.classes[i], "confidence": float(row[i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking[:limit] if limit > 0 else ranking, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
