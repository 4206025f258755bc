"""NLU plug-ins that need no trained project model: the CRF extractor that keeps its taggers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import numpy as np
import pytest
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.extractors.crf_entity_extractor import CRFEntityExtractor
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SEQUENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.plugins.nlu import LinearIntentClassifier, SavedCRFEntityExtractor, pinyin_syllables

EXAMPLES = [
    ("my name is alice", "alice"),
    ("my name is bob", "bob"),
    ("call me carol please", "carol"),
    ("this is dave speaking", "dave"),
    ("my name is erin", "erin"),
    ("call me frank please", "frank"),
    ("my name is ivan", "ivan"),
    ("this is judy speaking", "judy"),
]


def _message(text: str, name: str) -> Message:
    start = text.index(name)
    return Message(
        data={
            "text": text,
            "intent": "inform",
            "entities": [
                {"start": start, "end": start + len(name), "value": name, "entity": "customer_name"}
            ],
        }
    )


def _tokenized(messages: List[Message]) -> List[Message]:
    """Tokens, and a sparse feature per token: the CRF extracts only from featurized text."""
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    tokenizer.process(messages)
    for message in messages:
        tokens = message.get(TOKENS_NAMES[TEXT])
        message.add_features(
            Features(
                scipy.sparse.coo_matrix(np.ones((len(tokens), 1))),
                FEATURE_TYPE_SEQUENCE,
                TEXT,
                "test",
            )
        )
    return messages


def _training_data() -> TrainingData:
    return TrainingData(_tokenized([_message(text, name) for text, name in EXAMPLES]))


def _names(extractor: Any, text: str) -> List[str]:
    [message] = _tokenized([Message(data={"text": text})])
    extractor.process([message])
    return [e["value"] for e in message.get("entities", [])]


def test_a_loaded_crf_uses_its_saved_taggers_and_is_not_fitted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("crf")
    context = ExecutionContext(GraphSchema({}), "test")
    config = SavedCRFEntityExtractor.get_default_config()
    trained = SavedCRFEntityExtractor.create(config, storage, resource, context)
    trained.train(_training_data())
    expected = _names(trained, "my name is carol")
    assert expected == [
        "carol"
    ]  # the tiny model learnt the pattern: the check below means something

    def no_refit(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the CRF was fitted again at load")

    monkeypatch.setattr(CRFEntityExtractor, "train_model", classmethod(no_refit))
    loaded = SavedCRFEntityExtractor.load(config, storage, resource, context)
    assert _names(loaded, "my name is carol") == expected
    assert _names(loaded, "call me heidi please") == _names(trained, "call me heidi please")


def test_a_model_without_saved_taggers_falls_back_to_rasas_refit(tmp_path: Path) -> None:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("crf")
    context = ExecutionContext(GraphSchema({}), "test")
    config = SavedCRFEntityExtractor.get_default_config()
    trained = CRFEntityExtractor.create(config, storage, resource, context)  # Rasa's own
    trained.train(_training_data())

    loaded = SavedCRFEntityExtractor.load(config, storage, resource, context)
    assert _names(loaded, "my name is carol") == _names(trained, "my name is carol")


def _unannotated(intent_only: bool) -> List[Message]:
    """The same sentences without their annotations, as a writer of intent examples gives them."""
    metadata = {"intent": {"intent_only": True}} if intent_only else {}
    return [
        Message(data={"text": text, "intent": "inform", "metadata": metadata})
        for text, _ in EXAMPLES * 2
    ]


def test_examples_marked_intent_only_do_not_teach_the_crf_that_names_are_no_entities(
    tmp_path: Path,
) -> None:
    context = ExecutionContext(GraphSchema({}), "test")
    config = SavedCRFEntityExtractor.get_default_config()
    extractor = SavedCRFEntityExtractor.create(
        config, LocalModelStorage(tmp_path), Resource("crf"), context
    )
    annotated = [_message(text, name) for text, name in EXAMPLES]
    unmarked = annotated + _unannotated(intent_only=False)
    assert len(extractor.filter_trainable_entities(unmarked)) == len(unmarked)
    marked = annotated + _unannotated(intent_only=True)
    assert len(extractor.filter_trainable_entities(marked)) == len(annotated)
    extractor.train(TrainingData(_tokenized(marked)))
    assert _names(extractor, "my name is carol") == ["carol"]


INTENT_EXAMPLES = [
    ("我要报装", "apply_new_connection"),
    ("想报装一个电表", "apply_new_connection"),
    ("新装电表怎么办", "apply_new_connection"),
    ("申请报装", "apply_new_connection"),
    ("帮我报装", "apply_new_connection"),
    ("查一下电费", "query_bill"),
    ("这个月电费多少", "query_bill"),
    ("电费账单", "query_bill"),
    ("帮我查电费", "query_bill"),
    ("欠了多少电费", "query_bill"),
    ("家里停电了", "report_fault"),
    ("突然没电了", "report_fault"),
    ("停电怎么回事", "report_fault"),
    ("整栋楼停电", "report_fault"),
    ("跳闸没电", "report_fault"),
]


def _linear(tmp_path: Path, pinyin_weight: float) -> LinearIntentClassifier:
    config = {
        **LinearIntentClassifier.get_default_config(),
        "pinyin_weight": pinyin_weight,
        "domain_gate": False,
    }
    context = ExecutionContext(GraphSchema({}), "test")
    classifier = LinearIntentClassifier.create(
        config, LocalModelStorage(tmp_path), Resource(f"linear{pinyin_weight}"), context
    )
    examples = [Message(data={"text": t, "intent": i}) for t, i in INTENT_EXAMPLES]
    classifier.train(TrainingData(examples))
    return classifier


def _intent(classifier: LinearIntentClassifier, text: str) -> str:
    [message] = classifier.process([Message(data={"text": text})])
    return str(message.get("intent")["name"])


def test_pinyin_syllables_are_toneless_one_per_character() -> None:
    assert pinyin_syllables("新庄电表") == "xin zhuang dian biao"
    assert pinyin_syllables("报妆") == pinyin_syllables("报装")


def test_with_syllables_a_homophone_slip_reads_as_the_word_meant(tmp_path: Path) -> None:
    # 暴妆 (bao zhuang) shares no character with 报装 but every syllable.
    assert _intent(_linear(tmp_path, pinyin_weight=1.0), "暴妆") == "apply_new_connection"
    assert _intent(_linear(tmp_path, pinyin_weight=0.0), "暴妆") != "apply_new_connection"
