"""Physics metrics of taggers and classifiers, with bootstrap uncertainties.

Binary taggers: ROC AUC and background rejection at fixed signal efficiency. Background
rejection is 1/eps_B, the inverse of the fraction of background (label 0) accepted at the
score threshold where a fraction eps_S of the signal (label 1) is accepted, read off the
ROC curve by linear interpolation.

Multiclass classifiers: the confusion matrix, per-class efficiency (recall) and purity
(precision), and the efficiency of a cut on one class's score at a required purity.

`binary_summary` and `multiclass_summary` collect these with bootstrap uncertainties into
dictionaries that `json.dumps(..., allow_nan=False)` accepts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

REJECTION_METRICS = ("rejection_at_eff_0.3", "rejection_at_eff_0.5")
INFINITE_REJECTION_NOTE = (
    "no background entry passes the cut at this signal efficiency, so 1/eps_B is infinite on this "
    "sample; it exceeds lower_bound, the number of background entries"
)


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


def rejection_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve as (eps_S, 1/eps_B) for plotting; points where no background passes (eps_B = 0) are left out."""
    labels, scores = _check_binary(labels, scores)
    if np.unique(labels).size < 2:
        raise ValueError("a ROC curve needs entries of both classes, but the labels contain only one")
    false_positive_rate, true_positive_rate, _ = roc_curve(labels, scores)
    keep = false_positive_rate > 0
    return true_positive_rate[keep], 1.0 / false_positive_rate[keep]


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


def multiclass_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Macro-averaged one-vs-rest ROC AUC over the classes present in ``labels``; NaN with fewer than two."""
    labels = np.asarray(labels).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float64)
    present = np.unique(labels)
    if present.size < 2:
        return math.nan
    aucs = [roc_auc_score(labels == k, probabilities[:, k]) for k in present]
    return float(np.mean(aucs))


def bootstrap_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    n: int = 100,
    seed: int = 0,
    metric_fn: Callable[[np.ndarray, np.ndarray], dict[str, float]] = binary_metrics,
) -> dict[str, dict[str, float | int]]:
    """Compute ``metric_fn`` on the full sample and on ``n`` bootstrap resamples of its entries.

    ``scores`` may be one score per entry or one row per entry (e.g. class probabilities);
    resampling draws whole entries with replacement from ``numpy.random.default_rng(seed)``.
    Returns, per metric name, ``value`` (the full-sample value), ``uncertainty`` (standard
    deviation over the resamples with a finite value, ddof=1; NaN when fewer than two are
    finite) and ``n_infinite`` (resamples where the metric was infinite, e.g. a background
    rejection with no background passing). Resamples that give NaN, such as an AUC of a
    resample holding one class, are left out of the spread.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"the number of bootstrap resamples must be a non-negative integer, got {n!r}")
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores)
    if scores.shape[0] != labels.shape[0]:
        raise ValueError(f"labels and scores differ in length: {labels.shape[0]} != {scores.shape[0]}")

    nominal = metric_fn(labels, scores)
    rng = np.random.default_rng(seed)
    resampled = {name: np.empty(n) for name in nominal}
    for i in range(n):
        index = rng.integers(0, labels.shape[0], labels.shape[0])
        for name, value in metric_fn(labels[index], scores[index]).items():
            resampled[name][i] = value

    results = {}
    for name, value in nominal.items():
        values = resampled[name]
        finite = values[np.isfinite(values)]
        spread = float(np.std(finite, ddof=1)) if finite.size >= 2 else math.nan
        results[name] = {"value": float(value), "uncertainty": spread, "n_infinite": int(np.isinf(values).sum())}
    return results


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Count entries per (true class, predicted class): rows are true classes, columns predictions."""
    labels = np.asarray(labels).ravel()
    predicted = np.asarray(predicted).ravel()
    if labels.shape != predicted.shape:
        raise ValueError(f"labels and predictions differ in length: {labels.shape[0]} != {predicted.shape[0]}")
    for name, values in (("labels", labels), ("predictions", predicted)):
        bad = (values < 0) | (values >= num_classes)
        if bad.any():
            raise ValueError(
                f"{name} must be class indices in 0..{num_classes - 1}, got {values[bad][0]!r} "
                f"({int(bad.sum())} entries out of range)"
            )
    flat = labels.astype(np.int64) * num_classes + predicted.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def normalise_rows(confusion: np.ndarray) -> np.ndarray:
    """Divide each row of a confusion matrix by its sum; rows of a class without entries become NaN."""
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, confusion / totals, math.nan)


def class_efficiency_purity(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class efficiency (recall) and purity (precision) from a confusion matrix.

    Efficiency of class k is the fraction of true-k entries predicted as k, the diagonal
    over the row sum. Purity is the fraction of entries predicted as k that are truly k,
    the diagonal over the column sum. A class with no true entries has NaN efficiency, and a class never
    predicted has NaN purity.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    diagonal = np.diag(confusion)
    true_totals = confusion.sum(axis=1)
    predicted_totals = confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        efficiency = np.where(true_totals > 0, diagonal / true_totals, math.nan)
        purity = np.where(predicted_totals > 0, diagonal / predicted_totals, math.nan)
    return efficiency, purity


class EfficiencyAtPurity(NamedTuple):
    """The best signal efficiency of a score cut whose selection reaches a required purity."""

    efficiency: float  # fraction of signal entries with score >= threshold; 0 when no cut reaches the purity
    threshold: float  # the score cut (select score >= threshold); NaN when no cut reaches the purity
    purity: float  # purity of the selection at that cut; NaN when no cut reaches the purity


def efficiency_at_purity(
    labels: np.ndarray, scores: np.ndarray, purity: float, signal_class: int = 1
) -> EfficiencyAtPurity:
    """Scan the cut ``score >= threshold`` and return the highest efficiency whose purity is at least ``purity``.

    Entries with ``labels == signal_class`` are signal, all others background. Every distinct
    score is tried as a threshold, and tied scores are selected together. Among cuts with
    equal efficiency the highest threshold, which has the highest purity, is returned.
    """
    if not 0.0 < purity <= 1.0:
        raise ValueError(f"purity must be in (0, 1], got {purity!r}")
    labels, scores = _check_binary(labels, scores)
    is_signal = labels == signal_class
    n_signal = int(is_signal.sum())
    if n_signal == 0:
        return EfficiencyAtPurity(math.nan, math.nan, math.nan)

    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    selected_signal = np.cumsum(is_signal[order])
    selected_all = np.arange(1, scores.size + 1)

    # A threshold equal to a score selects every entry down to the last of its ties.
    last_of_ties = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    purities = selected_signal[last_of_ties] / selected_all[last_of_ties]
    efficiencies = selected_signal[last_of_ties] / n_signal

    passing = np.flatnonzero(purities >= purity)
    if passing.size == 0:
        return EfficiencyAtPurity(0.0, math.nan, math.nan)
    best_efficiency = efficiencies[passing].max()
    best = passing[np.flatnonzero(efficiencies[passing] == best_efficiency)[0]]
    return EfficiencyAtPurity(float(best_efficiency), float(sorted_scores[last_of_ties[best]]), float(purities[best]))


def multiclass_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    *,
    purity_class: str | None = None,
    purity: float = 0.8,
) -> dict[str, float]:
    """Scalar metrics of a classifier's probabilities (entries, classes), flat for `bootstrap_metrics`.

    Keys: ``accuracy`` (of the arg-max class), ``auc`` (`multiclass_auc`), ``efficiency/<class>`` and ``purity/<class>``
    for every class, and, when ``purity_class`` is given, ``efficiency_at_purity`` and
    ``threshold_at_purity`` for the cut on that class's probability (see
    `efficiency_at_purity`).
    """
    labels = np.asarray(labels).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape != (labels.size, len(class_names)):
        raise ValueError(
            f"probabilities must have shape (entries, classes) = ({labels.size}, {len(class_names)}), "
            f"got {probabilities.shape}"
        )
    predicted = probabilities.argmax(axis=1)
    confusion = confusion_matrix(labels, predicted, len(class_names))
    efficiency, class_purity = class_efficiency_purity(confusion)

    metrics = {"accuracy": accuracy(labels, predicted), "auc": multiclass_auc(labels, probabilities)}
    for index, name in enumerate(class_names):
        metrics[f"efficiency/{name}"] = float(efficiency[index])
        metrics[f"purity/{name}"] = float(class_purity[index])
    if purity_class is not None:
        if purity_class not in class_names:
            raise ValueError(f"unknown class {purity_class!r}; the classes are {list(class_names)}")
        signal_class = list(class_names).index(purity_class)
        cut = efficiency_at_purity(labels, probabilities[:, signal_class], purity, signal_class=signal_class)
        metrics["efficiency_at_purity"] = cut.efficiency
        metrics["threshold_at_purity"] = cut.threshold
    return metrics


def binary_summary(labels: np.ndarray, scores: np.ndarray, *, n_bootstrap: int = 100, seed: int = 0) -> dict:
    """Summarise `binary_metrics` with bootstrap uncertainties as a JSON-safe dictionary.

    Each metric becomes ``{"value": x, "uncertainty": s}`` (see `bootstrap_metrics`), with
    None in place of NaN. Rejections also carry ``infinite_resamples``. An infinite
    rejection has value and uncertainty None, a ``note`` and a ``lower_bound``: the number
    of background entries, which 1/eps_B then exceeds.
    """
    results = bootstrap_metrics(labels, scores, n=n_bootstrap, seed=seed)
    n_background = int(np.sum(np.asarray(labels) == 0))
    summary = {"kind": "binary"}
    for name, result in results.items():
        entry = _metric_entry(result)
        if name in REJECTION_METRICS:
            entry["infinite_resamples"] = result["n_infinite"]
            if math.isinf(result["value"]):
                # A spread of the finite resamples would read as an error on an infinite value.
                entry["uncertainty"] = None
                entry["lower_bound"] = n_background
                entry["note"] = INFINITE_REJECTION_NOTE
        summary[name] = entry
    return summary


def multiclass_summary(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    *,
    purity_class: str | None = None,
    purity: float = 0.8,
    n_bootstrap: int = 100,
    seed: int = 0,
) -> dict:
    """Summarise `multiclass_metrics` with bootstrap uncertainties, plus the confusion matrix, as a JSON-safe dictionary.

    Keys: ``accuracy``, ``auc``, ``efficiency`` and ``purity`` (per class name), and
    ``efficiency_at_purity`` (with the ``class``, required ``purity`` and score
    ``threshold``) when ``purity_class`` is given, each as ``{"value", "uncertainty"}``.
    ``confusion_matrix`` contains ``counts`` and ``row_normalised`` with true classes in rows.
    """
    metric_fn = functools.partial(multiclass_metrics, class_names=class_names, purity_class=purity_class, purity=purity)
    results = bootstrap_metrics(labels, probabilities, n=n_bootstrap, seed=seed, metric_fn=metric_fn)
    summary = {
        "kind": "multiclass",
        "accuracy": _metric_entry(results["accuracy"]),
        "auc": _metric_entry(results["auc"]),
        "efficiency": {name: _metric_entry(results[f"efficiency/{name}"]) for name in class_names},
        "purity": {name: _metric_entry(results[f"purity/{name}"]) for name in class_names},
    }
    if purity_class is not None:
        summary["efficiency_at_purity"] = {
            "class": purity_class,
            "purity": purity,
            **_metric_entry(results["efficiency_at_purity"]),
            "threshold": json_float(results["threshold_at_purity"]["value"]),
        }

    counts = confusion_matrix(labels, np.asarray(probabilities).argmax(axis=1), len(class_names))
    summary["confusion_matrix"] = {
        "rows": "true class",
        "columns": "predicted class",
        "class_names": list(class_names),
        "counts": counts.tolist(),
        "row_normalised": [[json_float(value) for value in row] for row in normalise_rows(counts)],
    }
    return summary


def json_float(value: float) -> float | None:
    """Return ``value`` as a float, or None (JSON null) when it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None


def _metric_entry(result: dict) -> dict:
    return {"value": json_float(result["value"]), "uncertainty": json_float(result["uncertainty"])}
