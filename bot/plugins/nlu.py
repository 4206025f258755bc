"""Custom Rasa 3.6 NLU components for Chinese customer text.

* `ChineseTextNormalizer` (first in the pipeline): full-width → half-width, Traditional →
  Simplified and a length cap, for training examples and live messages alike. It keeps the
  text length, so the training data's entity offsets stay valid.
* `EntityNormalizer` (last): turns extracted entities into the contract's values (spec §2)
  with bot/core/entities.py — `１３８ 1234 5678` leaves the NLU as `13812345678`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text
from zoneinfo import ZoneInfo

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.core import entities, normalize
from bot.core.entities import normalize_entities
from bot.core.settings import get_settings

logger = logging.getLogger(__name__)

# The components' code is part of their cache key: Rasa's training cache does not notice
# code changes in custom components otherwise.
_CODE_FINGERPRINT = hashlib.sha256(
    b"".join(Path(p).read_bytes() for p in (__file__, normalize.__file__, entities.__file__))
).hexdigest()[:16]


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False
)
class ChineseTextNormalizer(GraphComponent):
    """Width folding and Traditional → Simplified before tokenisation."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # Characters of one message the classifier reads; the full text stays in the tracker.
        return {"max_chars": 600, "code_fingerprint": _CODE_FINGERPRINT}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.max_chars = int(config["max_chars"])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ChineseTextNormalizer":
        return cls(config)

    def _normalize(self, message: Message) -> None:
        text = message.get(TEXT)
        if not text:
            return
        text = normalize.normalize_text(text)
        if len(text) > self.max_chars and not message.get(ENTITIES):
            text = text[: self.max_chars]
        message.set(TEXT, text)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            self._normalize(example)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._normalize(message)
        return messages


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False
)
class EntityNormalizer(GraphComponent):
    """Contract values for extracted entities; drops what does not parse."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"code_fingerprint": _CODE_FINGERPRINT}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.timezone = ZoneInfo(get_settings().timezone)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "EntityNormalizer":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        today = dt.datetime.now(self.timezone).date()
        for message in messages:
            found = message.get(ENTITIES) or []
            if found:
                message.set(
                    ENTITIES, normalize_entities(message.get(TEXT), found, today),
                    add_to_output=True,
                )
        return messages


