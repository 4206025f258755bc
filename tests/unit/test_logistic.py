"""The block-wise multinomial logistic regression fits what scikit-learn fits."""

from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np
import pytest
import scipy.sparse
from sklearn.linear_model import LogisticRegression

from bot.plugins.logistic import LinearScorer, fit_multinomial


def _data(classes: int, seed: int = 7) -> Tuple[Any, np.ndarray, List[str]]:
    """Unbalanced classes, a sparse block of rare binary columns and a dense block."""
    rng = np.random.default_rng(seed)
    sizes = [60 + 40 * c for c in range(classes)]
    labels = [f"intent_{c}" for c, size in enumerate(sizes) for _ in range(size)]
    y = np.repeat(np.arange(classes), sizes)
    sparse = scipy.sparse.random(len(y), 300, density=0.02, format="csr", random_state=seed)
    sparse.data[:] = 1.0
    centres = rng.normal(size=(classes, 16))
    dense = centres[y] * 0.6 + rng.normal(size=(len(y), 16))
    return sparse, dense, labels


def _joined(sparse: Any, dense: np.ndarray) -> Any:
    """The one matrix scikit-learn is given: sparse columns, then dense ones."""
    return scipy.sparse.hstack([sparse, scipy.sparse.csr_matrix(dense)]).tocsr()


@pytest.mark.parametrize("classes", [3, 5])
def test_the_same_probabilities_as_scikit_learns_own_solver(classes: int) -> None:
    sparse, dense, labels = _data(classes)
    ours = fit_multinomial(sparse, dense, labels, C=5.0, tol=1e-8)
    theirs = LogisticRegression(C=5.0, class_weight="balanced", tol=1e-10, max_iter=20000)
    matrix = _joined(sparse, dense)
    theirs.fit(matrix, labels)
    assert list(ours.classes_) == list(theirs.classes_)
    assert np.abs(ours.predict_proba(matrix) - theirs.predict_proba(matrix)).max() < 1e-4
    assert np.linalg.norm(ours.coef_ - theirs.coef_) / np.linalg.norm(theirs.coef_) < 1e-3


def test_balanced_weights_count_a_small_class_as_much_as_a_large_one() -> None:
    sparse, dense, labels = _data(3)  # strong regularisation: the classes overlap
    balanced = fit_multinomial(sparse, dense, labels, C=0.05)
    plain = LogisticRegression(C=0.05, max_iter=5000)
    matrix = _joined(sparse, dense)
    plain.fit(matrix, labels)
    smallest = "intent_0"
    assert list(balanced.predict(matrix)).count(smallest) > list(plain.predict(matrix)).count(
        smallest
    )


def test_two_classes_use_scikit_learns_binary_model() -> None:
    sparse, dense, labels = _data(2)
    model = fit_multinomial(sparse, dense, labels, C=5.0)
    matrix = _joined(sparse, dense)
    probabilities = model.predict_proba(matrix)
    assert probabilities.shape == (len(labels), 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert (model.predict(matrix) == np.asarray(labels)).mean() > 0.7


@pytest.mark.parametrize("classes", [2, 4])
def test_the_scorer_gives_scikit_learns_probabilities(classes: int) -> None:
    sparse, dense, labels = _data(classes)
    model = fit_multinomial(sparse, dense, labels, C=5.0)
    matrix = _joined(sparse, dense)
    scorer = LinearScorer(model)
    assert list(scorer.classes_) == list(model.classes_)
    assert np.allclose(scorer.predict_proba(matrix), model.predict_proba(matrix), atol=1e-12)
    assert np.allclose(scorer.predict_proba(matrix[:1]), model.predict_proba(matrix[:1]))
