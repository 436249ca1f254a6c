"""LanguageDetector: marks each message zh or en so responses answer in the customer's language.

It writes an entity `language` that fills the `language` slot through a normal
from_entity mapping; Rasa's conditional response variations then pick the Chinese or
English text. Messages without letters (emoji, digits) and ASCII scraps that do not read as
English ("abcd", "ok") emit nothing, so the slot keeps the conversation's previous language.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from kefu.text import message_language

ENTITY = "language"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LanguageDetector(GraphComponent):
    """Script-based zh/en detection; no training, no model files."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            # entity name written into the parse result (and slot filled from it)
            "entity": ENTITY,
        }

    def __init__(self, config: Dict[str, Any]) -> None:
        self.entity = config.get("entity", ENTITY)

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageDetector:
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            language: Optional[str] = message_language(text)
            if language is None:
                continue
            entity = {
                "entity": self.entity,
                "value": language,
                "start": 0,
                "end": len(text),
                "confidence": 1.0,
                "extractor": type(self).__name__,
            }
            message.set(ENTITIES, [*message.get(ENTITIES, []), entity], add_to_output=True)
        return messages
