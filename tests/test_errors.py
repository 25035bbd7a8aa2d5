"""Bad input, across every estimator: a clear error naming the estimator, parameter and value.

Each case is a class of mistakes users make (sparse X, a regression target, an unavailable
device ...); every estimator kind must refuse it with its own name in the message, never with a
torch or scikit-learn message that names nobody, and never with silently wrong numbers.
"""
import inspect
import time
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin, clone  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError, Interval  # noqa: E402

from skdistill import (CrossFitDistiller, DeepEnsembleTeacher, EnsembleDistiller,  # noqa: E402
                       GPEDDistiller, KnowledgeDistiller, LaplaceTeacher, LatentBEStudent,
                       MLPStudent, SGLDTeacher, VITeacher)
from skdistill._testing import fast_instance  # noqa: E402
from skdistill.discovery import all_estimators  # noqa: E402
from skdistill.engine import divergence_error  # noqa: E402
from skdistill.inspection import plot_reliability, teacher_report  # noqa: E402
from skdistill.model_selection import pareto_front, plot_pareto  # noqa: E402
from skdistill.samplers import PolynomialDecay  # noqa: E402

TINY = dict(hidden_layer_sizes=(4,), max_epochs=2)
# for every estimator, by parameter name (skdistill._testing.fast_instance): tiny chains too
TINY_ANY = dict(TINY, n_iter=30, burn_in=10, thinning=5, n_samples=4)
ESTIMATORS = dict(all_estimators())
NAMES = list(ESTIMATORS)
# Where a parameter goes that an estimator does not have itself: to the network it trains.
TRAINED = ("student", "base_estimator", "estimator")


def _sgld(**kw):
    return SGLDTeacher(hidden_layer_sizes=(4,), n_iter=30, burn_in=10, thinning=5, **kw)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    return X, y


def _where(estimator, param):
    """``(path, owner)`` of ``param``: the estimator's own parameter, else that of the network
    it trains (its student, base estimator ...); ``owner`` is the class errors about it name.
    ``(None, None)`` if neither has it."""
    own = estimator.get_params(deep=False)
    if param in own:
        return param, type(estimator).__name__
    for role in TRAINED:
        if isinstance(own.get(role), BaseEstimator) and param in own[role].get_params():
            return f"{role}__{param}", type(own[role]).__name__
    return None, None


def _make(name, **params):
    """The tiny instance of estimator ``name``, with ``params`` set where :func:`_where` puts
    them."""
    estimator = fast_instance(ESTIMATORS[name], **TINY_ANY)
    for param, value in params.items():
        path, _ = _where(estimator, param)
        assert path, f"{name} has no parameter {param}, nor has the network it trains"
        estimator.set_params(**{path: value})
    return estimator


def _having(param):
    """Names of the estimators that have ``param``, themselves or in the network they train."""
    return [name for name in NAMES if _where(_make(name), param)[0]]


def test_every_estimator_has_a_device_to_check():
    # the device tests below cover every estimator: each has a device, its own or that of the
    # network it trains
    assert _having("device") == NAMES


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", ["continuous", "mixed", "nan", "2d", "float32", "X-nan",
                                  "X-inf"])
def test_bad_data_is_refused_by_name(name, case, data):
    X, y = data
    bad_X = {"X-nan": np.nan, "X-inf": np.inf}.get(case)
    if bad_X is not None:
        X = X.copy()
        X[5, 3] = bad_X
    bad = {
        "continuous": (X, np.linspace(0, 1, len(y)), ValueError, "continuous.*classifier"),
        "mixed": (X, np.array([1, "a"] * 30, dtype=object), TypeError,
                  "mixing strings and numbers"),
        "nan": (X, np.where(np.arange(60) == 3, np.nan, y.astype(float)), ValueError, "NaN"),
        "2d": (X, np.column_stack([y, y]), ValueError, "1d array"),
        "float32": (X * 1e300, y, ValueError, "float32's range"),
        "X-nan": (X, y, ValueError, "NaN"),
        "X-inf": (X, y, ValueError, "infinity"),
    }[case]
    X_bad, y_bad, error, message = bad
    estimator = _make(name)
    with pytest.raises(error, match=message) as info:
        estimator.fit(X_bad, y_bad)
    assert str(info.value).startswith(type(estimator).__name__), str(info.value)


class _FitCounter(ClassifierMixin, BaseEstimator):
    """A teacher that counts its fits (class attribute, survives cloning)."""

    fits = 0

    def fit(self, X, y):
        type(self).fits += 1
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def _counting(teacher):
    """A teacher like ``teacher`` whose fits :class:`_FitCounter` counts (an ensemble's
    members are counters), or None for a teacher whose chain runs inside the distiller's fit."""
    if "base_estimator" in teacher.get_params():
        return clone(teacher).set_params(base_estimator=_FitCounter())
    return None if hasattr(teacher, "iter_samples") else _FitCounter()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("device", ["cuda", "mps", "gpu", "foo"])
def test_unavailable_device_is_refused_before_any_fit(name, device, data):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    X, y = data
    estimator = _make(name, device=device)
    owner = _where(estimator, "device")[1]
    teacher = estimator.get_params().get("teacher")
    if teacher is not None and _counting(teacher) is not None:
        estimator.set_params(teacher=_counting(teacher))
    _FitCounter.fits = 0
    with pytest.raises(ValueError, match=rf"^{owner}: parameter device='{device}' is invalid"):
        estimator.fit(X, y)
    assert _FitCounter.fits == 0, "the teacher was fitted before the student's device was checked"


@pytest.mark.parametrize("name", _having("callbacks"))
def test_callbacks_that_are_not_callbacks_are_refused(name, data):
    X, y = data
    estimator = _make(name, callbacks=[3])
    owner = _where(estimator, "callbacks")[1]
    with pytest.raises(TypeError, match=rf"^{owner}: parameter callbacks=\[3\] is invalid"):
        estimator.fit(X, y)


# Where no validation split can apply, the error says why instead of how large it may be.
NO_VALIDATION_SPLIT = {
    "GPEDDistiller": r"(?s)^GPEDDistiller: parameter student=.* a student with "
                     r"validation_fraction=None: GPED's targets are running posterior estimates",
}


# Where the student learns from fewer of the 6 rows: (its rows, the largest fraction).
# RankingDistiller holds out a row of each class for its calibration map.
STUDENT_ROWS = {"RankingDistiller": (4, "0.75")}


@pytest.mark.parametrize("name", _having("validation_fraction"))
def test_validation_fraction_too_large_for_the_data(name, data):
    X, y = data
    estimator = _make(name, validation_fraction=0.9)
    owner = _where(estimator, "validation_fraction")[1]
    teacher = estimator.get_params().get("teacher")
    if teacher is not None and _counting(teacher) is not None:
        estimator.set_params(teacher=_counting(teacher))
    _FitCounter.fits = 0
    rows, most = STUDENT_ROWS.get(name, (6, "0.833"))
    message = NO_VALIDATION_SPLIT.get(name, rf"^{owner}: parameter validation_fraction=0.9 is "
                                            rf"invalid; .*{rows} rows.*at most {most}")
    with pytest.raises(ValueError, match=message):
        estimator.fit(X[:6], y[:6])
    assert _FitCounter.fits == 0, "checked before the teacher is fitted"


@pytest.mark.parametrize("name", _having("n_jobs"))
def test_n_jobs_zero_is_refused_by_name(name, data):
    X, y = data
    estimator = _make(name, n_jobs=0)
    owner = _where(estimator, "n_jobs")[1]
    with pytest.raises(InvalidParameterError, match=f"'n_jobs' parameter of {owner}"):
        estimator.fit(X, y)


# -- training that diverges ------------------------------------------------------------------

@pytest.mark.parametrize("name", _having("lr"))
def test_diverging_training_raises_naming_lr(name):
    # Digit-like images: the CNN needs a square input; a huge rate overflows every network.
    X, y = make_classification(n_samples=80, n_features=64, random_state=0)
    estimator = _make(name, lr=1e12, random_state=0)
    if _where(estimator, "optimizer")[0]:  # Adam's steps are bounded: a small MLP may survive
        estimator.set_params(**{_where(estimator, "optimizer")[0]: "sgd"})
    try:
        estimator.fit(X, y)
    except ValueError as exc:
        assert "training diverged" in str(exc) and "lr=1e+12" in str(exc), str(exc)
        assert "try lr=0.001" in str(exc)
        assert str(exc).startswith(_where(estimator, "lr")[1]), str(exc)
        return
    # If a run happens not to diverge, it must at least not return garbage.
    assert np.isfinite(estimator.predict_proba(X)).all()
    pytest.fail(f"{name} trained with lr=1e12 without diverging")


def test_divergence_hint_puts_the_likelier_cause_first():
    student = MLPStudent(lr=1e12)
    scaled = str(divergence_error(student, "the loss became nan", 1e12, 3.0))
    assert scaled.index("lr=1e+12") < scaled.index("badly scaled")
    unscaled = str(divergence_error(student, "the loss became nan", 1e-3, 1e30))
    assert unscaled.index("max |X| = 1e+30") < unscaled.index("lr=0.001")
    assert unscaled.startswith("MLPStudent: training diverged: the loss became nan")


# -- teacher probabilities, checked in one place ------------------------------------------------

class _BadTeacher(ClassifierMixin, BaseEstimator):
    """A teacher whose predict_proba returns ``kind`` of wrong values."""

    def __init__(self, kind="scores"):
        self.kind = kind

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        n, c = len(X), len(self.classes_)
        P = np.full((n, c), 1.0 / c)
        if self.kind == "scores":
            return P * 3  # rows sum to 3: scores, not probabilities
        if self.kind == "negative":
            P[:, 0], P[:, 1] = -0.5, 1.5
            return P
        if self.kind == "nan":
            P[0, 0] = np.nan
            return P
        if self.kind == "shape":
            return P[:, :1]
        if self.kind == "drift":
            return P * (1 + 1e-6)
        raise AssertionError(self.kind)


@pytest.mark.parametrize("kind, message", [
    ("scores", "sums to 3"), ("negative", "non-negative"), ("nan", "NaN"),
    ("shape", r"shape \(\d+, 1\); expected \(n_samples, 2\)"),
])
@pytest.mark.parametrize("make", [
    lambda t: KnowledgeDistiller(t, MLPStudent(**TINY)),
    lambda t: CrossFitDistiller(t, MLPStudent(**TINY), n_folds=2),
    lambda t: EnsembleDistiller(DeepEnsembleTeacher(t, n_members=2), MLPStudent(**TINY),
                                method="kd"),
], ids=["KnowledgeDistiller", "CrossFitDistiller", "EnsembleDistiller"])
def test_teacher_probabilities_that_are_not_probabilities_are_refused(make, kind, message,
                                                                       data):
    X, y = data
    estimator = make(_BadTeacher(kind))
    with pytest.raises(ValueError, match=message) as info:
        estimator.fit(X, y)
    assert "_BadTeacher" in str(info.value)


def test_tiny_drift_in_teacher_probabilities_is_renormalised(data):
    X, y = data
    model = KnowledgeDistiller(_BadTeacher("drift"), MLPStudent(**TINY, random_state=0))
    P = model.fit(X, y)._teacher_proba(model.teacher_, X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)


def test_teacher_that_misses_a_class_of_y_warns(data):
    from sklearn.frozen import FrozenEstimator

    X, y = data
    y3 = np.where(np.arange(len(y)) % 10 == 0, 2, y)
    teacher = RandomForestClassifier(5, random_state=0).fit(X, y)  # classes 0, 1 only
    with pytest.warns(UserWarning, match=r"KnowledgeDistiller: the teacher FrozenEstimator gives "
                                         r"no probability to classes \[2\] of y"):
        KnowledgeDistiller(FrozenEstimator(teacher), MLPStudent(**TINY)).fit(X, y3)


def test_teacher_classes_that_y_lacks_are_dropped_and_rows_renormalised(data):
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    X, y = data
    y3 = np.where(np.arange(len(y)) % 3 == 0, 2, y)
    teacher = FrozenEstimator(LogisticRegression().fit(X, y3))  # knows class 2; y will not
    model = KnowledgeDistiller(teacher, MLPStudent(**TINY, random_state=0))
    with pytest.warns(UserWarning, match=r"fitted on classes \[2\] that y lacks; their "
                                         r"probability is dropped and each row renormalised"):
        model.fit(X, y)
    P = model._teacher_proba(model.teacher_, X)
    full = teacher.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_allclose(P, full[:, :2] / full[:, :2].sum(axis=1, keepdims=True))
    ensemble = DeepEnsembleTeacher(teacher, n_members=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ensemble.fit(X, y)
    assert len([w for w in caught if "y lacks" in str(w.message)]) == 1  # once, not per member
    np.testing.assert_allclose(ensemble.predict_proba(X).sum(axis=1), 1.0)


def test_fold_teacher_that_misses_a_class_warns_once(data):
    X, y = data
    y3 = y.copy()
    y3[:3] = 2  # 3 rows of class 2, all in one unstratified fold (random_state=23): the
    # teacher fitted on the other folds never sees class 2
    model = CrossFitDistiller(RandomForestClassifier(5, random_state=0), MLPStudent(**TINY),
                              n_folds=3, stratify=False, random_state=23)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y3)
    missing = [w for w in caught if "fold teachers gives no probability to classes [2]"
               in str(w.message)]
    assert len(missing) == 1
    assert (model.oof_proba_[:3, 2] == 0).any()


def test_gped_student_that_diverges_is_named_with_its_lr(data):
    X, y = data
    model = GPEDDistiller(_sgld(step_size=1e-3),
                          MLPStudent(hidden_layer_sizes=(8,), lr=1e12, optimizer="sgd"),
                          n_iter=600, burn_in=10, thinning=1, random_state=0)
    with pytest.raises(ValueError, match=r"^MLPStudent: training diverged: .*loss "
                                         r"became nan at epoch \d+, batch \d+.*lr=1e\+12"):
        model.fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_prediction_on_data_beyond_float32_nan_or_inf_is_refused_by_name(name, data):
    X, y = data
    estimator = _make(name, random_state=0)
    start = time.perf_counter()
    estimator.fit(X, y)
    # an estimator with a slow parameter that skdistill._testing does not make small (a tiny
    # fit takes well under a second)
    assert time.perf_counter() - start < 30, (
        f"{name}'s tiny instance fits slowly: give its slow parameters small values in "
        f"skdistill/_testing.py (FAST_PARAMS or PER_CLASS)")
    X_nan, X_inf = X.copy(), X.copy()
    X_nan[5, 3], X_inf[5, 3] = np.nan, np.inf
    for X_bad, message in [(X * 1e300, "float32's range"), (X_nan, "NaN"),
                           (X_inf, "infinity")]:
        with pytest.raises(ValueError, match=message) as info:
            estimator.predict_proba(X_bad)
        assert str(info.value).startswith(type(estimator).__name__), str(info.value)


def test_unlabeled_data_beyond_float32_is_named(data):
    X, y = data
    model = _make("GPEDDistiller")
    with pytest.raises(ValueError, match=r"^GPEDDistiller: parameter X_unlabeled="):
        model.fit(X, y, X_unlabeled=X * 1e300)


def test_missing_string_label_is_named_as_missing(data):
    X, y = data
    labels = np.array(["a", "b"] * 30, dtype=object)
    labels[4] = None
    with pytest.raises(ValueError, match=r"^MLPStudent: parameter y='<array with NaN or None at "
                                         r"row 4>'.*without missing values"):
        MLPStudent(**TINY).fit(X, labels)


# -- errors name the argument that is wrong, not the one it is passed on as ----------------------

def _runs(**columns):
    """Four searched settings; ``columns`` replace some."""
    runs = pd.DataFrame({"flops": [10, 20, 30, 25], "accuracy": [.8, .9, .95, .85],
                         "width": [1, 2, 3, 4]}, index=list("abcd"))
    return runs.assign(**columns)


def _pareto_front(runs):
    return pareto_front(runs, "flops", "accuracy")


def _plot_pareto(runs=None, **kwargs):
    try:
        return plot_pareto(_runs() if runs is None else runs, "flops", "accuracy", **kwargs)
    finally:
        plt.close("all")


def _plot_reliability(X, y, y_bad):
    try:
        return plot_reliability(LogisticRegression().fit(X, y), X, y_bad)
    finally:
        plt.close("all")


def _to_onnx(target_opset):
    from skdistill.onnx import to_onnx  # imports skl2onnx and onnx: only where it is needed

    return to_onnx(MLPStudent(), np.zeros((2, 4)), target_opset=target_opset)


def _laplace_of_frozen_latent_be(X, y):
    fitted = LatentBEStudent(n_members=2, hidden_layer_sizes=(4,), max_epochs=1).fit(X, y)
    return LaplaceTeacher(FrozenEstimator(fitted)).fit(X, y)


X3 = np.zeros((5, 4, 2))  # beside an X of 4 features: scikit-learn's check sees 4 "features"

# id -> (call on (X, y), error, regular expression the message must match)
MISNAMED = {
    "kd-3d-X_unlabeled": (
        lambda X, y: KnowledgeDistiller(LogisticRegression(), MLPStudent(**TINY)).fit(
            X, y, X_unlabeled=X3),
        ValueError, r"^KnowledgeDistiller: parameter X_unlabeled='<array of shape \(5, 4, 2\)>'"
                    r" is invalid; expected rows shaped as those of X: shape \(n_unlabeled, 4\)"),
    "crossfit-3d-X_unlabeled": (
        lambda X, y: CrossFitDistiller(LogisticRegression(), MLPStudent(**TINY), n_folds=2).fit(
            X, y, X_unlabeled=X3),
        ValueError, r"^CrossFitDistiller: parameter X_unlabeled='<array of shape \(5, 4, 2\)>'"),
    "gped-3d-X_unlabeled": (
        lambda X, y: _make("GPEDDistiller").fit(X, y, X_unlabeled=X3),
        ValueError, r"^GPEDDistiller: parameter X_unlabeled='<array of shape \(5, 4, 2\)>'"),
    "teacher_report-y_train-length": (
        lambda X, y: teacher_report(LogisticRegression().fit(X, y), X, y, X_train=X,
                                    y_train=y[:-3]),
        ValueError, r"^teacher_report: parameter y_train='<array of 57 labels>' is invalid; "
                    r"expected one label per row of X_train \(60 rows\)"),
    "teacher_report-y_train-label": (
        lambda X, y: teacher_report(LogisticRegression().fit(X, y), X, y, X_train=X,
                                    y_train=y + 5),
        ValueError, r"^teacher_report: parameter y_train='<array with label \d>'"),
    "plot_reliability-y-length": (
        lambda X, y: _plot_reliability(X, y, y[:-2]),
        ValueError, r"^plot_reliability: parameter y='<array of 58 labels>' is invalid; "
                    r"expected one label per row of X \(60 rows\)"),
    "plot_reliability-y-2d": (
        lambda X, y: _plot_reliability(X, y, np.column_stack([y, y])),
        ValueError, r"^plot_reliability: parameter y='<array of shape \(60, 2\)>'"),
    "plot_reliability-y-label": (
        lambda X, y: _plot_reliability(X, y, y + 3),
        ValueError, r"^plot_reliability: parameter y='<array with label \d>'.*labels among "
                    r"\[0, 1\]"),
    "plot_pareto-ax": (
        lambda X, y: _plot_pareto(ax="abc"),
        TypeError, r"^plot_pareto: parameter ax='abc' is invalid; expected None or a "
                   r"matplotlib Axes"),
    "plot_pareto-annotate": (
        lambda X, y: _plot_pareto(annotate="depth"),
        ValueError, r"^plot_pareto: parameter annotate='depth' is invalid; .*column of the "
                    r"results: \['flops', 'accuracy', 'width'\]"),
    "plot_pareto-color": (
        lambda X, y: _plot_pareto(color="notacolour"),
        ValueError, r"^plot_pareto: parameter color='notacolour' is invalid; expected None or a "
                    r"matplotlib colour"),
    "plot_pareto-cost-0-on-log-axis": (
        lambda X, y: _plot_pareto(_runs(flops=[0, 20, 30, 25])),
        ValueError, r"^plot_pareto: parameter cost='flops' is invalid; expected positive costs "
                    r"on the logarithmic cost axis, but row 'a' costs 0; pass logx=False"),
    "plot_pareto-negative-cost-on-log-axis": (
        lambda X, y: _plot_pareto(_runs(flops=[10, -2, 30, 25])),
        ValueError, r"^plot_pareto: parameter cost='flops' .*row 'b' costs -2"),
    "pareto_front-all-nan-score": (
        lambda X, y: _pareto_front(_runs(accuracy=np.nan)),
        ValueError, r"^pareto_front: parameter score='accuracy' is invalid; expected a finite "
                    r"value .*did every fit fail"),
    "pareto_front-non-numeric-cost": (
        lambda X, y: _pareto_front(_runs(flops=[10, "20 MFLOPs", 30, 25])),
        ValueError, r"^pareto_front: parameter cost='flops' is invalid; expected a numeric "
                    r"column; 'flops' holds '20 MFLOPs' at row 'b'"),
    "to_onnx-target_opset-str": (
        lambda X, y: _to_onnx("abc"), TypeError,
        r"^to_onnx: parameter target_opset='abc' is invalid; expected None, an int from 1 to"),
    "to_onnx-target_opset-0": (
        lambda X, y: _to_onnx(0), ValueError, r"^to_onnx: parameter target_opset=0 is invalid"),
    "to_onnx-target_opset-no-main-domain": (
        lambda X, y: _to_onnx({"ai.onnx.ml": 3}), ValueError,
        r"^to_onnx: parameter target_opset=\{'ai.onnx.ml': 3\} is invalid; .*main domain ''"),
    "laplace-latent-be": (
        lambda X, y: LaplaceTeacher(LatentBEStudent(n_members=2, **TINY)).fit(X, y), TypeError,
        r"^LaplaceTeacher: parameter estimator=LatentBEStudent\(.*\) is invalid; expected an "
        r"MLPStudent or CNNStudent"),
    "laplace-frozen-latent-be": (
        _laplace_of_frozen_latent_be, TypeError,
        r"^LaplaceTeacher: parameter estimator=FrozenEstimator\(.*LatentBE student"),
    "vi-kl_annealing-beyond-max_epochs": (
        lambda X, y: VITeacher(hidden_layer_sizes=(4,), kl_annealing=3, max_epochs=2).fit(X, y),
        ValueError, r"^VITeacher: parameter kl_annealing=3 is invalid; expected at most "
                    r"max_epochs=2"),
}


@pytest.mark.parametrize("case", list(MISNAMED))
def test_errors_name_the_argument_that_is_wrong(case, data):
    call, error, message = MISNAMED[case]
    with pytest.raises(error, match=message):
        call(*data)


def test_failed_fits_are_left_out_of_the_front_but_a_non_number_is_refused():
    failed = dict(accuracy=[.8, np.nan, .95, .85], flops=[10, 20, None, 25])
    front = _pareto_front(_runs(**failed))
    assert list(front.index) == ["a", "d"]  # b's score and c's cost are missing: failed fits
    failed["flops"] = [10, 20, "n/a", 25]  # not a failed fit: a column that is not numbers
    with pytest.raises(ValueError, match=r"^pareto_front: parameter cost='flops' .*'flops' "
                                         r"holds 'n/a' at row 'c'"):
        _pareto_front(_runs(**failed))


def test_unlabeled_rows_are_checked_before_the_teacher_is_fitted(data):
    X, y = data
    _FitCounter.fits = 0
    with pytest.raises(ValueError, match="X_unlabeled"):
        KnowledgeDistiller(_FitCounter(), MLPStudent(**TINY)).fit(X, y, X_unlabeled=X3)
    assert _FitCounter.fits == 0


# -- a bool is not a number -----------------------------------------------------------------------

#: Parameters that take a bool as well as a number (scikit-learn's "verbose" constraint).
ACCEPT_BOOLS = {"verbose"}


def _numeric_parameters():
    """``(estimator class, parameter)`` for every public estimator's parameter with a number
    (not a bool) as default, or a numeric range among its constraints (defaults of None)."""
    cases = []
    for name, cls in all_estimators():
        constraints = getattr(cls, "_parameter_constraints", {})
        for param in inspect.signature(cls.__init__).parameters.values():
            default = param.default
            numeric_default = (isinstance(default, (int, float))
                               and not isinstance(default, bool))
            ranged = any(isinstance(c, Interval) for c in constraints.get(param.name, []))
            if (numeric_default or ranged) and param.name not in ACCEPT_BOOLS:
                cases.append(pytest.param(cls, param.name, id=f"{name}-{param.name}"))
    return cases


@pytest.mark.parametrize("cls, param", _numeric_parameters())
def test_every_numeric_parameter_refuses_a_bool(cls, param):
    # refused at the door: the data (wrong for a CNN) and the defaults' sizes never matter
    X, y = np.zeros((8, 4)), np.array([0, 1] * 4)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: parameter {param}=True is invalid;"
                                         r" expected .*, not a bool\."):
        cls(**{param: True}).fit(X, y)


@pytest.mark.parametrize("make, message", [
    (lambda: KnowledgeDistiller(_FitCounter(), MLPStudent(lr=True)),
     r"^MLPStudent: parameter lr=True"),
    (lambda: CrossFitDistiller(_FitCounter(), MLPStudent(hidden_layer_sizes=(4, True))),
     r"^MLPStudent: parameter hidden_layer_sizes=\(4, True\)"),
    (lambda: KnowledgeDistiller(_FitCounter(), MLPStudent(width_multiplier=[1.0, True])),
     r"^MLPStudent: parameter width_multiplier=\[1.0, True\]"),
    (lambda: EnsembleDistiller(DeepEnsembleTeacher(_FitCounter(), n_members=True)),
     r"^DeepEnsembleTeacher: parameter n_members=True"),
], ids=["student-lr", "layer-size", "width-multiplier", "nested-teacher"])
def test_a_nested_bool_is_refused_before_the_teacher_is_fitted(make, message, data):
    _FitCounter.fits = 0
    with pytest.raises(ValueError, match=message):
        make().fit(*data)
    assert _FitCounter.fits == 0


def test_bools_are_refused_by_the_numeric_checks_outside_fit(data):
    with pytest.raises(ValueError, match=r"^PolynomialDecay: parameter a=True"):
        PolynomialDecay(a=True)
    teacher = LaplaceTeacher(MLPStudent(**TINY)).fit(*data)
    with pytest.raises(ValueError, match=r"^LaplaceTeacher: parameter prior_precision=True"):
        teacher.log_marginal_likelihood(prior_precision=True)
