"""Teacher quality (Menon et al. 2021): calibrated teachers, teacher report, reliability plots."""
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_digits, make_classification
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeRegressor

from skdistill import CrossFitDistiller, KnowledgeDistiller, MLPStudent
from skdistill._random import draw_seed
from skdistill.calibration import (IsotonicCalibrator, TemperatureCalibrator, apply_temperature,
                                   fit_temperature)
from skdistill.datasets import make_gaussian_mixture
from skdistill.distillers import kd as kd_module
from skdistill.engine import Objective
from skdistill.inspection import plot_reliability, spiegelhalter_test, teacher_report
from skdistill.losses import DistillationLoss, corrected_targets, soften
from skdistill.metrics import (brier_score, expected_calibration_error as ece,
                               negative_log_likelihood as nll)

TINY = dict(hidden_layer_sizes=(16,), max_epochs=5, lr=1e-2, random_state=0)


class TemperedTeacher(ClassifierMixin, BaseEstimator):
    """A teacher whose probabilities are its base model's softened by ``T`` (under-confident)."""

    def __init__(self, base=None, T=3.0):
        self.base = base
        self.T = T

    def fit(self, X, y):
        self.base_ = clone(self.base).fit(X, y)
        self.classes_ = self.base_.classes_
        return self

    def predict_proba(self, X):
        return apply_temperature(self.base_.predict_proba(X), self.T)


@pytest.fixture(scope="module")
def mixture():
    """Three Gaussian classes with a shared covariance: logistic regression is well specified."""
    X, y, _ = make_gaussian_mixture(n_samples=3000, n_classes=3, n_features=4, class_sep=1.5,
                                    random_state=0)
    return train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, test_size=0.5, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def binary():
    return make_classification(n_samples=300, n_features=6, n_informative=4, flip_y=0.1,
                               random_state=0)


def _calibrated_teacher_proba(model, X):
    return model.teacher_calibrator_.transform(model.teacher_.predict_proba(X))


# -- the calibration maps --------------------------------------------------------------------
def test_temperature_calibrator_undoes_a_known_tempering(mixture):
    X_train, X_test, y_train, y_test = mixture
    teacher = TemperedTeacher(LogisticRegression(), T=3.0).fit(X_train, y_train)
    cal = TemperatureCalibrator().fit(teacher.predict_proba(X_test), y_test)
    # softmax(log p / 3) re-sharpened by 1/3 is p, the (near-)Bayes logistic probabilities.
    assert cal.temperature_ == pytest.approx(1 / 3, rel=0.15)
    np.testing.assert_allclose(cal.transform(teacher.predict_proba(X_test)),
                               apply_temperature(teacher.predict_proba(X_test),
                                                 cal.temperature_))


def test_calibrator_weights_equal_repeated_rows(mixture):
    X_train, X_test, y_train, y_test = mixture
    P = TemperedTeacher(LogisticRegression(), T=2.0).fit(X_train, y_train).predict_proba(X_test)
    w = np.random.default_rng(0).integers(0, 3, size=len(y_test))
    rows = np.repeat(np.arange(len(y_test)), w)
    weighted = TemperatureCalibrator().fit(P, y_test, sample_weight=w).temperature_
    repeated = TemperatureCalibrator().fit(P[rows], y_test[rows]).temperature_
    assert weighted == pytest.approx(repeated, rel=1e-6)
    iso_w = IsotonicCalibrator().fit(P, y_test, sample_weight=w)
    iso_r = IsotonicCalibrator().fit(P[rows], y_test[rows])
    np.testing.assert_allclose(iso_w.transform(P), iso_r.transform(P), atol=1e-12)


def test_isotonic_calibrator_is_one_vs_rest_renormalised_and_floored(mixture):
    X_train, X_test, y_train, y_test = mixture
    P = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(
        X_train, y_train).predict_proba(X_test)
    cal = IsotonicCalibrator(floor=1e-3).fit(P, y_test)
    assert len(cal.isotonic_) == 3
    Q = cal.transform(P)
    raw = np.column_stack([iso.predict(P[:, k]) for k, iso in enumerate(cal.isotonic_)])
    raw /= raw.sum(axis=1, keepdims=True)
    floored = np.maximum(raw, 1e-3)
    np.testing.assert_allclose(Q, floored / floored.sum(axis=1, keepdims=True))
    assert Q.min() > 0 and np.allclose(Q.sum(axis=1), 1)
    # Binary: one map, on the second class, as CalibratedClassifierCV does.
    p1 = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    binary = IsotonicCalibrator(floor=0.0).fit(np.column_stack([1 - p1, p1]), [0, 0, 1, 0, 1, 1])
    assert len(binary.isotonic_) == 1
    np.testing.assert_allclose(binary.transform(p1), [0, 0, 0.5, 0.5, 1, 1])


# -- the distillers: calibration lowers the teacher's held-out ECE ---------------------------
@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_crossfit_calibration_lowers_an_underconfident_forests_ece(digits, method):
    X_train, X_test, y_train, y_test = digits
    model = CrossFitDistiller(RandomForestClassifier(n_estimators=30, max_depth=6),
                              DecisionTreeRegressor(), n_folds=3, teacher_calibration=method,
                              random_state=0).fit(X_train, y_train)
    raw = model.teacher_.predict_proba(X_test)
    assert raw.max(axis=1).mean() < accuracy_score(y_test, raw.argmax(axis=1)) - 0.2
    before, after = ece(y_test, raw), ece(y_test, _calibrated_teacher_proba(model, X_test))
    assert after < before / 3, (before, after)
    if method == "temperature":
        assert model.teacher_calibrator_.temperature_ < 0.6  # sharpens


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_kd_calibration_lowers_a_tempered_teachers_ece(mixture, method):
    X_train, X_test, y_train, y_test = mixture
    model = KnowledgeDistiller(TemperedTeacher(LogisticRegression(), T=3.0), MLPStudent(**TINY),
                               teacher_calibration=method, teacher_calibration_cv=3,
                               random_state=0).fit(X_train, y_train)
    before, after = (ece(y_test, model.teacher_.predict_proba(X_test)),
                     ece(y_test, _calibrated_teacher_proba(model, X_test)))
    assert before > 0.15 and after < 0.05, (before, after)
    if method == "temperature":
        assert model.teacher_calibrator_.temperature_ == pytest.approx(1 / 3, rel=0.15)


def test_crossfit_student_learns_calibrated_probabilities(digits):
    X_train, X_test, y_train, y_test = digits
    student = MLPStudent(hidden_layer_sizes=(32,), max_epochs=40, lr=1e-2, random_state=0)
    teacher = RandomForestClassifier(n_estimators=30, max_depth=6)
    eces = {method: ece(y_test, CrossFitDistiller(teacher, student, n_folds=3,
                                                  teacher_calibration=method, random_state=0)
                        .fit(X_train, y_train).predict_proba(X_test))
            for method in [None, "temperature"]}
    assert eces["temperature"] < eces[None] / 2, eces


# -- the targets: exactly the calibrated probabilities -----------------------------------------
def test_crossfit_targets_are_the_calibrated_out_of_fold_probabilities(binary):
    X, y = binary
    for method in ["temperature", "isotonic"]:
        model = CrossFitDistiller(TemperedTeacher(LogisticRegression(), T=3.0),
                                  DecisionTreeRegressor(), n_folds=3, teacher_calibration=method,
                                  random_state=0).fit(X, y)
        cal = model.teacher_calibrator_
        fitted = (TemperatureCalibrator() if method == "temperature" else IsotonicCalibrator()
                  ).fit(model.oof_proba_, y)
        np.testing.assert_allclose(cal.transform(model.oof_proba_),
                                   fitted.transform(model.oof_proba_))
        calibrated = (apply_temperature(model.oof_proba_, cal.temperature_)
                      if method == "temperature" else cal.transform(model.oof_proba_))
        # A full-depth tree reproduces its training targets (one column for binary y).
        np.testing.assert_allclose(model.student_.predict(X), calibrated[:, 1], atol=1e-6)
        assert np.abs(calibrated - model.oof_proba_).max() > 0.1  # the targets did change


def test_crossfit_calibrates_before_the_gamma_correction(binary):
    X, y = binary
    model = CrossFitDistiller(TemperedTeacher(LogisticRegression(), T=3.0),
                              DecisionTreeRegressor(), n_folds=3, gamma_alpha=0.05, loss="sel",
                              teacher_calibration="temperature", random_state=0).fit(X, y)
    calibrated = apply_temperature(model.oof_proba_, model.teacher_calibrator_.temperature_)
    expected = corrected_targets(np.eye(2)[y], calibrated, 0.05, "logp")[:, 1]
    np.testing.assert_allclose(model.student_.predict(X), expected, atol=1e-6)


def _spy_objective(monkeypatch):
    seen = []

    def spy(criterion, targets, **kwargs):
        seen.append(np.asarray(targets))
        return objective_cls(criterion, targets, **kwargs)

    objective_cls = kd_module._DistillationObjective
    monkeypatch.setattr(kd_module, "_DistillationObjective", spy)
    return seen


def test_kd_calibrates_then_softens_by_its_temperature(mixture, monkeypatch):
    X_train, _, y_train, _ = mixture
    seen = _spy_objective(monkeypatch)
    model = KnowledgeDistiller(TemperedTeacher(LogisticRegression(), T=3.0), MLPStudent(**TINY),
                               temperature=2.0, teacher_calibration="temperature",
                               teacher_calibration_cv=3, random_state=0).fit(X_train, y_train)
    T_cal = model.teacher_calibrator_.temperature_
    expected = soften(apply_temperature(model.teacher_.predict_proba(X_train), T_cal), 2.0)
    np.testing.assert_allclose(seen[0][:, 1:], expected, atol=1e-6)  # float32 targets
    assert np.array_equal(seen[0][:, 0], y_train)


def test_kd_fits_the_map_on_out_of_fold_probabilities():
    # A 1-NN teacher is certain and right on every training row: a map fitted on those
    # probabilities would sharpen without bound. On its out-of-fold ones it softens.
    X, y = make_classification(n_samples=200, n_features=5, flip_y=0.2, random_state=0)
    model = KnowledgeDistiller(KNeighborsClassifier(n_neighbors=1), MLPStudent(**TINY),
                               teacher_calibration="temperature", random_state=0).fit(X, y)
    folds = StratifiedKFold(5, shuffle=True, random_state=draw_seed(0)).split(X, y)
    oof = np.empty((len(y), 2))
    for train, test in folds:
        oof[test] = KNeighborsClassifier(n_neighbors=1).fit(X[train], y[train]).predict_proba(
            X[test])
    assert model.teacher_calibrator_.temperature_ == fit_temperature(oof, y)
    assert model.teacher_calibrator_.temperature_ > 5
    assert fit_temperature(model.teacher_.predict_proba(X), y) < 0.1  # sharpens


def test_kd_frozen_teacher_is_calibrated_on_its_own_probabilities(mixture):
    X_train, X_test, y_train, y_test = mixture
    teacher = TemperedTeacher(LogisticRegression(), T=3.0).fit(X_train, y_train)
    coef = teacher.base_.coef_.copy()
    model = KnowledgeDistiller(FrozenEstimator(teacher), MLPStudent(**TINY),
                               teacher_calibration="temperature").fit(X_test, y_test)
    np.testing.assert_array_equal(teacher.base_.coef_, coef)
    # (the distiller renormalises teacher rows, hence approx)
    assert model.teacher_calibrator_.temperature_ == pytest.approx(fit_temperature(
        teacher.predict_proba(X_test), y_test), rel=1e-6)


def test_sample_weight_reaches_the_calibration_map(binary):
    X, y = binary
    w = np.random.default_rng(1).uniform(0.0, 3.0, size=len(y))
    model = CrossFitDistiller(TemperedTeacher(LogisticRegression(), T=2.0),
                              DecisionTreeRegressor(), n_folds=3,
                              teacher_calibration="temperature", random_state=0)
    with pytest.warns(UserWarning, match="sample_weight"):  # TemperedTeacher.fit takes none
        model.fit(X, y, sample_weight=w)
    expected = TemperatureCalibrator().fit(model.oof_proba_, y, sample_weight=w)
    assert model.teacher_calibrator_.temperature_ == expected.temperature_
    assert expected.temperature_ != TemperatureCalibrator().fit(model.oof_proba_, y).temperature_
    kd = KnowledgeDistiller(LogisticRegression(), MLPStudent(**TINY),
                            teacher_calibration="isotonic", teacher_calibration_cv=3,
                            random_state=0).fit(X, y, sample_weight=w)
    assert len(kd.teacher_calibrator_.isotonic_) == 1


def test_kd_cross_fit_warns_once_for_a_teacher_without_weights(binary):
    X, y = binary
    w = np.random.default_rng(1).uniform(0.0, 3.0, size=len(y))
    model = KnowledgeDistiller(TemperedTeacher(LogisticRegression(), T=2.0), MLPStudent(**TINY),
                               teacher_calibration="temperature", teacher_calibration_cv=3,
                               random_state=0)
    with pytest.warns(UserWarning, match="sample_weight") as record:
        model.fit(X, y, sample_weight=w)
    assert sum("sample_weight" in str(r.message) for r in record) == 1


def test_calibrated_fits_are_reproducible(binary):
    X, y = binary
    params = dict(teacher=RandomForestClassifier(n_estimators=10), student=MLPStudent(**TINY),
                  teacher_calibration="isotonic", teacher_calibration_cv=3, random_state=3)
    a = KnowledgeDistiller(**params).fit(X, y)
    b = KnowledgeDistiller(**params).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_grid_search_over_teacher_calibration(binary):
    X, y = binary
    search = GridSearchCV(
        CrossFitDistiller(TemperedTeacher(LogisticRegression(), T=3.0),
                          RandomForestRegressor(n_estimators=5, random_state=0), n_folds=3,
                          random_state=0),
        {"teacher_calibration": [None, "temperature", "isotonic"]}, scoring="neg_log_loss",
        cv=2).fit(X, y)
    scores = dict(zip(search.cv_results_["param_teacher_calibration"],
                      search.cv_results_["mean_test_score"]))
    assert scores["temperature"] > scores[None]  # the tempered teacher is under-confident


# -- None: today's behaviour, bit for bit ------------------------------------------------------
def test_no_calibration_distils_the_raw_teacher_bit_for_bit(mixture):
    X, _, y, _ = mixture
    teacher = RandomForestClassifier(n_estimators=10, random_state=0)
    student = MLPStudent(**TINY)
    model = KnowledgeDistiller(teacher, student, temperature=2.0, alpha=0.5).fit(X, y)
    assert model.teacher_calibrator_ is None
    soft = soften(model.teacher_.predict_proba(X), 2.0)
    reference = clone(student)
    reference.fit_objective(X, y, Objective(DistillationLoss(2.0, 0.5, reduction="none"),
                                            np.column_stack([y, soft]).astype(np.float32),
                                            fields=("target",)))
    np.testing.assert_array_equal(model.predict_proba(X), reference.predict_proba(X))

    crossfit = CrossFitDistiller(teacher, DecisionTreeRegressor(random_state=0), n_folds=3,
                                 random_state=0).fit(X, y)
    assert crossfit.teacher_calibrator_ is None
    np.testing.assert_array_equal(crossfit.student_.predict(X),
                                  DecisionTreeRegressor(random_state=0).fit(
                                      X, crossfit.oof_proba_).predict(X))


# -- bad values --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [KnowledgeDistiller, CrossFitDistiller])
@pytest.mark.parametrize("value", ["platt", "Temperature", True, 1])
def test_bad_teacher_calibration_names_the_estimator_and_value(binary, cls, value):
    X, y = binary
    model = cls(LogisticRegression(), MLPStudent(**TINY), teacher_calibration=value)
    with pytest.raises(ValueError, match=rf"'teacher_calibration' parameter of {cls.__name__} "
                                         rf"must be a str among .*isotonic.*Got {value!r}"):
        model.fit(X, y)


def test_bad_teacher_calibration_cv(binary):
    X, y = binary
    with pytest.raises(ValueError, match="'teacher_calibration_cv' parameter of "
                                         "KnowledgeDistiller.*Got 1"):
        KnowledgeDistiller(LogisticRegression(), MLPStudent(**TINY), teacher_calibration="isotonic",
                           teacher_calibration_cv=1).fit(X, y)
    y_rare = y.copy()
    y_rare[:3] = 2  # a class with three rows
    with pytest.raises(ValueError, match=r"KnowledgeDistiller: parameter teacher_calibration_cv=5"
                                         r" is invalid; expected at most 3"):
        KnowledgeDistiller(LogisticRegression(), MLPStudent(**TINY),
                           teacher_calibration="temperature").fit(X, y_rare)
    # Unused without calibration: the default fit is unchanged.
    KnowledgeDistiller(LogisticRegression(), MLPStudent(**TINY)).fit(X, y_rare)


@pytest.mark.parametrize("floor", [-0.1, 0.5, "0.01", None])
def test_bad_isotonic_floor(floor):
    with pytest.raises(ValueError, match=rf"IsotonicCalibrator: parameter floor={floor!r}"):
        IsotonicCalibrator(floor=floor).fit([[0.2, 0.8], [0.6, 0.4]], [1, 0])


@pytest.mark.parametrize("weight, match", [([1.0, -1.0], "Negative"),
                                            ([0.0, 0.0], "non-zero"), ([1.0], "shape|length")])
def test_bad_calibration_weights_name_the_function(weight, match):
    P, y = [[0.2, 0.8], [0.6, 0.4]], [1, 0]
    with pytest.raises(ValueError, match=rf"fit_temperature: .*({match})"):
        fit_temperature(P, y, sample_weight=weight)
    with pytest.raises(ValueError, match=rf"IsotonicCalibrator: .*({match})"):
        IsotonicCalibrator().fit(P, y, sample_weight=weight)


def test_calibrator_refuses_other_columns_and_unfitted_use():
    cal = TemperatureCalibrator()
    with pytest.raises(NotFittedError):
        cal.transform([[0.5, 0.5]])
    cal.fit([[0.2, 0.8], [0.6, 0.4]], [1, 0])
    with pytest.raises(ValueError, match=r"TemperatureCalibrator: parameter proba=.*2 columns"):
        cal.transform([[0.2, 0.3, 0.5]])
    with pytest.raises(ValueError, match=r"TemperatureCalibrator: parameter proba="):
        cal.transform([[2.0, -1.0]])


# -- the teacher report --------------------------------------------------------------------------
def test_report_equals_the_metrics_functions(mixture):
    X_train, X_test, y_train, y_test = mixture
    names = np.array(["ant", "bee", "cat"])
    models = {"forest": RandomForestClassifier(n_estimators=20, random_state=0),
              "logistic": LogisticRegression()}
    for model in models.values():
        model.fit(X_train, names[y_train])
    report = teacher_report(models, X_test, names[y_test], X_train=X_train,
                            y_train=names[y_train], n_bins=10)
    assert list(report.index) == ["forest", "logistic"]
    assert list(report.columns) == [
        "accuracy", "nll", "brier", "ece", "confidence", "spiegelhalter_z", "spiegelhalter_p",
        "train_accuracy", "train_nll", "train_confidence", "confidence_gap", "nll_gap"]
    for name, model in models.items():
        row = report.loc[name]
        for X, y, prefix in [(X_test, names[y_test], ""), (X_train, names[y_train], "train_")]:
            P = model.predict_proba(X)
            assert row[prefix + "accuracy"] == accuracy_score(y, model.predict(X))
            assert row[prefix + "nll"] == nll(y, P)
            assert row[prefix + "confidence"] == P.max(axis=1).mean()
        P = model.predict_proba(X_test)
        assert row["brier"] == brier_score(names[y_test], P)
        assert row["ece"] == ece(names[y_test], P, n_bins=10)
        test = spiegelhalter_test(names[y_test], P)
        assert (row["spiegelhalter_z"], row["spiegelhalter_p"]) == (test.statistic, test.pvalue)
        assert row["confidence_gap"] == row["train_confidence"] - row["confidence"]
        assert row["nll_gap"] == row["nll"] - row["train_nll"]
    # A fully grown forest is far more confident on its training rows than on new ones.
    assert report.loc["forest", "confidence_gap"] > report.loc["logistic", "confidence_gap"]


def test_report_of_one_model_or_a_list(binary):
    X, y = binary
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    one = teacher_report(forest, X, y)
    assert list(one.index) == ["RandomForestClassifier"] and one.shape == (1, 7)
    listed = teacher_report([forest, LogisticRegression().fit(X, y), forest], X, y)
    assert list(listed.index) == ["RandomForestClassifier (1)", "LogisticRegression",
                                  "RandomForestClassifier (2)"]


def test_report_labels_missing_from_the_held_out_rows(mixture):
    X_train, X_test, y_train, y_test = mixture
    model = LogisticRegression().fit(X_train, y_train)
    keep = y_test != 2  # the model's classes_ name the columns
    report = teacher_report(model, X_test[keep], y_test[keep])
    assert report.loc["LogisticRegression", "nll"] == nll(
        y_test[keep], model.predict_proba(X_test[keep]), labels=[0, 1, 2])


def test_report_bad_arguments(binary):
    X, y = binary
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match=r"teacher_report: parameter y_train=None .*X_train"):
        teacher_report(model, X, y, X_train=X)
    with pytest.raises(ValueError, match=r"teacher_report: parameter n_bins=0"):
        teacher_report(model, X, y, n_bins=0)
    with pytest.raises(TypeError, match=r"teacher_report: parameter model=.*predict_proba"):
        teacher_report({"regressor": RandomForestRegressor(n_estimators=2).fit(X, y)}, X, y)
    with pytest.raises(ValueError, match=r"teacher_report: parameter model=\{\}"):
        teacher_report({}, X, y)
    with pytest.raises(NotFittedError):
        teacher_report(LogisticRegression(), X, y)


# -- Spiegelhalter's z -------------------------------------------------------------------------
def test_spiegelhalter_z_is_standard_normal_for_calibrated_probabilities():
    rng = np.random.default_rng(0)
    z = []
    for _ in range(400):
        P = rng.dirichlet(np.full(4, 0.7), size=300)
        y = (P.cumsum(axis=1) > rng.uniform(size=(300, 1))).argmax(axis=1)  # y ~ P
        z.append(spiegelhalter_test(y, P, labels=range(4)).statistic)
    z = np.array(z)
    assert abs(z.mean()) < 0.15 and 0.88 < z.std() < 1.12
    assert np.mean(np.abs(z) > 1.96) < 0.09  # about 5 % rejections at level 0.05


def test_spiegelhalter_z_detects_over_and_under_confidence():
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.full(3, 1.0), size=2000)
    y = (P.cumsum(axis=1) > rng.uniform(size=(2000, 1))).argmax(axis=1)
    over = spiegelhalter_test(y, apply_temperature(P, 0.5))
    under = spiegelhalter_test(y, apply_temperature(P, 3.0))
    assert over.statistic > 5 and over.pvalue < 1e-6
    assert under.statistic < -5 and under.pvalue < 1e-6


def test_spiegelhalter_binary_is_the_classical_formula():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.05, 0.95, size=50)
    y = rng.integers(0, 2, size=50)
    classical = np.sum((y - p) * (1 - 2 * p)) / np.sqrt(np.sum((1 - 2 * p) ** 2 * p * (1 - p)))
    assert spiegelhalter_test(y, p).statistic == pytest.approx(classical, rel=1e-12)
    assert spiegelhalter_test(y, np.column_stack([1 - p, p])).statistic == pytest.approx(
        classical, rel=1e-12)


def test_spiegelhalter_certain_predictions():
    right = spiegelhalter_test([0, 1], [[1.0, 0.0], [0.0, 1.0]])
    wrong = spiegelhalter_test([0, 1], [[0.0, 1.0], [0.0, 1.0]])
    assert (right.statistic, right.pvalue) == (0.0, 1.0)
    assert (wrong.statistic, wrong.pvalue) == (np.inf, 0.0)


# -- reliability diagrams ----------------------------------------------------------------------
@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plot_reliability_draws_a_curve_and_bars_per_model(plt, binary):
    X, y = binary
    models = {"logistic": LogisticRegression().fit(X, y),
              "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y),
              "tempered": TemperedTeacher(LogisticRegression(), T=3.0).fit(X, y)}
    fig = plot_reliability(models, X, y, n_bins=8)
    curves, histogram = fig.axes
    assert len(curves.lines) == 1 + 3  # the diagonal, then one curve per model
    assert len(histogram.patches) == 3 * 8
    legend = [t.get_text() for t in curves.get_legend().get_texts()]
    assert legend[1].startswith("logistic (ECE ") and legend[3].startswith("tempered")
    heights = np.array([p.get_height() for p in histogram.patches]).reshape(3, 8)
    np.testing.assert_allclose(heights.sum(axis=1), 1.0)
    # The curve of a model is its calibration bins.
    x, acc = curves.lines[1].get_data()
    assert np.all((0 <= acc) & (acc <= 1)) and np.all(np.diff(x) > 0)


def test_plot_reliability_on_given_axes_and_a_list(plt, binary):
    X, y = binary
    fig, axes = plt.subplots(2, 1)
    out = plot_reliability([LogisticRegression().fit(X, y)], X, y, n_bins=5, ax=axes)
    assert out is fig and len(axes[0].lines) == 2 and len(axes[1].patches) == 5
    with pytest.raises(TypeError, match=r"plot_reliability: parameter ax=.*pair"):
        plot_reliability(LogisticRegression().fit(X, y), X, y, ax=axes[0])
    with pytest.raises(TypeError, match=r"plot_reliability: parameter models=.*predict_proba"):
        plot_reliability([RandomForestRegressor(n_estimators=2).fit(X, y)], X, y)


def test_plot_reliability_without_matplotlib(binary, monkeypatch):
    X, y = binary
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="plot_reliability needs matplotlib"):
        plot_reliability(LogisticRegression().fit(X, y), X, y)


# -- ReliabilityDisplay ----------------------------------------------------------------------
def _low_probability_model(binary):
    """A logistic regression whose positive class is rare: most probabilities are small."""
    X, y = binary
    keep = (y == 0) | (np.arange(len(y)) % 4 == 0)
    return LogisticRegression().fit(X[keep], y[keep]), X[keep], y[keep]


def test_reliability_display_plots_the_positive_class_of_a_binary_problem(plt, binary):
    from skdistill.inspection import ReliabilityDisplay

    model, X, y = _low_probability_model(binary)
    p = model.predict_proba(X)[:, 1]
    assert np.mean(p < 0.5) > 0.6
    display = ReliabilityDisplay.from_estimator(model, X, y, n_bins=10)
    x, frac = display.line_.get_data()
    # the mean predicted probability of class 1 per bin, not the top label's (always >= .5)
    assert x.min() < 0.2 and x.max() > 0.5
    edges = np.linspace(0, 1, 11)
    which = np.digitize(p, edges[1:-1])
    filled = np.unique(which)
    np.testing.assert_allclose(x, [p[which == b].mean() for b in filled])
    np.testing.assert_allclose(frac, [y[which == b].mean() for b in filled])
    assert display.pos_label == 1 and display.ax_ is display.line_.axes
    assert display.figure_ is display.ax_.figure
    assert "positive class: 1" in display.ax_.get_xlabel()
    assert display.ax_.get_xlim() == (0, 1)
    # the wrapper draws the same curve
    fig = plot_reliability(model, X, y, n_bins=10)
    np.testing.assert_allclose(fig.axes[0].lines[1].get_xdata(), x)


def test_reliability_display_from_predictions_equals_from_estimator(plt, binary):
    from skdistill.inspection import ReliabilityDisplay

    X, y = binary
    y = np.where(y == 1, "yes", "no")
    model = LogisticRegression().fit(X, y)
    P = model.predict_proba(X)
    _, ax = plt.subplots()
    est = ReliabilityDisplay.from_estimator(model, X, y, n_bins=7, ax=ax)
    matrix = ReliabilityDisplay.from_predictions(y, P, labels=model.classes_, n_bins=7, ax=ax)
    column = ReliabilityDisplay.from_predictions(y, P[:, 1], n_bins=7, ax=ax)
    for other in (matrix, column):
        for key in ("prob_true", "prob_pred", "count", "edges"):
            np.testing.assert_array_equal(getattr(other, key), getattr(est, key))
        assert (other.ece, other.pos_label) == (est.ece, "yes")
    assert len(ax.lines) == 1 + 3  # one diagonal, three curves on the shared axes
    # pos_label: the other class's probability (of a 1-d y_prob: the probability given)
    no = ReliabilityDisplay.from_estimator(model, X, y, n_bins=7, pos_label="no")
    no_1d = ReliabilityDisplay.from_predictions(y, P[:, 0], pos_label="no", n_bins=7)
    np.testing.assert_allclose(1 - no.prob_pred[::-1], est.prob_pred, atol=1e-12)
    np.testing.assert_array_equal(no.count[::-1], est.count)
    np.testing.assert_array_equal(no_1d.prob_pred, no.prob_pred)
    assert no.ece == est.ece


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_display_shows_the_metrics_ece(plt, binary, mixture, strategy):
    from skdistill.inspection import ReliabilityDisplay

    X, y = binary
    models = [(LogisticRegression().fit(X, y), X, y),
              (RandomForestClassifier(5, random_state=0).fit(*mixture[::2]), mixture[1],
               mixture[3])]
    for model, X_test, y_test in models:
        display = ReliabilityDisplay.from_estimator(model, X_test, y_test, n_bins=9,
                                                    strategy=strategy, name="m")
        expected = ece(y_test, model.predict_proba(X_test), n_bins=9)
        assert display.ece == expected
        assert display.line_.get_label() == f"m (ECE {expected:.3f})"
        assert display.count.sum() == len(y_test)
        if strategy == "quantile" and model is models[0][0]:  # distinct values: equal counts
            assert display.count.max() - display.count.min() <= 1


def test_reliability_display_top_label_for_more_classes(plt, mixture):
    from skdistill.inspection import ReliabilityDisplay
    from skdistill.metrics import calibration_bins

    X_train, X_test, y_train, y_test = mixture
    model = LogisticRegression().fit(X_train, y_train)
    _, (ax, hist_ax) = plt.subplots(1, 2)
    display = ReliabilityDisplay.from_estimator(model, X_test, y_test, n_bins=10, ax=ax,
                                                hist_ax=hist_ax, hist_slot=(1, 2))
    bins = calibration_bins(y_test, model.predict_proba(X_test), n_bins=10)
    for key, ours in (("accuracy", "prob_true"), ("confidence", "prob_pred"),
                      ("count", "count"), ("edges", "edges")):
        np.testing.assert_array_equal(getattr(display, ours), getattr(bins, key))
    assert display.pos_label is None and display.ax_.get_ylabel() == "accuracy"
    assert len(display.bars_) == 10 and display.bars_[0].get_x() == pytest.approx(0.05)
    # one class against the rest
    one = ReliabilityDisplay.from_estimator(model, X_test, y_test, n_bins=10, pos_label=2)
    assert one.line_.get_xdata().min() < 0.1
    assert plot_reliability(model, X_test, y_test, n_bins=10).axes[1].get_title() == \
        "Confidence histogram"


def test_reliability_display_errors_name_the_function_and_the_argument(plt, binary, mixture):
    from skdistill.inspection import ReliabilityDisplay

    X, y = binary
    model = LogisticRegression().fit(X, y)
    P = model.predict_proba(X)
    with pytest.raises(ValueError, match=r"ReliabilityDisplay.from_estimator: parameter "
                                         r"y='<array of 299 labels>' is invalid; expected one "
                                         r"label per row of X \(300 rows\)"):
        ReliabilityDisplay.from_estimator(model, X, y[1:])
    with pytest.raises(ValueError, match=r"ReliabilityDisplay.from_predictions: parameter "
                                         r"labels=None is invalid; expected the label of each "
                                         r"of y_prob's 2 columns"):
        ReliabilityDisplay.from_predictions(y, P)
    with pytest.raises(ValueError, match=r"from_predictions: parameter y_prob=.*one row per"):
        ReliabilityDisplay.from_predictions(y[1:], P[:, 1])
    with pytest.raises(ValueError, match=r"from_predictions: parameter pos_label=3 .*one of "
                                         r"the classes \[0, 1\]"):
        ReliabilityDisplay.from_predictions(y, P, labels=[0, 1], pos_label=3)
    with pytest.raises(ValueError, match=r"from_estimator: parameter strategy='equal'"):
        ReliabilityDisplay.from_estimator(model, X, y, strategy="equal")
    with pytest.raises(ValueError, match=r"from_estimator: parameter n_bins=0"):
        ReliabilityDisplay.from_estimator(model, X, y, n_bins=0)
    with pytest.raises(TypeError, match=r"from_estimator: parameter estimator=.*predict_proba"):
        ReliabilityDisplay.from_estimator(RandomForestRegressor(2).fit(X, y), X, y)
    with pytest.raises(TypeError, match=r"from_estimator: parameter hist_ax=1 "):
        ReliabilityDisplay.from_estimator(model, X, y, hist_ax=1)
    with pytest.raises(ValueError, match=r"from_predictions: parameter hist_slot=\(2, 2\)"):
        ReliabilityDisplay.from_predictions(y, P[:, 1], hist_slot=(2, 2))
    # a 1-d y_prob is one class of two
    X3, y3 = mixture[1], mixture[3]
    with pytest.raises(ValueError, match=r"from_predictions: parameter y_true=.*3 distinct"):
        ReliabilityDisplay.from_predictions(y3, np.full(len(y3), 0.5))


def test_plot_reliability_draws_the_positive_class_of_a_binary_problem(plt, binary):
    model, X, y = _low_probability_model(binary)
    fig = plot_reliability({"rare positives": model}, X, y, n_bins=10)
    x = fig.axes[0].lines[1].get_xdata()
    assert x.min() < 0.2  # the top label's confidence is never below 0.5
    assert fig.axes[1].get_title() == "Histogram of predicted probabilities"
