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


def test_multiclass_auc_averages_one_vs_rest():
    from jetnu.metrics import multiclass_auc

    labels = np.array([0, 1, 2, 0])
    # Class 0 and 2 perfectly separated; class 1 scored below one class-0 entry: AUC 2/3.
    probabilities = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.3, 0.4, 0.3],
            [0.1, 0.2, 0.7],
            [0.4, 0.5, 0.1],
        ]
    )
    assert multiclass_auc(labels, probabilities) == pytest.approx((1.0 + 2 / 3 + 1.0) / 3)


def test_bootstrap_perfect_classifier_has_no_spread():
    from jetnu.metrics import bootstrap_metrics

    labels = np.array([0] * 20 + [1] * 20)
    scores = np.concatenate([np.linspace(0.0, 0.4, 20), np.linspace(0.6, 1.0, 20)])
    results = bootstrap_metrics(labels, scores, n=50, seed=3)

    # sklearn's trapezoidal AUC of a perfect resample can be 1 - 1e-16, hence the tolerance.
    assert results["auc"]["value"] == pytest.approx(1.0, abs=1e-12)
    assert results["auc"]["uncertainty"] == pytest.approx(0.0, abs=1e-12)
    assert results["accuracy"]["value"] == 1.0
    assert results["accuracy"]["uncertainty"] == 0.0
    # No background passes any cut that keeps signal, so every resample's rejection is infinite.
    assert results["rejection_at_eff_0.5"]["value"] == math.inf
    assert results["rejection_at_eff_0.5"]["n_infinite"] == 50
    assert math.isnan(results["rejection_at_eff_0.5"]["uncertainty"])


def test_bootstrap_accuracy_spread_matches_binomial():
    from jetnu.metrics import bootstrap_metrics

    # 300 of 400 entries classified correctly: the bootstrap spread of the accuracy should
    # approach the binomial standard error sqrt(p (1 - p) / N) = 0.0217.
    labels = np.tile([0, 1], 200)
    scores = np.where(np.arange(400) % 4 == 0, 1 - labels, labels).astype(float)
    results = bootstrap_metrics(labels, scores, n=400, seed=1)

    assert results["accuracy"]["value"] == 0.75
    assert results["accuracy"]["uncertainty"] == pytest.approx(math.sqrt(0.75 * 0.25 / 400), rel=0.15)
    assert results["accuracy"]["n_infinite"] == 0


def test_bootstrap_depends_only_on_seed():
    from jetnu.metrics import bootstrap_metrics

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = labels * 0.3 + rng.random(200)
    first = bootstrap_metrics(labels, scores, n=20, seed=5)
    again = bootstrap_metrics(labels, scores, n=20, seed=5)
    other = bootstrap_metrics(labels, scores, n=20, seed=6)

    assert first == again
    assert first["auc"]["uncertainty"] != other["auc"]["uncertainty"]
    assert first["auc"]["value"] == other["auc"]["value"]


def test_bootstrap_rejects_negative_resamples():
    from jetnu.metrics import bootstrap_metrics

    with pytest.raises(ValueError, match="non-negative integer"):
        bootstrap_metrics(np.array([0, 1]), np.array([0.1, 0.9]), n=-1)


def test_confusion_matrix_by_hand():
    from jetnu.metrics import confusion_matrix

    labels = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    expected = np.array(
        [
            [1, 1, 0],  # true 0: one right, one called 1
            [0, 2, 1],  # true 1: two right, one called 2
            [1, 0, 0],  # true 2: called 0
        ]
    )
    np.testing.assert_array_equal(confusion_matrix(labels, predicted, 3), expected)


def test_confusion_matrix_rejects_out_of_range_class():
    from jetnu.metrics import confusion_matrix

    with pytest.raises(ValueError, match="class indices in 0..2"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_efficiency_and_purity_by_hand():
    from jetnu.metrics import class_efficiency_purity, normalise_rows

    confusion = np.array([[1, 1, 0], [0, 2, 1], [1, 0, 0]])
    efficiency, purity = class_efficiency_purity(confusion)

    np.testing.assert_allclose(efficiency, [1 / 2, 2 / 3, 0.0])
    np.testing.assert_allclose(purity, [1 / 2, 2 / 3, 0.0])
    np.testing.assert_allclose(normalise_rows(confusion), [[0.5, 0.5, 0.0], [0.0, 2 / 3, 1 / 3], [1.0, 0.0, 0.0]])


def test_efficiency_and_purity_undefined_classes_are_nan():
    from jetnu.metrics import class_efficiency_purity

    # Class 2 has no true entries and is never predicted.
    efficiency, purity = class_efficiency_purity(np.array([[3, 1, 0], [2, 2, 0], [0, 0, 0]]))
    np.testing.assert_allclose(efficiency[:2], [3 / 4, 2 / 4])
    np.testing.assert_allclose(purity[:2], [3 / 5, 2 / 3])
    assert math.isnan(efficiency[2])
    assert math.isnan(purity[2])


def test_efficiency_at_purity_by_hand():
    from jetnu.metrics import efficiency_at_purity

    # Sorted by score: S S B S S B S B with scores 0.9 ... 0.2; four of five signal
    # entries above 0.45 come with one background entry (purity 4/5).
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    labels = np.array([1, 1, 0, 1, 1, 0, 1, 0])

    cut = efficiency_at_purity(labels, scores, purity=0.8)
    assert cut.efficiency == pytest.approx(4 / 5)
    assert cut.threshold == 0.5
    assert cut.purity == pytest.approx(4 / 5)

    # Purity 1 is reached only by the first two signal entries.
    strict = efficiency_at_purity(labels, scores, purity=1.0)
    assert strict.efficiency == pytest.approx(2 / 5)
    assert strict.threshold == 0.8


def test_efficiency_at_purity_selects_ties_together():
    from jetnu.metrics import efficiency_at_purity

    # The signal at 0.9 ties with a background entry: that cut has purity 2/3, not 1.
    labels = np.array([1, 1, 0, 1])
    scores = np.array([0.9, 0.9, 0.9, 0.1])
    cut = efficiency_at_purity(labels, scores, purity=0.9)
    assert cut.efficiency == 0.0
    assert math.isnan(cut.threshold)

    loose = efficiency_at_purity(labels, scores, purity=0.6)
    assert loose.efficiency == pytest.approx(1.0)
    assert loose.threshold == 0.1
    assert loose.purity == pytest.approx(3 / 4)


def test_efficiency_at_purity_other_signal_class():
    from jetnu.metrics import efficiency_at_purity

    labels = np.array([2, 2, 0, 1, 2])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    cut = efficiency_at_purity(labels, scores, purity=1.0, signal_class=2)
    assert cut.efficiency == pytest.approx(2 / 3)
    assert cut.threshold == 0.8


def test_multiclass_metrics_by_hand():
    from jetnu.metrics import multiclass_metrics

    labels = np.array([0, 1, 1, 2])
    probabilities = np.array(
        [
            [0.7, 0.2, 0.1],  # predicted 0, right
            [0.1, 0.6, 0.3],  # predicted 1, right
            [0.5, 0.4, 0.1],  # predicted 0, wrong
            [0.2, 0.1, 0.7],  # predicted 2, right
        ]
    )
    metrics = multiclass_metrics(labels, probabilities, ("a", "b", "c"), purity_class="b", purity=1.0)

    assert metrics["accuracy"] == 0.75
    assert metrics["efficiency/a"] == 1.0
    assert metrics["purity/a"] == 0.5
    assert metrics["efficiency/b"] == 0.5
    assert metrics["purity/b"] == 1.0
    assert metrics["efficiency/c"] == 1.0
    # Class b scores 0.6, 0.4 (b), 0.2, 0.1: both b entries pass above 0.4 with purity 1.
    assert metrics["efficiency_at_purity"] == 1.0
    assert metrics["threshold_at_purity"] == 0.4


def test_multiclass_metrics_unknown_purity_class():
    from jetnu.metrics import multiclass_metrics

    with pytest.raises(ValueError, match="unknown class 'nue_cc'"):
        multiclass_metrics(np.array([0, 1]), np.eye(2), ("a", "b"), purity_class="nue_cc")


def test_rejection_curve_matches_rejection():
    from jetnu.metrics import rejection_curve

    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    efficiency, rejection = rejection_curve(labels, scores)
    # ROC points with eps_B > 0: (eps_B, eps_S) = (0.5, 0.5), (0.5, 1), (1, 1).
    np.testing.assert_allclose(efficiency, [0.5, 1.0, 1.0])
    np.testing.assert_allclose(rejection, [2.0, 2.0, 1.0])


def test_binary_summary_infinite_rejection_is_null():
    import json

    from jetnu.metrics import binary_summary

    # Perfect separation with 20 background entries: 1/eps_B is infinite at every efficiency.
    labels = np.array([0] * 20 + [1] * 20)
    scores = np.concatenate([np.linspace(0.0, 0.4, 20), np.linspace(0.6, 1.0, 20)])
    summary = binary_summary(labels, scores, n_bootstrap=10, seed=0)

    rejection = summary["rejection_at_eff_0.3"]
    assert rejection["value"] is None
    assert rejection["uncertainty"] is None
    assert rejection["lower_bound"] == 20
    assert rejection["infinite_resamples"] == 10
    assert "no background entry passes" in rejection["note"]
    assert summary["auc"]["value"] == pytest.approx(1.0)
    json.dumps(summary, allow_nan=False)  # raises ValueError on NaN or infinity


def test_binary_summary_finite_rejection_has_no_note():
    from jetnu.metrics import binary_summary

    # A background entry above every signal entry: ROC points (eps_B, eps_S) = (0.5, 0),
    # (0.5, 0.5), (0.5, 1), (1, 1), so eps_S = 0.5 needs eps_B = 0.5.
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.95, 0.7, 0.1])
    rejection = binary_summary(labels, scores, n_bootstrap=0)["rejection_at_eff_0.5"]

    assert rejection["value"] == pytest.approx(2.0)
    assert rejection["uncertainty"] is None  # no resamples, no spread
    assert rejection["infinite_resamples"] == 0
    assert "note" not in rejection
    assert "lower_bound" not in rejection


def test_multiclass_summary_layout():
    import json

    from jetnu.metrics import multiclass_summary

    labels = np.array([0, 1, 1, 2])
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.4, 0.1], [0.2, 0.1, 0.7]])
    summary = multiclass_summary(labels, probabilities, ("a", "b", "c"), purity_class="b", purity=1.0, n_bootstrap=5)

    assert summary["kind"] == "multiclass"
    assert summary["confusion_matrix"]["counts"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert summary["confusion_matrix"]["row_normalised"][1] == [0.5, 0.5, 0.0]
    assert summary["efficiency"]["b"]["value"] == 0.5
    assert summary["purity"]["a"]["value"] == 0.5
    assert summary["efficiency_at_purity"] == {
        "class": "b",
        "purity": 1.0,
        "value": 1.0,
        "uncertainty": summary["efficiency_at_purity"]["uncertainty"],
        "threshold": 0.4,
    }
    json.dumps(summary, allow_nan=False)
