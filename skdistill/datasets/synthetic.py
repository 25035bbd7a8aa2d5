"""Synthetic classification data whose Bayes class probabilities are known exactly."""
import numbers

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.utils import Bunch, check_random_state

from ._base import _check_bool, _check_choice, _check_int

__all__ = ["make_gaussian_mixture"]


def _random_covariance(rng, n_features, scale):
    """A random SPD matrix: random rotation, eigenvalues scale**2 * U(0.5, 2)."""
    rotation, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    eigenvalues = scale**2 * rng.uniform(0.5, 2.0, size=n_features)
    return (rotation * eigenvalues) @ rotation.T


def _check_positive_float(func, name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{func}: {name} must be a float, got {value!r}.")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{func}: {name} must be a finite float > 0, got {value!r}.")


def bayes_log_proba(X, means, covariances, weights):
    """``log p*(y = k | x)`` under a Gaussian mixture (class ``k``: prior ``weights[k]``,
    density ``N(means[k], covariances[k])``), shape ``(n, n_classes)``."""
    log_joint = np.column_stack([
        multivariate_normal.logpdf(X, mean=mean, cov=cov).reshape(len(X))
        for mean, cov in zip(means, covariances)
    ]) + np.log(weights)
    return log_joint - logsumexp(log_joint, axis=1, keepdims=True)


def make_gaussian_mixture(n_samples=1000, n_classes=2, n_features=2, class_sep=1.0, scale=1.0,
                          weights=None, covariance="shared", random_state=None,
                          return_params=False):
    """Draw a Gaussian class mixture together with its exact Bayes posterior p(y | x).

    Each class ``k`` is one Gaussian ``N(mean_k, cov_k)`` with prior weight ``weights[k]``;
    labels are drawn from the prior, then each point from its class's Gaussian. ``proba`` is
    the Bayes posterior of the generating mixture, computed in log space, so it is the best
    any classifier can do -- the quantity a teacher stands in for (Menon et al.) and against
    which a student's probabilities can be scored.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    n_classes : int, default=2
        Number of classes (one Gaussian each), at least 2.
    n_features : int, default=2
        Dimension of the points.
    class_sep : float, default=1.0
        Spread of the class means, which are drawn from ``N(0, class_sep**2 I)``; larger
        values make the classes easier to tell apart.
    scale : float, default=1.0
        Scale of the class covariances, whose eigenvalues are ``scale**2 * U(0.5, 2)`` in a
        random rotation.
    weights : array-like of shape (n_classes,), default=None
        Class priors, positive and summing to 1. ``None`` means equal priors.
    covariance : {"shared", "per_class"}, default="shared"
        ``"shared"``: one covariance for all classes, so the Bayes log-odds are linear in x and
        logistic regression is well specified. ``"per_class"``: one covariance per class
        (quadratic boundaries).
    random_state : int, RandomState instance or None, default=None
        Seed for the mixture's parameters and the draws.
    return_params : bool, default=False
        If True, also return a Bunch with ``means`` (n_classes, n_features), ``covariances``
        (n_classes, n_features, n_features) and ``weights``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The points.
    y : ndarray of shape (n_samples,)
        Integer class labels in ``range(n_classes)``.
    proba : ndarray of shape (n_samples, n_classes)
        Exact Bayes posterior ``p(y = k | x)``; rows sum to 1.
    params : Bunch
        Only if ``return_params`` is True.

    References
    ----------
    Menon, Rawat, Reddi, Kim, Kumar. A statistical perspective on distillation. ICML 2021.

    Examples
    --------
    >>> from skdistill.datasets import make_gaussian_mixture
    >>> X, y, proba = make_gaussian_mixture(n_samples=500, n_classes=3, random_state=0)
    >>> X.shape, proba.shape
    ((500, 2), (500, 3))
    >>> bool(abs(proba.sum(axis=1) - 1).max() < 1e-12)
    True
    """
    func = "make_gaussian_mixture"
    _check_int(func, "n_samples", n_samples, low=1)
    _check_int(func, "n_classes", n_classes, low=2)
    _check_int(func, "n_features", n_features, low=1)
    _check_positive_float(func, "class_sep", class_sep)
    _check_positive_float(func, "scale", scale)
    _check_choice(func, "covariance", covariance, {"shared", "per_class"})
    _check_bool(func, "return_params", return_params)
    if weights is None:
        weights = np.full(n_classes, 1.0 / n_classes)
    else:
        weights = np.asarray(weights, dtype=np.float64)
        if (weights.shape != (n_classes,) or not np.all(weights > 0)
                or not np.isclose(weights.sum(), 1.0)):
            raise ValueError(f"{func}: weights must be {n_classes} (n_classes) positive numbers "
                             f"summing to 1, got {weights.tolist()!r}.")
        weights = weights / weights.sum()

    rng = check_random_state(random_state)
    means = class_sep * rng.standard_normal((n_classes, n_features))
    if covariance == "shared":
        covariances = np.repeat(_random_covariance(rng, n_features, scale)[None], n_classes, 0)
    else:
        covariances = np.stack([_random_covariance(rng, n_features, scale)
                                for _ in range(n_classes)])

    y = rng.choice(n_classes, size=n_samples, p=weights)
    noise = rng.standard_normal((n_samples, n_features))
    X = np.empty((n_samples, n_features))
    for k, factor in enumerate(np.linalg.cholesky(covariances)):
        X[y == k] = means[k] + noise[y == k] @ factor.T

    proba = np.exp(bayes_log_proba(X, means, covariances, weights))
    if return_params:
        return X, y, proba, Bunch(means=means, covariances=covariances, weights=weights)
    return X, y, proba
