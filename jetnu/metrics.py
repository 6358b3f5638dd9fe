"""Physics metrics for binary taggers: ROC AUC and background rejection at fixed signal efficiency.

Background rejection is 1/eps_B, the inverse of the fraction of background (label 0)
accepted at the score threshold where a fraction eps_S of the signal (label 1) is
accepted, read off the ROC curve by linear interpolation.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def _check_binary(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in length: {labels.shape[0]} != {scores.shape[0]}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"scores contain {int((~np.isfinite(scores)).sum())} NaN or infinite values")
    return labels, scores


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, or NaN when only one class is present."""
    labels, scores = _check_binary(labels, scores)
    if np.unique(labels).size < 2:
        return math.nan
    return float(roc_auc_score(labels, scores))


def background_rejection(labels: np.ndarray, scores: np.ndarray, signal_efficiency: float) -> float:
    """1/eps_B at the given signal efficiency; infinite when no background passes, NaN with one class."""
    if not 0.0 < signal_efficiency <= 1.0:
        raise ValueError(f"signal_efficiency must be in (0, 1], got {signal_efficiency!r}")
    labels, scores = _check_binary(labels, scores)
    if np.unique(labels).size < 2:
        return math.nan

    false_positive_rate, true_positive_rate, _ = roc_curve(labels, scores, drop_intermediate=False)
    # The ROC curve rises in both rates. Take the first point that reaches the requested
    # efficiency (on a vertical step, the one with the least background) and interpolate
    # linearly from the point before it.
    upper = int(np.searchsorted(true_positive_rate, signal_efficiency, side="left"))
    if true_positive_rate[upper] == signal_efficiency or upper == 0:
        eps_b = float(false_positive_rate[upper])
    else:
        lower = upper - 1
        fraction = (signal_efficiency - true_positive_rate[lower]) / (true_positive_rate[upper] - true_positive_rate[lower])
        eps_b = float(false_positive_rate[lower] + fraction * (false_positive_rate[upper] - false_positive_rate[lower]))
    return math.inf if eps_b == 0.0 else 1.0 / eps_b


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    labels = np.asarray(labels).ravel()
    predicted = np.asarray(predicted).ravel()
    if labels.size == 0:
        return math.nan
    return float(np.mean(labels == predicted))


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """AUC, accuracy at ``threshold`` and rejection at eps_S = 0.3 and 0.5 for signal scores in [0, 1]."""
    labels, scores = _check_binary(labels, scores)
    return {
        "auc": roc_auc(labels, scores),
        "accuracy": accuracy(labels, scores >= threshold),
        "rejection_at_eff_0.3": background_rejection(labels, scores, 0.3),
        "rejection_at_eff_0.5": background_rejection(labels, scores, 0.5),
    }
