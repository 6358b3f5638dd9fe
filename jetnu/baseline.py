"""Substructure baseline for binary jet tagging: a boosted decision tree on jet observables.

The classifier is scikit-learn's `HistGradientBoostingClassifier` on the columns of
`jetnu.substructure.FEATURE_NAMES` (mass, tau1, tau2, tau3, tau21, tau32, constituent
multiplicity). It gives a reference that a network tagger should beat.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from jetnu.data.reader import DEFAULT_STEP_SIZE, iterate_jets, jet_labels
from jetnu.data.schema import JET_TREE
from jetnu.substructure import FEATURE_NAMES, observable_matrix

logger = logging.getLogger(__name__)

RANDOM_STATE = 0
# scikit-learn's defaults, written out so that metrics.json records them. Early stopping
# ("auto") is on above 10,000 training jets: it then holds out 10% of them and stops when
# their loss no longer improves.
BDT_PARAMETERS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, "early_stopping": "auto"}


def check_binary_classes(class_names: tuple[str, ...] | list[str]) -> None:
    """Raise ValueError unless there are exactly two classes, the only case the baseline handles."""
    if len(class_names) != 2:
        raise ValueError(
            f"the substructure BDT baseline separates two jet classes, but the models classify "
            f"{len(class_names)} classes {list(class_names)}; drop --baseline for this evaluation"
        )


def substructure_features(
    path: str | Path,
    class_names: tuple[str, ...] | list[str],
    *,
    tree: str = JET_TREE,
    entry_stop: int | None = None,
    step_size: int = DEFAULT_STEP_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Read jets ``0..entry_stop`` of a jet file and return ``(features, labels)``.

    ``features`` is (jets, len(FEATURE_NAMES)) float64, ``labels`` int64 checked against
    ``class_names``.
    """
    feature_chunks, label_chunks = [], []
    for first_entry, jets in iterate_jets(path, tree=tree, step_size=step_size, entry_stop=entry_stop):
        feature_chunks.append(observable_matrix(jets))
        label_chunks.append(jet_labels(jets, class_names, entry_offset=first_entry, source=path))
    features = np.concatenate(feature_chunks)
    labels = np.concatenate(label_chunks)
    logger.info("computed %d substructure observables for %d jets of %s", len(FEATURE_NAMES), len(labels), path)
    return features, labels


def fit_bdt(features: np.ndarray, labels: np.ndarray, random_state: int = RANDOM_STATE) -> HistGradientBoostingClassifier:
    """Train the baseline BDT on (jets, features) with binary labels (1 = signal)."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).ravel()
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"features must have shape (jets, {len(FEATURE_NAMES)}) matching {labels.shape[0]} labels, "
            f"got {features.shape}"
        )
    present = np.unique(labels)
    if not np.array_equal(present, [0, 1]):
        raise ValueError(f"the BDT training sample needs labels 0 and 1, but it contains only {present.tolist()}")

    classifier = HistGradientBoostingClassifier(**BDT_PARAMETERS, random_state=random_state)
    classifier.fit(features, labels)
    logger.info("trained the substructure BDT on %d jets (%d iterations)", len(labels), classifier.n_iter_)
    return classifier


def bdt_signal_scores(classifier: HistGradientBoostingClassifier, features: np.ndarray) -> np.ndarray:
    """Return the BDT's signal probability (class 1) for each row of ``features``."""
    return classifier.predict_proba(np.asarray(features, dtype=np.float64))[:, 1]
