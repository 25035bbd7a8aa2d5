"""Temperature scaling: one scalar T fitted by NLL on held-out data, applied as softmax(log p / T)."""
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from ._validation import check_labels_present, param_error

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
        return np.log(np.clip(Z, _LOG_FLOOR, 1.0))
    if not allow_logits:
        raise param_error(func, name, "<array that is not a probability matrix>",
                          "values in [0, 1] whose rows sum to 1 (within 1e-5)")
    return Z


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


def fit_temperature(proba_or_logits, y, labels=None):
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
    rows = np.arange(len(L))

    def nll(log_t):
        return -log_softmax(L * np.exp(-log_t), axis=1)[rows, idx].mean()

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
    L = _as_logits(func, "proba", proba, allow_logits=False)
    scaled = softmax(L / temperature, axis=1)
    return scaled[:, 1] if np.ndim(proba) == 1 else scaled


__all__ = ["fit_temperature", "apply_temperature"]
