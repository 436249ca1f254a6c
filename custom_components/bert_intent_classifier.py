"""BertIntentClassifier: an intent head over the EncoderFeaturizer's sentence features.

Regularised logistic regression by default (the encoder already separates intents well;
a linear head trains in seconds), an optional small MLP. Training also fits, on k-fold
out-of-fold predictions of the training data (`kefu.calibration`, `kefu.thresholds`,
`kefu.oos`): a calibrator, so `intent.confidence` is a probability one can route on; the
routing thresholds for the designers' target precisions; and an out-of-scope scorer.
Everything is persisted as plain numpy arrays + JSON in Rasa's model storage, so
`rasa train` yields one self-contained archive and loading runs no pickle.
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
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.shared.utils.cli import print_info
from rasa.utils.tensorflow.constants import RANKING_LENGTH

from kefu.calibration import METHODS
from kefu.config import load_settings
from kefu.errors import ConfigError
from kefu.intent_head import HeadOptions, IntentModel, rank, train_intent_model
from kefu.routing.settings import load_routing
from kefu.thresholds import Targets, format_plan, thresholds_for

log = logging.getLogger(__name__)

HEADS = ("logistic_regression", "mlp")
OUT_OF_SCOPE_KEY = "out_of_scope"
THRESHOLDS_KEY = "intent_thresholds"


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
            # temperature (default) | isotonic | none: fitted on k-fold out-of-fold predictions of the
            # training data, so intent.confidence is a calibrated probability
            "calibration": "temperature",
            # k of the k-fold; null chooses by data size (5, fewer for rare intents, 3 above 20k examples)
            "calibration_folds": None,
            # routing YAML whose auto_precision / specialist_precision targets set the thresholds
            # (null: KEFU_ROUTING_FILE, default data/routing.yml); thresholds are persisted with the model
            "routing_file": None,
            # score messages that fit no trained intent (distance to the intents + calibrated confidence)
            "out_of_scope": True,
            # share of in-scope (out-of-fold) training messages that must stay below the out-of-scope threshold
            "oos_in_scope_recall": 0.95,
            # fine-tuning the encoder is configured on EncoderFeaturizer (fine_tune: true), so the
            # classifier, DIET and sentiment share one tuned forward pass; true here is an error
            "fine_tune": False,
        }

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[IntentModel] = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        if config.get("head") not in HEADS:
            raise InvalidConfigException(f"BertIntentClassifier: head must be one of {HEADS}")
        if not float(config.get("C", 1.0)) > 0:
            raise InvalidConfigException("BertIntentClassifier: C must be positive")
        if config.get("calibration") not in METHODS:
            raise InvalidConfigException(f"BertIntentClassifier: calibration must be one of {METHODS}")
        folds = config.get("calibration_folds")
        if folds is not None and (isinstance(folds, bool) or not isinstance(folds, int) or folds < 2):
            raise InvalidConfigException("BertIntentClassifier: calibration_folds must be null or an integer >= 2")
        recall = config.get("oos_in_scope_recall")
        if isinstance(recall, bool) or not isinstance(recall, (int, float)) or not 0 < recall < 1:  # noqa: UP038
            raise InvalidConfigException("BertIntentClassifier: oos_in_scope_recall must be a number in (0, 1)")
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

    @classmethod
    def _routing_path(cls, config: Dict[str, Any]) -> Path:
        if config.get("routing_file"):
            return Path(config["routing_file"])
        return load_settings().routing_file

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Retrain when the routing YAML's threshold targets change (they are fitted at train time)."""
        try:
            targets = cls._targets({**cls.get_default_config(), **config})
        except (ConfigError, InvalidConfigException):
            return None  # train() reports the error with the key's name
        return repr(targets)

    @classmethod
    def _targets(cls, config: Dict[str, Any]) -> Targets:
        return load_routing(cls._routing_path(config)).targets

    def _options(self) -> HeadOptions:
        c = self.config
        return HeadOptions(
            head=c["head"], C=float(c["C"]), hidden_layers=tuple(c["hidden_layers"]), max_iter=int(c["max_iter"]),
            random_seed=int(c["random_seed"]), calibration=c["calibration"], folds=c["calibration_folds"],
            out_of_scope=bool(c["out_of_scope"]), oos_in_scope_recall=float(c["oos_in_scope_recall"]),
        )

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

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        labels = [e.get(INTENT) for e in examples]
        if len(set(labels)) < 2:
            log.warning("BertIntentClassifier: fewer than two intents in the training data; not trained")
            return self._resource
        try:
            targets = self._targets(self.config)
        except ConfigError as exc:
            raise InvalidConfigException(f"BertIntentClassifier: {exc}") from exc
        routing = str(self._routing_path(self.config))
        self.model = train_intent_model(self._features(examples), labels, self._options(), targets,
                                        {"routing_file": routing})
        with self._model_storage.write_to(self._resource) as directory:
            self.model.save(directory)
        print_info("BertIntentClassifier:\n" + format_plan(self.model.plan))
        for warning in self.model.plan.get("thresholds", {}).get("warnings", []):
            log.warning("BertIntentClassifier: %s", warning)
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
                model = IntentModel.load(directory)
        except (ValueError, KeyError, FileNotFoundError, OSError):
            log.warning("BertIntentClassifier: no trained head in the model; it will predict nothing")
            model = None
        return cls({**cls.get_default_config(), **config}, model_storage, resource, model)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model is None:  # untrained guard: leave messages unclassified
            return messages
        todo = [m for m in messages if m.get(TEXT) is not None and m.get_dense_features(TEXT)[1] is not None]
        if not todo:
            return messages
        limit = int(self.config[RANKING_LENGTH])
        plan = self.model.plan.get("thresholds")
        oos = self.model.oos
        for message, (ranking, score) in zip(todo, rank(self.model, self._features(todo)), strict=False):
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking[:limit] if limit > 0 else ranking, add_to_output=True)
            if plan:
                message.set(THRESHOLDS_KEY, thresholds_for(plan, ranking[0]["name"]), add_to_output=True)
            if score is not None and oos is not None:
                flagged = score > oos.threshold or ranking[0]["name"] == OUT_OF_SCOPE_KEY
                message.set(OUT_OF_SCOPE_KEY, {"score": round(score, 4), "threshold": round(oos.threshold, 4),
                                               "flagged": bool(flagged)}, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
