"""Uncertainty metrics: ECE, NLL, Brier, entropy, calibrated NLL/ECE and scorers for model search."""
import numpy as np
from scipy.special import entr
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from ._validation import param_error
from .calibration import _encode, apply_temperature, fit_temperature

# Rows of a probability matrix may miss 1 by float32 rounding (a torch softmax); beyond this
# the input is not probabilities.
_SUM_ATOL = 1e-5


def _check_proba(func, y_true, y_prob, labels, y_name="y_true", proba_name="y_prob"):
    """Validate ``(y_true, y_prob)``; return column indices of y_true, (n, C) probabilities,
    classes.

    Errors name ``y_name`` and ``proba_name``, the arguments of ``func`` they come from (a
    caller that predicts ``y_prob`` itself names what it predicted from).
    """
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise param_error(func, y_name, f"<array of shape {y_true.shape}>",
                          "a 1-d array of labels")
    try:
        P = np.asarray(y_prob, dtype=np.float64)
    except (TypeError, ValueError):
        raise param_error(func, proba_name, y_prob, "a numeric array", TypeError) from None
    if P.ndim not in (1, 2) or (P.ndim == 2 and P.shape[1] < 2):
        raise param_error(func, proba_name, f"<array of shape {P.shape}>",
                          "shape (n_samples, n_classes) with n_classes >= 2, or (n_samples,)")
    if len(P) != len(y_true):
        raise param_error(func, proba_name, f"<array of {len(P)} rows>",
                          f"one row per label in {y_name} ({len(y_true)})")
    if len(P) == 0:
        raise param_error(func, y_name, "<empty array>", "at least one sample")
    if not np.isfinite(P).all():
        raise param_error(func, proba_name, "<array with NaN or inf>", "finite probabilities")
    if P.min() < 0 or P.max() > 1:
        raise param_error(func, proba_name,
                          f"<array with range [{P.min():.6g}, {P.max():.6g}]>",
                          "probabilities in [0, 1]")
    if P.ndim == 1:
        P = np.column_stack([1.0 - P, P])
    sums = P.sum(axis=1)
    bad = np.abs(sums - 1.0) > _SUM_ATOL
    if bad.any():
        i = int(np.argmax(bad))
        raise param_error(func, proba_name, f"<array whose row {i} sums to {sums[i]:.6g}>",
                          f"rows that sum to 1 (within {_SUM_ATOL})")
    classes = np.unique(y_true) if labels is None else np.asarray(labels)
    idx = _encode(func, y_true, classes if labels is not None else None, P.shape[1], y_name)
    return idx, P / sums[:, None], classes


def calibration_bins(y_true, y_prob, *, n_bins=15, labels=None):
    """Per-bin counts, accuracy and mean confidence of the top-label prediction.

    The confidence of a sample is its largest probability ``max_k p_k``. Bin edges are
    ``numpy.linspace(0, 1, n_bins + 1)``; bin ``b`` holds confidences in
    ``[edges[b], edges[b + 1])`` and the last bin also holds 1.0.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in ``labels`` order; a 1-d input is the probability
        of the second (larger) label of a binary problem, as in scikit-learn.
    n_bins : int, default=15
        Number of equal-width bins over [0, 1].
    labels : array-like of shape (n_classes,), default=None
        The label of each column. Default: the sorted unique values of ``y_true``, which must
        then contain every class; pass ``labels`` (e.g. ``estimator.classes_``) otherwise.

    Returns
    -------
    bins : :class:`~sklearn.utils.Bunch`
        ``edges`` (n_bins + 1,), ``count`` (n_bins,) number of samples per bin, ``accuracy``
        and ``confidence`` (n_bins,) the fraction of correct top-label predictions and the
        mean confidence in each bin (NaN for an empty bin) -- the data of a reliability diagram.

    Examples
    --------
    >>> from skdistill.metrics import calibration_bins
    >>> bins = calibration_bins([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=2)
    >>> bins.count.tolist(), bins.accuracy.tolist(), bins.confidence.tolist()
    ([0, 2], [nan, 0.5], [nan, 0.8])
    """
    return _calibration_bins("calibration_bins", y_true, y_prob, n_bins, labels)


def _check_n_bins(func, n_bins):
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise param_error(func, "n_bins", n_bins, "an integer >= 1")


def _calibration_bins(func, y_true, y_prob, n_bins, labels, **names):
    _check_n_bins(func, n_bins)
    idx, P, _ = _check_proba(func, y_true, y_prob, labels, **names)
    return _top_label_bins(idx, P, n_bins)


def _top_label_bins(idx, P, n_bins):
    """:func:`calibration_bins` of validated probabilities ``P`` and label indices ``idx``."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    count, accuracy, confidence = _bin_means(P.max(axis=1), P.argmax(axis=1) == idx, edges)
    return Bunch(edges=edges, count=count, accuracy=accuracy, confidence=confidence)


def _bin_means(x, hit, edges):
    """Per bin of ``edges``: the number of values of ``x``, the mean of ``hit`` and the mean
    of ``x`` (NaN for an empty bin). Interior edges only: a value equal to an edge opens the
    next bin; the last edge (1.0) lands in the last bin."""
    n_bins = len(edges) - 1
    which = np.digitize(x, edges[1:-1], right=False)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (count, np.bincount(which, weights=hit, minlength=n_bins) / count,
                np.bincount(which, weights=x, minlength=n_bins) / count)


def expected_calibration_error(y_true, y_prob, *, n_bins=15, labels=None):
    """Top-label expected calibration error over equal-width confidence bins.

    ``ECE = sum_b |B_b| / n * |acc_b - conf_b|``, with bins as in :func:`calibration_bins`:
    ``[0, 1/B), [1/B, 2/B), ..., [(B-1)/B, 1]``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities (see :func:`calibration_bins`).
    n_bins : int, default=15
        Number of equal-width bins.
    labels : array-like of shape (n_classes,), default=None
        The label of each column; needed when ``y_true`` misses a class.

    Returns
    -------
    ece : float
        In [0, 1]; 0 is perfectly calibrated.

    References
    ----------
    Naeini, Cooper, Hauskrecht. Obtaining Well Calibrated Probabilities Using Bayesian
    Binning. AAAI 2015.

    Guo, Pleiss, Sun, Weinberger. On Calibration of Modern Neural Networks. ICML 2017.

    Examples
    --------
    >>> from skdistill.metrics import expected_calibration_error
    >>> # one bin [0.5, 1]: accuracy 1/2, mean confidence 0.8 -> |0.5 - 0.8| = 0.3
    >>> round(expected_calibration_error([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=2), 6)
    0.3
    """
    return _ece(_calibration_bins("expected_calibration_error", y_true, y_prob, n_bins, labels))


def _ece(bins):
    """The expected calibration error of :func:`calibration_bins`'s ``bins``."""
    filled = bins.count > 0
    weights = bins.count[filled] / bins.count.sum()
    return float(np.sum(weights * np.abs(bins.accuracy[filled] - bins.confidence[filled])))


def negative_log_likelihood(y_true, y_prob, *, labels=None, eps=None):
    """Mean negative log-likelihood ``-1/n sum_i log p_{i, y_i}`` (natural log).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities (see :func:`calibration_bins`).
    labels : array-like of shape (n_classes,), default=None
        The label of each column; needed when ``y_true`` misses a class.
    eps : float, default=None
        Probabilities are clipped to ``[eps, 1 - eps]`` before the log. ``None`` uses
        :func:`sklearn.metrics.log_loss`, which clips at the float64 machine epsilon
        (so one sample costs at most about 36.04).

    Returns
    -------
    nll : float

    Examples
    --------
    >>> from skdistill.metrics import negative_log_likelihood
    >>> # -(log 0.5 + log 0.25) / 2 = 1.5 log 2
    >>> round(negative_log_likelihood([0, 1], [[0.5, 0.5], [0.75, 0.25]]), 6)
    1.039721
    """
    func = "negative_log_likelihood"
    if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (float, int, np.number))
                            or not 0 <= eps < 0.5):
        raise param_error(func, "eps", eps, "None or a number in [0, 0.5)")
    idx, P, classes = _check_proba(func, y_true, y_prob, labels)
    if eps is None:
        return float(log_loss(idx, P, labels=np.arange(len(classes))))
    p_true = np.clip(P[np.arange(len(P)), idx], eps, 1 - eps)
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(p_true)))


def brier_score(y_true, y_prob, *, labels=None):
    """Multiclass Brier score ``1/n sum_i sum_k (p_ik - [y_i = k])^2``, summed over classes.

    The sum over all classes (range [0, 2]) also for two classes, where it is twice the
    usual binary Brier score; it equals :func:`sklearn.metrics.brier_score_loss` with
    ``scale_by_half=False``, which computes it.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities (see :func:`calibration_bins`).
    labels : array-like of shape (n_classes,), default=None
        The label of each column; needed when ``y_true`` misses a class.

    Returns
    -------
    brier : float

    References
    ----------
    Brier. Verification of Forecasts Expressed in Terms of Probability. Monthly Weather
    Review, 1950.

    Examples
    --------
    >>> from skdistill.metrics import brier_score
    >>> # (0.7 - 1)^2 + 0.2^2 + 0.1^2 = 0.14
    >>> round(brier_score([0], [[0.7, 0.2, 0.1]], labels=[0, 1, 2]), 6)
    0.14
    """
    idx, P, classes = _check_proba("brier_score", y_true, y_prob, labels)
    return float(brier_score_loss(idx, P, labels=np.arange(len(classes)), scale_by_half=False))


def entropy(p, axis=-1):
    """Shannon entropy ``-sum_k p_k log p_k`` in nats, with ``0 log 0 = 0``.

    Parameters
    ----------
    p : array-like
        Probabilities, non-negative and summing to one along ``axis``.
    axis : int, default=-1
        The class axis.

    Returns
    -------
    h : ndarray
        ``p`` with ``axis`` removed.

    Examples
    --------
    >>> from skdistill.metrics import entropy
    >>> entropy([[0.5, 0.5], [1.0, 0.0]]).round(6)  # log 2, 0
    array([0.693147, 0.      ])
    """
    return _entropy("entropy", "p", p, axis)


def _entropy(func, name, p, axis):
    try:
        P = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise param_error(func, name, p, "a numeric array", TypeError) from None
    if P.ndim == 0:
        raise param_error(func, name, p, "an array with a class axis")
    if not np.isfinite(P).all():
        raise param_error(func, name, "<array with NaN or inf>", "finite probabilities")
    if (P < 0).any():
        raise param_error(func, name, f"<array with min {P.min():.6g}>", "non-negative probabilities")
    sums = P.sum(axis=axis)
    if np.any(np.abs(sums - 1.0) > _SUM_ATOL):
        raise param_error(func, name, "<array not summing to 1 along axis>",
                          f"probabilities summing to 1 along axis={axis} (within {_SUM_ATOL})")
    return entr(P).sum(axis=axis)


def _as_entropy(name, values):
    try:
        A = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise param_error("entropy_mae", name, values, "a numeric array", TypeError) from None
    if A.ndim == 2:
        return _entropy("entropy_mae", name, A, 1)
    if A.ndim == 1:
        if not np.isfinite(A).all() or (A < 0).any():
            raise param_error("entropy_mae", name, "<entropy vector with NaN, inf or < 0>",
                              "finite non-negative entropies")
        return A
    raise param_error("entropy_mae", name, f"<array of shape {A.shape}>",
                      "entropies (n_samples,) or probabilities (n_samples, n_classes)")


def entropy_mae(reference, other):
    """Mean absolute error between two per-sample predictive entropies.

    Parameters
    ----------
    reference : array-like of shape (n_samples,) or (n_samples, n_classes)
        The teacher's entropies, or its probabilities (then :func:`entropy` is taken per
        row). A 1-d input is always read as entropies, never as binary probabilities.
    other : array-like of shape (n_samples,) or (n_samples, n_classes)
        The student's entropies or probabilities, the same way.

    Returns
    -------
    mae : float
        ``1/n sum_i |H_ref,i - H_i|`` in nats.

    References
    ----------
    Vadera, Jalaian, Marlin. Generalized Bayesian Posterior Expectation Distillation for
    Deep Neural Networks. UAI 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.metrics import entropy_mae
    >>> round(entropy_mae([[0.5, 0.5], [1.0, 0.0]], [0.0, 0.0]), 6)  # (log 2 + 0) / 2
    0.346574
    """
    h_ref, h = _as_entropy("reference", reference), _as_entropy("other", other)
    if len(h_ref) != len(h):
        raise param_error("entropy_mae", "other", f"<{len(h)} samples>",
                          f"as many samples as reference ({len(h_ref)})")
    return float(np.mean(np.abs(h_ref - h)))


def calibrated_scores(model, X_val, y_val, X_test, y_test, n_bins=15):
    """NLL and ECE on test data before and after temperature scaling fitted on validation data.

    One temperature T is fitted by :func:`~skdistill.calibration.fit_temperature` on the
    model's validation probabilities and applied to its test probabilities as
    ``softmax(log p / T)``; the calibrated NLL (cNLL) and ECE (cECE) compare models free of
    the miscalibration that a single temperature fixes.

    We fit T on ``log predict_proba`` ourselves rather than through
    ``CalibratedClassifierCV(FrozenEstimator(model), method="temperature")``: that one
    prefers ``decision_function`` where a model has it, and for a binary model rescales
    ``(-f, f)``, which gives T on a different scale (twice ours) than the paper's
    ``softmax(log p / T)``. On a model with ``predict_proba`` only, the two agree.

    Parameters
    ----------
    model : fitted classifier
        Any fitted estimator with ``predict_proba``; its ``classes_`` (when present) name the
        columns, so validation or test labels may miss a class.
    X_val, y_val : array-like
        Held-out data on which T is fitted.
    X_test, y_test : array-like
        Data on which the scores are reported.
    n_bins : int, default=15
        Bins of the ECE.

    Returns
    -------
    scores : dict
        ``nll``, ``ece`` (test, as predicted), ``cnll``, ``cece`` (test, temperature-scaled)
        and ``temperature``.

    References
    ----------
    Ashukha, Lyzhov, Molchanov, Vetrov. Pitfalls of In-Domain Uncertainty Estimation and
    Ensembling in Deep Learning. ICLR 2020.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.metrics import calibrated_scores
    >>> X, y = make_classification(n_samples=600, random_state=0)
    >>> model = LogisticRegression().fit(X[:200], y[:200])
    >>> scores = calibrated_scores(model, X[200:400], y[200:400], X[400:], y[400:])
    >>> sorted(scores)
    ['cece', 'cnll', 'ece', 'nll', 'temperature']
    """
    func = "calibrated_scores"
    if not hasattr(model, "predict_proba"):
        raise param_error(func, "model", model, "a fitted classifier with predict_proba", TypeError)
    check_is_fitted(model)
    labels = getattr(model, "classes_", None)
    p_val, p_test = model.predict_proba(X_val), model.predict_proba(X_test)
    # Validate here so a bad input is reported against y_val rather than deep in the fit.
    _check_proba(func, y_val, p_val, labels)
    temperature = fit_temperature(p_val, y_val, labels=labels)
    p_cal = apply_temperature(p_test, temperature)
    return {
        "nll": negative_log_likelihood(y_test, p_test, labels=labels),
        "ece": expected_calibration_error(y_test, p_test, n_bins=n_bins, labels=labels),
        "cnll": negative_log_likelihood(y_test, p_cal, labels=labels),
        "cece": expected_calibration_error(y_test, p_cal, n_bins=n_bins, labels=labels),
        "temperature": temperature,
    }


class _ProbaScorer:
    """A ``scoring=`` callable: ``sign * metric(y, predict_proba(X), labels=classes_)``.

    scikit-learn's ``neg_log_loss`` infers the classes from each fold's ``y`` and so fails
    (``error_score``) on a fold that misses a class; passing the estimator's ``classes_``
    scores every fold.
    """

    def __init__(self, metric, sign, name):
        self.metric, self.sign, self.name = metric, sign, name

    def __call__(self, estimator, X, y_true):
        return self.sign * self.metric(y_true, estimator.predict_proba(X),
                                       labels=getattr(estimator, "classes_", None))

    def __repr__(self):
        return f"{self.name}"


ece_scorer = _ProbaScorer(expected_calibration_error, -1, "ece_scorer")
ece_scorer.__doc__ = "Scorer returning minus the ECE (15 bins); greater is better."
nll_scorer = _ProbaScorer(negative_log_likelihood, -1, "nll_scorer")
nll_scorer.__doc__ = "Scorer returning minus the mean NLL; greater is better."
brier_scorer = _ProbaScorer(brier_score, -1, "brier_scorer")
brier_scorer.__doc__ = "Scorer returning minus the multiclass Brier score; greater is better."

__all__ = [
    "calibration_bins", "expected_calibration_error", "negative_log_likelihood", "brier_score",
    "entropy", "entropy_mae", "calibrated_scores", "ece_scorer", "nll_scorer", "brier_scorer",
]
