"""Probability calibration maps fitted on held-out data: temperature scaling and isotonic."""
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted

from ._validation import check_labels_present, check_sample_weight, param_error

# Same floor as scikit-learn's temperature scaling (log(p + 1e-12)): a zero probability
# becomes a very large negative logit rather than -inf, so the NLL stays finite.
_LOG_FLOOR = 1e-12
# Search log T in [-10, 10], the range scikit-learn uses for log(1 / T).
_LOG_T_BOUNDS = (-10.0, 10.0)


def _as_logits(func, name, values, allow_logits=True):
    """Return (n, C) float logits: log-probabilities of a probability matrix, or logits as is."""
    try:
        Z = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise param_error(func, name, values, "a numeric array", TypeError) from None
    if Z.ndim == 1:
        if Z.size and (np.nanmin(Z) < 0 or np.nanmax(Z) > 1):
            raise param_error(func, name, f"<1-d array with range [{Z.min():.3g}, {Z.max():.3g}]>",
                              "positive-class probabilities in [0, 1] for a 1-d input")
        Z = np.column_stack([1.0 - Z, Z])
    if Z.ndim != 2 or Z.shape[1] < 2:
        raise param_error(func, name, f"<array of shape {Z.shape}>",
                          "shape (n_samples, n_classes) with n_classes >= 2, or (n_samples,)")
    if not np.isfinite(Z).all():
        raise param_error(func, name, "<array with NaN or inf>", "finite values")
    looks_like_proba = (Z >= 0).all() and (Z <= 1).all() and np.allclose(Z.sum(axis=1), 1, atol=1e-5)
    if looks_like_proba:
        return _log_proba(Z)
    if not allow_logits:
        raise param_error(func, name, "<array that is not a probability matrix>",
                          "values in [0, 1] whose rows sum to 1 (within 1e-5)")
    return Z


def _log_proba(P):
    """Log-probabilities, zeros floored at ``_LOG_FLOOR``."""
    return np.log(np.clip(P, _LOG_FLOOR, 1.0))


def _encode(func, y, labels, n_classes, name="y"):
    """Map labels ``y`` to column indices ``0..n_classes-1`` (columns in ``labels`` order)."""
    y = np.asarray(y)
    check_labels_present(func, y, name)
    if labels is not None:
        values, counts = np.unique(np.asarray(labels), return_counts=True)
        if (counts > 1).any():
            raise param_error(func, "labels", np.asarray(labels).tolist(),
                              f"distinct labels, one per column; {values[counts > 1].tolist()} "
                              "repeated")
    classes = np.unique(y) if labels is None else np.asarray(labels)
    if len(classes) != n_classes:
        bad, value = (("labels", labels) if labels is not None
                      else (name, f"<array with {len(classes)} distinct labels>"))
        raise param_error(func, bad, value,
                          f"{n_classes} classes, one per column (pass labels= when y misses a class)")
    order = np.argsort(classes, kind="stable")
    pos = np.searchsorted(classes[order], y)
    pos = np.clip(pos, 0, n_classes - 1)
    unknown = classes[order][pos] != y
    if unknown.any():
        raise param_error(func, name, f"<array with label {y[unknown][0].item()!r}>",
                          f"labels among {classes.tolist()}")
    return order[pos]


def fit_temperature(proba_or_logits, y, labels=None, sample_weight=None):
    """Fit the temperature T that minimises the NLL of ``softmax(log p / T)`` on ``y``.

    Parameters
    ----------
    proba_or_logits : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities (rows in [0, 1] summing to one) or logits. Probabilities are
        turned into log-probabilities (floored at 1e-12, as scikit-learn does); since softmax
        ignores a per-row shift, logits and their log-softmax give the same T. A 1-d input
        is the positive-class probability of a binary problem.
    y : array-like of shape (n_samples,)
        True labels.
    labels : array-like of shape (n_classes,), default=None
        The label of each column. Default: the sorted unique values of ``y``, which must then
        contain every class.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights of the NLL (non-negative, with a positive sum).

    Returns
    -------
    temperature : float
        T > 1 softens over-confident predictions, T < 1 sharpens them. The search runs over
        log T in [-10, 10], so predictions that are right with certainty on every sample
        give a T near ``exp(-10)``.

    References
    ----------
    Guo, Pleiss, Sun, Weinberger. On Calibration of Modern Neural Networks. ICML 2017.

    Ashukha, Lyzhov, Molchanov, Vetrov. Pitfalls of In-Domain Uncertainty Estimation and
    Ensembling in Deep Learning. ICLR 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.calibration import fit_temperature
    >>> proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9]])
    >>> y = np.array([0, 0, 1, 1])  # 3 of 4 right at confidence 0.9: over-confident
    >>> T = fit_temperature(proba, y)
    >>> round(T, 3)  # softmax(log p / T) gives confidence 3/4 exactly: 9 ** (1 / T) == 3
    2.0
    """
    func = "fit_temperature"
    L = _as_logits(func, "proba_or_logits", proba_or_logits)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(L):
        raise param_error(func, "y", f"<array of shape {y.shape}>",
                          f"a 1-d array of {len(L)} labels, one per row of proba_or_logits")
    idx = _encode(func, y, labels, L.shape[1])
    return _fit_temperature(L, idx, check_sample_weight(func, sample_weight, len(L)))


def _fit_temperature(L, idx, weight):
    """:func:`fit_temperature` on checked logits ``L``, column indices ``idx`` and weights."""
    rows = np.arange(len(L))

    def nll(log_t):
        log_p = log_softmax(L * np.exp(-log_t), axis=1)[rows, idx]
        return -log_p.mean() if weight is None else -(weight * log_p).sum() / weight.sum()

    result = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded",
                             options={"xatol": 1e-10})
    return float(np.exp(result.x))


def apply_temperature(proba, temperature):
    """Rescale probabilities by a temperature: ``softmax(log(proba) / temperature)``.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities; a 1-d input is a binary positive-class probability and a
        1-d result is returned. Zeros are floored at 1e-12 before the logarithm.
    temperature : float
        T > 0, e.g. from :func:`fit_temperature`.

    Returns
    -------
    proba_scaled : ndarray of the same shape as ``proba``

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.calibration import apply_temperature
    >>> apply_temperature(np.array([[0.9, 0.1]]), 2.0)  # 3 : 1 = sqrt(9 : 1)
    array([[0.75, 0.25]])
    """
    func = "apply_temperature"
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.number))
            or not np.isfinite(temperature) or temperature <= 0):
        raise param_error(func, "temperature", temperature, "a finite number > 0")
    return _apply_temperature(_as_logits(func, "proba", proba, allow_logits=False), temperature,
                              np.ndim(proba) == 1)


def _apply_temperature(L, temperature, binary_1d):
    """``softmax(L / temperature)``: only the positive class's column where ``binary_1d``."""
    scaled = softmax(L / temperature, axis=1)
    return scaled[:, 1] if binary_1d else scaled


def _as_proba(owner, name, values):
    """Validated (n, C) probabilities; a 1-d input is the positive class of a binary problem."""
    _as_logits(owner, name, values, allow_logits=False)
    P = np.asarray(values, dtype=np.float64)
    return np.column_stack([1.0 - P, P]) if P.ndim == 1 else P


class _ProbaCalibrator(BaseEstimator):
    """A monotone map from held-out probabilities to calibrated ones: ``fit``, ``transform``."""

    def _check_fit(self, proba, y, labels, sample_weight):
        P = _as_proba(self, "proba", proba)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(P):
            raise param_error(self, "y", f"<array of shape {y.shape}>",
                              f"a 1-d array of {len(P)} labels, one per row of proba")
        self.n_classes_ = P.shape[1]
        return P, _encode(self, y, labels, P.shape[1]), check_sample_weight(self, sample_weight,
                                                                        len(P))

    def _check_transform(self, proba):
        check_is_fitted(self, "n_classes_")
        P = _as_proba(self, "proba", proba)
        if P.shape[1] != self.n_classes_:
            raise param_error(self, "proba", f"<array with {P.shape[1]} columns>",
                              f"{self.n_classes_} columns, as in fit")
        return P


class TemperatureCalibrator(_ProbaCalibrator):
    """Temperature scaling as a fitted map: ``softmax(log p / temperature_)``.

    One scalar, fitted by :func:`fit_temperature` (weighted NLL) on held-out probabilities;
    the map keeps every row's ranking of the classes, so accuracy is unchanged.

    Attributes
    ----------
    temperature_ : float
        The fitted temperature: above 1 softens over-confident probabilities, below 1
        sharpens under-confident ones.
    n_classes_ : int

    References
    ----------
    Guo, Pleiss, Sun, Weinberger. On Calibration of Modern Neural Networks. ICML 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.calibration import TemperatureCalibrator
    >>> proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9]])
    >>> cal = TemperatureCalibrator().fit(proba, [0, 0, 1, 1])
    >>> round(cal.temperature_, 3), cal.transform([[0.9, 0.1]]).round(3).tolist()
    (2.0, [[0.75, 0.25]])
    """

    def fit(self, proba, y, *, labels=None, sample_weight=None):
        """Fit the temperature on held-out probabilities ``proba`` and their labels ``y``.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes) or (n_samples,)
            Held-out probabilities (a 1-d input is the positive class of a binary problem).
        y : array-like of shape (n_samples,)
            True labels.
        labels : array-like of shape (n_classes,), default=None
            The label of each column (default: the sorted unique values of ``y``).
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights of the NLL.

        Returns
        -------
        self
        """
        P, idx, weight = self._check_fit(proba, y, labels, sample_weight)
        self.temperature_ = _fit_temperature(_log_proba(P), idx, weight)
        return self

    def transform(self, proba):
        """Calibrated probabilities ``softmax(log p / temperature_)``, the shape of ``proba``."""
        P = self._check_transform(proba)
        return _apply_temperature(_log_proba(P), self.temperature_, np.ndim(proba) == 1)


#: Default smallest probability an isotonic map hands on (see IsotonicCalibrator).
ISOTONIC_FLOOR = 1e-3


class IsotonicCalibrator(_ProbaCalibrator):
    """One-vs-rest isotonic regression of the labels on each class probability, renormalised.

    As in :class:`sklearn.calibration.CalibratedClassifierCV` (``method="isotonic"``): for
    two classes one increasing step function maps the positive-class probability and the
    other class gets the rest; for more, class ``k``'s probability is mapped by its own
    step function (fitted on ``1[y = k]``) and each row is renormalised (a row mapped to all
    zeros becomes uniform). Isotonic fits put exact zeros (and ones) at the ends of the
    range, which would tell a student that a class is impossible, so every probability is
    then raised to at least ``floor`` and the row renormalised again.

    Parameters
    ----------
    floor : float, default=1e-3
        Smallest probability before the final renormalisation; in ``[0, 1 / n_classes)``.

    Attributes
    ----------
    isotonic_ : list of sklearn.isotonic.IsotonicRegression
        One fitted map per class, or one (for the second class) for a binary problem.
    n_classes_ : int

    References
    ----------
    Zadrozny, Elkan. Transforming Classifier Scores into Accurate Multiclass Probability
    Estimates. KDD 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.calibration import IsotonicCalibrator
    >>> p1 = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    >>> cal = IsotonicCalibrator(floor=0.01).fit(p1, [0, 0, 1, 0, 1, 1])
    >>> cal.transform(p1).round(3).tolist()  # fractions of positives in increasing blocks
    [0.01, 0.01, 0.5, 0.5, 0.99, 0.99]
    """

    def __init__(self, floor=ISOTONIC_FLOOR):
        self.floor = floor

    def fit(self, proba, y, *, labels=None, sample_weight=None):
        """Fit one isotonic map per class on held-out probabilities ``proba`` and labels ``y``.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes) or (n_samples,)
            Held-out probabilities (a 1-d input is the positive class of a binary problem).
        y : array-like of shape (n_samples,)
            True labels.
        labels : array-like of shape (n_classes,), default=None
            The label of each column (default: the sorted unique values of ``y``).
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights of the isotonic fits.

        Returns
        -------
        self
        """
        P, idx, weight = self._check_fit(proba, y, labels, sample_weight)
        n_classes = P.shape[1]
        if (isinstance(self.floor, bool) or not isinstance(self.floor, (int, float, np.number))
                or not 0 <= self.floor < 1 / n_classes):
            raise param_error(self, "floor", self.floor,
                              f"a number in [0, 1/{n_classes}) for {n_classes} classes")
        columns = [1] if n_classes == 2 else range(n_classes)
        self.isotonic_ = [
            IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                P[:, k], (idx == k).astype(np.float64), sample_weight=weight)
            for k in columns]
        return self

    def transform(self, proba):
        """Calibrated probabilities, floored at ``floor``, the shape of ``proba``."""
        P = self._check_transform(proba)
        if self.n_classes_ == 2:
            q = self.isotonic_[0].predict(P[:, 1])
            Q = np.column_stack([1.0 - q, q])
        else:
            Q = np.column_stack([iso.predict(P[:, k]) for k, iso in enumerate(self.isotonic_)])
            sums = Q.sum(axis=1, keepdims=True)
            Q = np.divide(Q, sums, out=np.full_like(Q, 1.0 / self.n_classes_),
                          where=sums > 0)
        Q = np.maximum(Q, self.floor)
        Q /= Q.sum(axis=1, keepdims=True)
        return Q[:, 1] if np.ndim(proba) == 1 else Q


__all__ = ["fit_temperature", "apply_temperature", "TemperatureCalibrator",
           "IsotonicCalibrator"]
