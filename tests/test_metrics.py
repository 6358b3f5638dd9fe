"""Binary tagging metrics against values computed by hand."""

import math

import numpy as np
import pytest

from jetnu.metrics import background_rejection, binary_metrics, roc_auc


def test_auc_perfect_and_inverted():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0


def test_auc_with_ties_counts_half():
    # Pairs (signal, background): 0.5 vs 0.5 is a tie (1/2), 0.9 beats both -> (1 + 1 + 0.5 + 1) / 4.
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.5, 0.1, 0.5, 0.9])
    assert roc_auc(labels, scores) == pytest.approx(0.875)


def test_rejection_at_fixed_efficiency():
    # Ten signal jets at 0.91 ... 1.00; one background jet at 0.955, nine at 0.1.
    signal = np.linspace(0.91, 1.0, 10)
    background = np.concatenate([[0.955], np.full(9, 0.1)])
    labels = np.concatenate([np.ones(10), np.zeros(10)])
    scores = np.concatenate([signal, background])
    # eps_S = 0.3 and 0.5 keep signal >= 0.98 and >= 0.96: no background passes.
    assert background_rejection(labels, scores, 0.3) == math.inf
    assert background_rejection(labels, scores, 0.5) == math.inf
    # eps_S = 0.6 needs the cut at 0.95, below the 0.955 background jet: eps_B = 1/10.
    assert background_rejection(labels, scores, 0.6) == pytest.approx(10.0)
    # Halfway between (eps_S, eps_B) = (0.6, 0.1) and (0.7, 0.1) nothing changes.
    assert background_rejection(labels, scores, 0.65) == pytest.approx(10.0)


def test_rejection_interpolates_between_points():
    # ROC points (eps_B, eps_S): (0, 0), (0, 0.5), (0.5, 0.5), (0.5, 1), (1, 1).
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    assert background_rejection(labels, scores, 0.5) == math.inf
    assert background_rejection(labels, scores, 0.75) == pytest.approx(2.0)


def test_rejection_of_random_scores_near_inverse_efficiency():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200_000)
    scores = rng.random(200_000)
    assert background_rejection(labels, scores, 0.3) == pytest.approx(1 / 0.3, rel=0.03)


def test_one_class_gives_nan():
    assert math.isnan(roc_auc(np.ones(4), np.arange(4.0)))
    assert math.isnan(background_rejection(np.zeros(4), np.arange(4.0), 0.3))


def test_nan_scores_raise():
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        binary_metrics(np.array([0, 1]), np.array([0.1, np.nan]))


def test_binary_metrics_keys():
    metrics = binary_metrics(np.array([0, 1, 0, 1]), np.array([0.2, 0.7, 0.6, 0.9]))
    assert set(metrics) == {"auc", "accuracy", "rejection_at_eff_0.3", "rejection_at_eff_0.5"}
    assert metrics["accuracy"] == 0.75
