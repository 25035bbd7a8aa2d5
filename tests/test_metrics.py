"""Metrics and temperature scaling pinned to values worked out by hand."""
import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neural_network import MLPClassifier
from scipy.special import softmax

from skdistill.calibration import apply_temperature, fit_temperature
from skdistill.metrics import (
    brier_score, calibrated_scores, calibration_bins, brier_scorer, ece_scorer, entropy,
    entropy_mae, expected_calibration_error, negative_log_likelihood, nll_scorer,
)

# Four samples, three classes (labels 0, 1, 2).
Y = np.array([0, 1, 2, 0])
P = np.array([
    [0.6, 0.3, 0.1],   # conf 0.6, predicts 0, right
    [0.2, 0.7, 0.1],   # conf 0.7, predicts 1, right
    [0.5, 0.1, 0.4],   # conf 0.5, predicts 0, wrong
    [0.2, 0.0, 0.8],   # conf 0.8, predicts 2, wrong
])


def test_ece_by_hand_with_five_bins():
    # Edges 0, .2, .4, .6, .8, 1; bins [.4,.6) {0.5}, [.6,.8) {0.6, 0.7}, [.8, 1] {0.8}.
    # [.4,.6): acc 0, conf .5 -> 1/4 * .5 = .125
    # [.6,.8): acc 1, conf .65 -> 2/4 * .35 = .175
    # [.8, 1]: acc 0, conf .8 -> 1/4 * .8 = .2
    assert expected_calibration_error(Y, P, n_bins=5) == pytest.approx(0.5)
    bins = calibration_bins(Y, P, n_bins=5)
    assert bins.count.tolist() == [0, 0, 1, 2, 1]
    np.testing.assert_allclose(bins.accuracy[2:], [0, 1, 0])
    np.testing.assert_allclose(bins.confidence[2:], [0.5, 0.65, 0.8])
    assert np.isnan(bins.accuracy[:2]).all()


def test_ece_bin_edges_left_closed_and_last_bin_closed():
    # Confidence exactly 0.5 with 2 bins opens the upper bin [0.5, 1]; 1.0 is in it too.
    bins = calibration_bins([0, 0], [[0.5, 0.5], [1.0, 0.0]], n_bins=2, labels=[0, 1])
    assert bins.count.tolist() == [0, 2]
    # One bin: acc 1, conf .75 -> ECE .25
    assert expected_calibration_error([0, 0], [[0.5, 0.5], [1.0, 0.0]], n_bins=2,
                                      labels=[0, 1]) == 0.25
    # Default 15 bins: 0.6 falls in [9/15, 10/15), 0.7 in [10/15, 11/15).
    bins = calibration_bins([0, 1], [[0.6, 0.4], [0.3, 0.7]])
    assert bins.count[9] == 1 and bins.count[10] == 1 and bins.count.sum() == 2


def test_ece_binary_1d_matches_2d():
    y = np.array([0, 1, 1])
    p1 = np.array([0.2, 0.9, 0.4])
    # conf .8 right, .9 right, .6 wrong; 10 bins -> |1-.8|/3 + |1-.9|/3 + |0-.6|/3 = .3
    assert expected_calibration_error(y, p1, n_bins=10) == pytest.approx(0.3)
    assert expected_calibration_error(y, np.column_stack([1 - p1, p1]), n_bins=10) == \
        pytest.approx(0.3)


def test_nll_by_hand_and_matches_log_loss():
    # -(log .6 + log .7 + log .4 + log .2) / 4
    # = (.510826 + .356675 + .916291 + 1.609438) / 4 = .848307
    expected = -(np.log(0.6) + np.log(0.7) + np.log(0.4) + np.log(0.2)) / 4
    assert negative_log_likelihood(Y, P) == pytest.approx(expected)
    assert negative_log_likelihood(Y, P) == pytest.approx(0.848307, abs=1e-6)
    assert negative_log_likelihood(Y, P) == pytest.approx(log_loss(Y, P))
    assert negative_log_likelihood(Y, P, eps=0.25) == pytest.approx(
        -(np.log(0.6) + np.log(0.7) + np.log(0.4) + np.log(0.25)) / 4)


def test_nll_zero_probability_on_true_class_is_clipped():
    # log_loss clips at float64 eps: -log(2.22e-16) = 36.04
    assert negative_log_likelihood([1], [[1.0, 0.0]], labels=[0, 1]) == pytest.approx(
        36.0437, abs=1e-3)
    assert negative_log_likelihood([1], [[1.0, 0.0]], labels=[0, 1], eps=0) == np.inf


def test_brier_by_hand_sum_over_classes():
    # row 0: .16 + .09 + .01 = .26; row 1: .04 + .09 + .01 = .14
    # row 2: .25 + .01 + .36 = .62; row 3: .64 + 0 + .64 = 1.28  -> mean 2.3 / 4 = .575
    assert brier_score(Y, P) == pytest.approx(0.575)
    # Binary: twice the usual binary Brier. (.7 - 1)^2 + .3^2 = .18, (.4-1)^2 + .6^2 = .72
    assert brier_score([0, 0], [[0.7, 0.3], [0.4, 0.6]], labels=[0, 1]) == pytest.approx(0.45)


def test_labels_map_columns_when_y_misses_a_class():
    y = np.array(["b", "b"])
    p = np.array([[0.1, 0.9, 0.0], [0.3, 0.6, 0.1]])
    labels = ["a", "b", "c"]
    # NLL -(log .9 + log .6)/2; Brier ((.01+.01) + (.09+.16+.01))/2 = .14
    assert negative_log_likelihood(y, p, labels=labels) == pytest.approx(
        -(np.log(0.9) + np.log(0.6)) / 2)
    assert brier_score(y, p, labels=labels) == pytest.approx(0.14)
    # both right: |1 - .9| / 2 + |1 - .6| / 2 = .25
    assert expected_calibration_error(y, p, labels=labels) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="expected_calibration_error: parameter y_true=.*labels="):
        expected_calibration_error(y, p)
    # Binary with non-0/1 labels where y holds only the larger one: column 1 is label 5.
    assert brier_score([5, 5], [[0.2, 0.8], [0.5, 0.5]], labels=[2, 5]) == pytest.approx(
        (0.08 + 0.5) / 2)


@pytest.mark.parametrize("func", [expected_calibration_error, negative_log_likelihood,
                                  brier_score, calibration_bins])
@pytest.mark.parametrize("y_prob, message", [
    (np.array([[0.5, 0.5]] * 3), r"y_prob=<array of 3 rows>"),
    (np.array([[0.5, 0.6]] * 4), r"y_prob=<array whose row 0 sums to 1\.1>"),
    (np.array([[1.2, -0.2]] * 4), r"y_prob=<array with range \[-0\.2, 1\.2\]>"),
    (np.array([[np.nan, 0.5]] * 4), r"y_prob=<array with NaN or inf>"),
])
def test_bad_probabilities_name_function_parameter_and_value(func, y_prob, message):
    message = message.replace("=", "='?")  # the value may be quoted
    with pytest.raises(ValueError, match=rf"{func.__name__}: parameter {message}"):
        func([0, 1, 0, 1], y_prob)


def test_unknown_label_is_reported():
    with pytest.raises(ValueError, match="brier_score: parameter y_true='<array with label 7>'"):
        brier_score([0, 7], [[0.5, 0.5], [0.5, 0.5]], labels=[0, 1])


def test_entropy_by_hand():
    h = entropy([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]])
    # log 2; 0 log 0 = 0; -(.25 log .25 + .75 log .75) = .562335
    np.testing.assert_allclose(h, [np.log(2), 0.0, 0.562335], atol=1e-6)
    np.testing.assert_allclose(entropy(np.array([[0.5, 1.0], [0.5, 0.0]]), axis=0),
                               [np.log(2), 0.0])
    with pytest.raises(ValueError, match="entropy: parameter p="):
        entropy([[0.5, 0.6]])


def test_entropy_mae_accepts_entropies_or_probabilities():
    p_ref = np.array([[0.5, 0.5], [1.0, 0.0]])
    p = np.array([[0.25, 0.75], [0.5, 0.5]])
    # |log 2 - .562335| = .130812, |0 - log 2| = .693147 -> mean .411980
    expected = 0.411980
    assert entropy_mae(p_ref, p) == pytest.approx(expected, abs=1e-6)
    assert entropy_mae(entropy(p_ref), p) == pytest.approx(expected, abs=1e-6)
    assert entropy_mae(p_ref, entropy(p)) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="entropy_mae: parameter other='<3 samples>'"):
        entropy_mae(p_ref, [0.1, 0.2, 0.3])


def test_apply_temperature_by_hand():
    # T = 2 on (.9, .1): sqrt -> (3, 1)/4; T = 1 is the identity.
    np.testing.assert_allclose(apply_temperature([[0.9, 0.1]], 2.0), [[0.75, 0.25]])
    np.testing.assert_allclose(apply_temperature(P, 1.0), P, atol=1e-11)
    np.testing.assert_allclose(apply_temperature([0.1, 0.5], 2.0), [0.25, 0.5])
    with pytest.raises(ValueError, match="apply_temperature: parameter temperature=0"):
        apply_temperature(P, 0)


def test_fit_temperature_hand_case():
    # 3 of 4 right at confidence .9: the NLL minimum puts confidence at exactly 3/4,
    # 9 ** (1/T) = 3, T = 2.
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9]])
    assert fit_temperature(proba, [0, 0, 1, 1]) == pytest.approx(2.0, abs=1e-6)
    # The same from logits, and with string labels in another column order.
    assert fit_temperature(np.log(proba) + 3.0, [0, 0, 1, 1]) == pytest.approx(2.0, abs=1e-6)
    assert fit_temperature(proba, ["a", "a", "b", "b"], labels=["a", "b"]) == \
        pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("t0", [0.5, 2.0])
def test_fit_temperature_recovers_generating_temperature(t0):
    rng = np.random.default_rng(0)
    n, c = 20000, 4
    z = rng.normal(scale=3.0, size=(n, c))
    true_p = softmax(z / t0, axis=1)
    y = (rng.random(n)[:, None] > np.cumsum(true_p, axis=1)).sum(axis=1)
    # The model reports softmax(z) though the data follow softmax(z / t0).
    assert fit_temperature(softmax(z, axis=1), y) == pytest.approx(t0, rel=0.05)
    assert fit_temperature(z, y) == pytest.approx(t0, rel=0.05)


def test_fit_temperature_matches_sklearn_on_predict_proba_only_model():
    X, y = make_classification(600, n_informative=5, n_classes=3, random_state=0)
    model = MLPClassifier((20,), max_iter=300, random_state=0).fit(X[:300], y[:300])
    ref = CalibratedClassifierCV(FrozenEstimator(model), method="temperature")
    ref.fit(X[300:], y[300:])
    t_sklearn = 1 / float(ref.calibrated_classifiers_[0].calibrators[0].beta_)
    assert fit_temperature(model.predict_proba(X[300:]), y[300:]) == pytest.approx(
        t_sklearn, rel=1e-5)


def test_calibrated_scores_improve_nll_of_overconfident_model():
    X, y = make_classification(900, n_informative=4, flip_y=0.2, random_state=0)
    model = LogisticRegression(C=1e4).fit(X[:100], y[:100])  # few samples, no penalty
    scores = calibrated_scores(model, X[100:500], y[100:500], X[500:], y[500:])
    assert scores["temperature"] > 1
    assert scores["cnll"] < scores["nll"]
    p_cal = apply_temperature(model.predict_proba(X[500:]), scores["temperature"])
    assert scores["cece"] == pytest.approx(expected_calibration_error(y[500:], p_cal))
    with pytest.raises(NotFittedError):
        calibrated_scores(LogisticRegression(), X, y, X, y)


def test_calibrated_scores_accept_string_classes_and_missing_class_in_val():
    X, y = make_classification(600, n_informative=4, n_classes=3, random_state=0)
    y = np.array(["x", "y", "z"])[y]
    model = LogisticRegression().fit(X[:300], y[:300])
    keep = y[300:450] != "z"
    scores = calibrated_scores(model, X[300:450][keep], y[300:450][keep], X[450:], y[450:])
    assert np.isfinite(list(scores.values())).all()


def test_scorers_in_grid_search_with_a_fold_missing_a_class():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(105, 3))
    y = rng.integers(0, 2, size=105)
    y[[0, 70]] = 2  # every training split holds class 2, the middle test fold does not
    cv = KFold(3)
    # scikit-learn's own scorer infers classes from the fold's y and fails on the middle fold.
    with pytest.warns(UserWarning):
        ref = cross_val_score(LogisticRegression(), X, y, cv=cv, scoring="neg_log_loss",
                              error_score=np.nan)
    assert np.isnan(ref).tolist() == [False, True, False]
    search = GridSearchCV(
        LogisticRegression(), {"C": [0.1, 1.0]}, cv=cv, refit="nll", error_score="raise",
        scoring={"ece": ece_scorer, "nll": nll_scorer, "brier": brier_scorer},
    ).fit(X, y)
    for name in ("ece", "nll", "brier"):
        scores = search.cv_results_[f"mean_test_{name}"]
        assert np.isfinite(scores).all() and (scores <= 0).all()
    model = search.best_estimator_
    assert ece_scorer(model, X, y) == pytest.approx(
        -expected_calibration_error(y, model.predict_proba(X)))
    assert nll_scorer(model, X, y) == pytest.approx(-log_loss(y, model.predict_proba(X)))


@pytest.mark.parametrize("func", [expected_calibration_error, negative_log_likelihood,
                                  brier_score, calibration_bins])
def test_duplicate_labels_are_named(func):
    with pytest.raises(ValueError, match=rf"{func.__name__}: parameter labels=\[0, 1, 1\] is "
                                         r"invalid; expected distinct labels.*\[1\] repeated"):
        func([0, 1, 1], np.array([[0.2, 0.3, 0.5]] * 3), labels=[0, 1, 1])


@pytest.mark.parametrize("func", [expected_calibration_error, negative_log_likelihood,
                                  brier_score, calibration_bins])
def test_nan_label_is_named(func):
    with pytest.raises(ValueError, match=rf"{func.__name__}: parameter y_true='<array with NaN "
                                         r"or None at row 1>'"):
        func(np.array([0.0, np.nan, 1.0]), np.array([[0.5, 0.5]] * 3))
    with pytest.raises(ValueError, match=r"fit_temperature: parameter y='<array with NaN"):
        fit_temperature(np.array([[0.5, 0.5]] * 3), np.array([0.0, np.nan, 1.0]))


@pytest.mark.parametrize("func", [expected_calibration_error, negative_log_likelihood,
                                  brier_score])
def test_binary_probability_outside_unit_interval_is_named(func):
    with pytest.raises(ValueError, match=rf"{func.__name__}: parameter y_prob=.*range "
                                         r"\[0\.4, 1\.2\].*in \[0, 1\]"):
        func([0, 1, 1], np.array([1.2, 0.4, 0.5]))
